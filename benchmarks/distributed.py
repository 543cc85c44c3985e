"""Actor-learner methods on Ray (issue 17): IMPALA, A3C, DPPO and D4PG with 2 Ray actors.

    python benchmarks/distributed.py                      # every experiment below
    python benchmarks/distributed.py impala_cartpole a3c_cartpole

Each experiment runs `pgzoo train ALGO --env ENV --steps N --seed S` (the ray driver, the
package's preset where there is one) for S = 0, 1, 2 one after another, and records the final
training return, the evaluation, the steps to the target and the staleness of the messages.
Results go to docs/benchmarks/distributed.json, curves and staleness plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import DOCS, OUT, final_return, machine, steps_to_threshold

from pgzoo.run.rundir import read_metrics

EXPERIMENTS = {  # name: (algo, env, steps, extra CLI arguments, target)
    "impala_cartpole": ("impala", "CartPole-v1", 2_000_000, [], 475.0),
    "a3c_cartpole": ("a3c", "CartPole-v1", 2_000_000, [], 475.0),
    "impala_acrobot": ("impala", "Acrobot-v1", 2_000_000, [], -100.0),
    "a3c_acrobot": ("a3c", "Acrobot-v1", 2_000_000, [], -100.0),
    "dppo_cartpole": ("dppo", "CartPole-v1", 500_000, [], 475.0),
    # the workers normalise observations with shared statistics
    "dppo_cartpole_normobs": ("dppo", "CartPole-v1", 500_000, ["--set", "normalize_obs=true"],
                              475.0),
    "impala_cartpole_bridge": ("impala", "gymnasium:CartPole-v1", 2_000_000, [], 475.0),
    "a3c_cartpole_bridge": ("a3c", "gymnasium:CartPole-v1", 2_000_000, [], 475.0),
    # D4PG's K = 2 actor processes feeding the learner's replay
    "d4pg_pendulum_2actors": ("d4pg", "Pendulum-v1", 30_000,
                              ["--driver", "ray", "--set", "num_actors=2"], -200.0),
    # the same with two updates per transition
    "d4pg_pendulum_2actors_utd2": ("d4pg", "Pendulum-v1", 30_000,
                                   ["--driver", "ray", "--set", "num_actors=2", "--set",
                                    "gradient_steps=8"], -200.0),
}
SEEDS = (0, 1, 2)
RESULTS = DOCS / "distributed.json"


def run(name: str) -> dict:
    algo, env, steps, extra, target = EXPERIMENTS[name]
    out: dict = {"algo": algo, "env": env, "steps": steps, "target": target, "seeds": {},
                 "command": f"pgzoo train {algo} --env {env} --steps {steps} --seed S "
                            + " ".join(extra)}
    curves = []
    for seed in SEEDS:
        run_dir = OUT / f"{name}-{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.time()
        subprocess.run(["pgzoo", "train", algo, "--env", env, "--steps", str(steps), "--seed",
                        str(seed), "--run-dir", str(run_dir), "--no-progress", *extra],
                       check=True)
        wall = time.time() - t0
        rows = read_metrics(run_dir)
        evaluation = json.loads((run_dir / "eval.json").read_text())
        stale = np.array([r["staleness"] for r in rows])
        out["seeds"][seed] = {
            "final_return": final_return(run_dir), "eval": evaluation["mean_return"],
            "steps_to_target": steps_to_threshold(run_dir, 0, target),
            "staleness_mean": float(stale.mean()),
            "staleness_max": float(max(r["staleness_max"] for r in rows)),
            "wall_time_s": round(wall, 1)}
        curves.append(rows)
        print(name, seed, out["seeds"][seed], flush=True)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.5))
    for seed, rows in zip(SEEDS, curves):
        done = [r for r in rows if r["episodes"]]
        ax.plot([r["env_steps"] for r in done], [r["episode_return"] for r in done],
                label=f"seed {seed}", lw=0.8)
        bx.plot([r["env_steps"] for r in rows], np.convolve(
            [r["staleness"] for r in rows], np.ones(50) / 50, "same"), label=f"seed {seed}",
            lw=0.8)
    ax.axhline(target, color="k", ls=":", lw=0.8)
    ax.set(xlabel="environment steps", ylabel="training episode return", title=f"{algo} {env}")
    bx.set(xlabel="environment steps", ylabel="staleness (versions, mean of 50 updates)",
           title="policy versions behind the learner")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(DOCS / f"{name}.png", dpi=110)
    plt.close(fig)
    return out


def throughput(run_dir) -> float:
    """Environment steps per second from the first update to the last (start-up excluded)."""
    rows = read_metrics(run_dir)
    first, last = rows[0], rows[-1]
    return (last["env_steps"] - first["env_steps"]) / (last["wall_time"] - first["wall_time"])


def scaling(steps: int = 40_000) -> dict:
    """IMPALA on slow_env:SlowCartPole (about 1 ms of CPU per environment step) with 1 and 2
    Ray actors, beside the single-process run of the same algorithm (--driver compiled, the 2
    actors' environments stepped one after another in one process)."""
    import os

    env = {**os.environ, "PYTHONPATH": str(OUT.parent)}  # slow_env.py, for the actors too
    out: dict = {"env": "slow_env:SlowCartPole", "steps": steps, "runs": {}}
    for label, args in (("compiled, 2 actors in one process", ["--driver", "compiled"]),
                        ("ray, 1 actor", ["--set", "num_actors=1", "--set",
                                          "messages_per_update=1"]),
                        ("ray, 2 actors", [])):
        run_dir = OUT / f"scaling-{label.replace(' ', '_').replace(',', '')}"
        shutil.rmtree(run_dir, ignore_errors=True)
        command = ["pgzoo", "train", "impala", "--env", "slow_env:SlowCartPole", "--steps",
                   str(steps), "--run-dir", str(run_dir), "--no-progress", "--eval-episodes",
                   "0", *args]
        subprocess.run(command, check=True, env=env)
        out["runs"][label] = {"steps_per_second": round(throughput(run_dir), 1),
                              "command": " ".join(command[:-4 - len(args)] + args)}
        print(label, out["runs"][label], flush=True)
    one = out["runs"]["ray, 1 actor"]["steps_per_second"]
    two = out["runs"]["ray, 2 actors"]["steps_per_second"]
    out["efficiency_per_actor_2"] = round(two / one / 2, 3)
    return out


def main(names: list[str]) -> None:
    for name in names or [*EXPERIMENTS, "scaling"]:
        result = scaling() if name == "scaling" else run(name)
        # read again: another invocation may have written its results meanwhile
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["machine"] = machine()
        results[name] = result
        RESULTS.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
