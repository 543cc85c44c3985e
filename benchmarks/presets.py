"""Every preset with a benchmark bar, trained through the command line with no --set:

    python benchmarks/presets.py                  # the JAX-native presets, 3 seeds each
    python benchmarks/presets.py ppg/Acrobot-v1   # named presets (ALGO/TASK)
    python benchmarks/presets.py mujoco           # the HalfCheetah-v5 presets (hours)

Each runs `pgzoo train ALGO --env TASK --seeds 3` (JAX-native tasks; MuJoCo tasks `--seed S`
one after another) in a fresh process, exactly as a user would, and checks each seed's final
training return (its last 20 episodes) against the preset's bar, reporting the deterministic
evaluation (10 episodes) beside it. Results go to docs/benchmarks/presets.json.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from common import DOCS, OUT, final_return, machine

from pgzoo.algos import presets
from pgzoo.envs.registry import jax_native_ids

SEEDS = (0, 1, 2)
SLOW = ("td3", "ddpg", "sac", "d4pg", "sac_v1", "acktr")  # minutes each on two cores


def run_preset(algo: str, task: str) -> dict:
    preset = presets.PRESETS[(algo, task)]
    native = task in jax_native_ids()
    dirs, seconds = [], 0.0
    for seed in [0] if native else SEEDS:
        run_dir = OUT / f"preset-{algo}-{task}" / (f"seed{seed}" if not native else "seeds")
        shutil.rmtree(run_dir, ignore_errors=True)
        flags = ["--seeds", str(len(SEEDS))] if native else ["--seed", str(seed)]
        command = ["pgzoo", "train", algo, "--env", task, *flags]
        t0 = time.time()
        subprocess.run([*command, "--no-progress", "--run-dir", str(run_dir)], check=True)
        seconds += time.time() - t0
        dirs.append(run_dir)
    finals = ([final_return(dirs[0], s, 20) for s in range(len(SEEDS))] if native
              else [final_return(d, 0, 20) for d in dirs])
    evals = [s["mean_return"] for d in dirs
             for s in json.loads((d / "eval.json").read_text())["per_seed"]]
    # the bar is the benchmark's target for the final training return of every seed; the
    # deterministic evaluation is reported beside it
    missed = [f"seed {s}" for s, f in enumerate(finals) if f < preset.bar]
    eval_below = [f"seed {s}" for s, e in enumerate(evals) if e < preset.bar]
    result = {"command": f"pgzoo train {algo} --env {task} "
                         + (f"--seeds {len(SEEDS)}" if native else "--seed S (S = 0, 1, 2)"),
              "steps": preset.steps, "settings": preset.settings, "bar": preset.bar,
              "final_return": [round(f, 1) for f in finals],
              "eval_mean_return": [round(e, 1) for e in evals],
              "meets_bar": not missed, "missed": missed, "eval_below_bar": eval_below,
              "seconds": round(seconds, 1)}
    print(f"{algo}/{task}", result, flush=True)
    return result


def main(names: list[str]) -> None:
    with_bar = [(a, t) for (a, t), p in presets.PRESETS.items() if p.bar is not None]
    mujoco = [(a, t) for a, t in with_bar if t not in jax_native_ids()]
    if not names:  # the quick ones first
        chosen = sorted((p for p in with_bar if p not in mujoco),
                        key=lambda p: p[0] in SLOW)
    elif names == ["mujoco"]:
        chosen = mujoco
    else:
        chosen = [tuple(n.split("/", 1)) for n in names]
    path = DOCS / "presets.json"
    for algo, task in chosen:
        result = run_preset(algo, task)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), f"{algo}/{task}": result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
