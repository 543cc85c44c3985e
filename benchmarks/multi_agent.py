"""Multi-agent (issue 18): MADDPG beside independent DDPG on JaxMARL's MPE tasks.

    python benchmarks/multi_agent.py                        # every experiment and the throughput
    python benchmarks/multi_agent.py spread speaker_listener

Each experiment trains `pgzoo train maddpg --env ENV --steps N --seeds 3 --set critics=C ...` for
each critics setting C (three seeds in one vmapped call) and records per seed the final
training return summed over the agents, each agent's own, and the deterministic evaluation.
`throughput` measures environment steps per second on simple_spread, JaxMARL (compiled) and
mpe2 through the PettingZoo bridge. Results go to docs/benchmarks/multi_agent.json, curves to
docs/benchmarks/multi_agent_*.png.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import DOCS, OUT, machine, steady_steps_per_second

from pgzoo.run.rundir import read_metrics

STEPS = 1_000_000  # 38,000 episodes (the released MADDPG code trains 60,000 of 25 steps)
SEEDS = 3
# four environments, an update every 25 steps of each: the released code's one update per 100
# transitions, four times as fast on two cores
SPEED = ["--set", "num_envs=4", "--set", "train_every=25"]
EXPERIMENTS = {  # name: (env, {label: critics})
    "spread": ("jaxmarl:MPE_simple_spread_v3",
               {"MADDPG": "centralised", "DDPG": "independent"}),
    "speaker_listener": ("jaxmarl:MPE_simple_speaker_listener_v4",
                         {"MADDPG": "centralised", "DDPG": "independent"}),
    # agents: adversary_0, agent_0, agent_1; "M adversary vs D agents" and the reverse
    "adversary": ("jaxmarl:MPE_simple_adversary_v3",
                  {"MADDPG adversary vs DDPG agents": "centralised,independent,independent",
                   "DDPG adversary vs MADDPG agents": "independent,centralised,centralised"}),
}
RESULTS = DOCS / "multi_agent.json"
TAIL = 0.02  # the final return: the mean over the last 2% of the iterations


def final_returns(rows: list[dict], seed: int) -> dict[str, float]:
    mine = [r for r in rows if r["seed"] == seed and r["episodes"]]
    tail = mine[-max(1, int(len(mine) * TAIL)):]
    keys = ["episode_return"] + [k for k in tail[0] if k.endswith("/episode_return")]
    return {k: round(float(np.mean([r[k] for r in tail])), 2) for k in keys}


def run(name: str) -> dict:
    env, settings = EXPERIMENTS[name]
    out: dict = {"env": env, "steps": STEPS, "seeds": SEEDS, "runs": {}}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (label, critics), colour in zip(settings.items(), ("C0", "C1", "C2", "C3")):
        run_dir = OUT / f"maddpg-{name}-{critics.replace(',', '-')}"
        shutil.rmtree(run_dir, ignore_errors=True)
        command = ["pgzoo", "train", "maddpg", "--env", env, "--steps", str(STEPS), "--seeds",
                   str(SEEDS), "--set", f"critics={critics}", *SPEED]
        subprocess.run(command + ["--run-dir", str(run_dir), "--no-progress"], check=True)
        rows = read_metrics(run_dir)
        evaluation = json.loads((run_dir / "eval.json").read_text())
        out["runs"][label] = {
            "command": " ".join(command),
            "final": {s: final_returns(rows, s) for s in range(SEEDS)},
            "eval": [round(r["mean_return"], 2) for r in evaluation["per_seed"]],
            "wall_time_s": round(max(r["wall_time"] for r in rows), 1)}
        for s in range(SEEDS):
            mine = [r for r in rows if r["seed"] == s and r["episodes"]]
            steps = np.array([r["env_steps"] for r in mine])
            ret = np.convolve([r["episode_return"] for r in mine], np.ones(100) / 100, "valid")
            ax.plot(steps[99:], ret, color=colour, lw=0.8, label=label if s == 0 else None)
        print(name, label, out["runs"][label], flush=True)
    ax.set(xlabel="environment steps", ylabel="episode return, summed over agents",
           title=f"{env} ({SEEDS} seeds, mean of 100 iterations)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(DOCS / f"multi_agent_{name}.png", dpi=110)
    plt.close(fig)
    return out


def throughput(steps: int = 50_000) -> dict:
    """MADDPG's environment steps per second (one seed, the released code's settings) on
    simple_spread: JaxMARL compiled, and mpe2 through the PettingZoo bridge."""
    out = {}
    for env in ("jaxmarl:MPE_simple_spread_v3", "pettingzoo:mpe2.simple_spread_v3"):
        run_dir = OUT / f"maddpg-throughput-{env.split(':')[0]}"
        shutil.rmtree(run_dir, ignore_errors=True)
        command = ["pgzoo", "train", "maddpg", "--env", env, "--steps", str(steps)]
        subprocess.run(command + ["--run-dir", str(run_dir), "--no-progress",
                                  "--eval-episodes", "0"], check=True)
        out[env] = {"command": " ".join(command),
                    "steps_per_second": round(steady_steps_per_second(run_dir), 1)}
        print(env, out[env], flush=True)
    return out


def main(names: list[str]) -> None:
    for name in names or [*EXPERIMENTS, "throughput"]:
        result = throughput() if name == "throughput" else run(name)
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["machine"] = machine()
        results[name] = result
        RESULTS.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
