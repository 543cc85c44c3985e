"""Tabular methods: dynamic programming against the known optima, Sutton & Barto's Figure 6.4
(SARSA and Q-learning on the cliff, 50 runs of 500 episodes), and Monte-Carlo control, SARSA and
Q-learning on slippery FrozenLake 4x4 by their presets.

    python benchmarks/tabular.py                  # all
    python benchmarks/tabular.py planning cliff frozenlake

Results go to docs/benchmarks/tabular.json, plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import sys
import time

import jax
import numpy as np
from common import DOCS, OUT, machine

import pgzoo
from pgzoo import envs
from pgzoo.algos.loops.tabular import finite_horizon_return
from pgzoo.run.experiment import build
from pgzoo.run.plot import value_map
from pgzoo.run.rundir import read_metrics

TASKS = ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4")


def planning() -> dict:
    """Value and policy iteration on every task, through the CLI's front door (pgzoo.train),
    gamma 1 for value iteration where the optimum is defined so, 0.99 for the comparison."""
    out = {}
    for spec in TASKS:
        model = envs.make(spec, one_hot=False).tabular_model()
        limit = envs.make(spec).max_episode_steps or 1000
        row = {"time_limit": limit}
        values = {}
        for algo, gamma in (("value_iteration", 1.0), ("value_iteration", 0.99),
                            ("policy_iteration", 0.99)):
            run_dir = OUT / f"tabular-{algo}-{spec}-{gamma}"
            shutil.rmtree(run_dir, ignore_errors=True)
            t0 = time.time()
            run = pgzoo.train(algo, spec, 1_000_000, run_dir=run_dir, progress=False,
                              eval_episodes=1000, gamma=gamma, tolerance=1e-7)
            wall = time.time() - t0
            q = np.asarray(pgzoo.load(run_dir).params[0])
            values[(algo, gamma)] = q.max(-1)
            sweeps = sum(1 for r in read_metrics(run_dir)
                         if not r["converged"]) + 1
            row[f"{algo} gamma={gamma}"] = {
                "sweeps": sweeps, "seconds": round(wall, 1),
                "start_value": round(float(model.initial @ q.max(-1)), 5),
                "greedy_return_within_limit": round(
                    finite_horizon_return(model, q.argmax(-1), limit), 5),
                "eval_1000_episodes": round(run.eval["mean_return"], 3)}
        gap = np.abs(values[("value_iteration", 0.99)] - values[("policy_iteration", 0.99)])
        row["max_abs_difference_vi_pi_gamma_0.99"] = float(gap.max())
        out[spec] = row
        print(spec, json.dumps(row), flush=True)
        if model.grid is not None:
            # on the 8x8 lake every state reaches the goal with probability 1 when time does not
            # count (gamma = 1), so the greedy actions of V are all ties: draw gamma = 0.99
            gamma = 0.99 if spec == "FrozenLake8x8-v1" else 1.0
            q = np.asarray(pgzoo.load(OUT / f"tabular-value_iteration-{spec}-{gamma}").params[0])
            value_map(model, q, DOCS / f"tabular_values_{spec.split('-')[0].lower()}.png",
                      f"value iteration on {spec}, gamma = {gamma}: V(s) and the greedy policy")
    return out


def online_returns(algo: str, runs: int, steps: int, episodes: int):
    """S&B Example 6.6 on CliffWalking-v1, ``runs`` seeds in one compiled call (vmapped), one
    environment step per iteration: each run's first ``episodes`` episode returns."""
    exp = build(algo, "CliffWalking-v1", total_steps=steps, num_seeds=runs,
                overrides={"block_size": 1})

    def body(state, _):
        state, m = exp.step(state)
        return state, (m["episodes"], m["episode_return_sum"])

    train = jax.jit(lambda s: jax.lax.scan(body, s, None, length=steps))
    t0 = time.time()
    compiled = train.lower(exp.init_state()).compile()
    compile_seconds = time.time() - t0
    t0 = time.time()
    state, (ended, sums) = jax.block_until_ready(compiled(exp.init_state()))
    seconds = time.time() - t0
    ended, sums = np.asarray(ended), np.asarray(sums)
    curves = [sums[ended[:, k] > 0, k][:episodes] for k in range(runs)]
    assert min(map(len, curves)) == episodes, "too few steps for the episodes asked"
    return np.stack(curves), np.asarray(exp.params(state)), compile_seconds, seconds


def cliff(runs: int = 50, episodes: int = 500, steps: int = 40_000) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = envs.make("CliffWalking-v1", one_hot=False).tabular_model()
    out = {"command": f"online_returns(ALGO, runs={runs}, steps={steps}) in "
                      "benchmarks/tabular.py: pgzoo's sarsa / q_learning modules with their "
                      "defaults (S&B Example 6.6: epsilon 0.1, alpha 0.5, gamma 1)"}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for algo, label in (("sarsa", "SARSA"), ("q_learning", "Q-learning")):
        curves, q, compile_s, run_s = online_returns(algo, runs, steps, episodes)
        mean = curves.mean(0)
        smooth = np.convolve(mean, np.ones(10) / 10, mode="valid")
        ax.plot(np.arange(10, episodes + 1), smooth, label=label)
        greedy = [finite_horizon_return(model, table.argmax(-1), 100) for table in q]
        out[algo] = {"mean_return_episodes_401_500": round(float(mean[400:].mean()), 2),
                     "mean_return_episodes_1_10": round(float(mean[:10].mean()), 1),
                     "greedy_path_return_per_run": sorted(set(greedy)),
                     "runs_with_optimal_greedy_path": int(sum(g == -13.0 for g in greedy)),
                     "compile_seconds": round(compile_s, 2), "run_seconds": round(run_s, 2),
                     "env_steps": steps * runs}
        print(algo, out[algo], flush=True)
    ax.set_ylim(-100, -10)
    ax.set_xlabel("episode")
    ax.set_ylabel("sum of rewards during episode")
    ax.set_title(f"CliffWalking-v1, epsilon = 0.1, alpha = 0.5: mean of {runs} runs "
                 "(moving average of 10)", fontsize=9)
    ax.axhline(-13, color="gray", lw=0.8, ls=":")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "tabular_cliff_sarsa_q_learning.png", dpi=150)
    plt.close(fig)
    return out


def frozenlake(seeds: int = 3) -> dict:
    """Each sample-based method by its preset on slippery FrozenLake 4x4, through pgzoo.train:
    the greedy policy's exact success probability within the 100-step limit beside the optimal
    policy's (policy iteration, gamma 0.999)."""
    model = envs.make("FrozenLake-v1", one_hot=False).tabular_model()
    best_dir = OUT / "tabular-frozenlake-optimal"
    shutil.rmtree(best_dir, ignore_errors=True)
    pgzoo.train("policy_iteration", "FrozenLake-v1", 1_000_000, run_dir=best_dir,
                progress=False, eval_episodes=0, gamma=0.999, tolerance=1e-7)
    best = np.asarray(pgzoo.load(best_dir).params[0]).argmax(-1)
    optimal = finite_horizon_return(model, best, 100)
    out = {"optimal_success_within_100_steps": round(optimal, 4)}
    for algo in ("monte_carlo", "sarsa", "q_learning"):
        run_dir = OUT / f"tabular-frozenlake-{algo}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run = pgzoo.train(algo, "FrozenLake-v1", seeds=seeds, run_dir=run_dir, progress=False,
                          eval_episodes=1000)
        values = [finite_horizon_return(
            model, np.asarray(pgzoo.load(run_dir, k).params[0]).argmax(-1), 100)
            for k in range(seeds)]
        out[algo] = {"command": f"pgzoo train {algo} --env FrozenLake-v1 --seeds {seeds}",
                     "steps": run.summary["env_steps"],
                     "greedy_success_within_100_steps": [round(v, 4) for v in values],
                     "fraction_of_optimal": [round(v / optimal, 3) for v in values],
                     "eval_1000_episodes": [round(s["mean_return"], 3)
                                            for s in run.eval["per_seed"]],
                     "seconds": round(run.summary["wall_time"], 1)}
        print(algo, out[algo], flush=True)
    return out


def main(names: list[str]) -> None:
    path = DOCS / "tabular.json"
    for name in names or ["planning", "cliff", "frozenlake"]:
        result = {"planning": planning, "cliff": cliff, "frozenlake": frozenlake}[name]()
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
