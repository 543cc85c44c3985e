"""PPO on gymnasium HalfCheetah-v5 (MuJoCo, through the host bridge), CleanRL's continuous settings.

    python benchmarks/ppo_halfcheetah.py --seed 0     # one seed, 1M steps (about 6 min here)
    python benchmarks/ppo_halfcheetah.py --report     # combine the seeds' results and plot

Settings of CleanRL's ppo_continuous_action.py: 1 env x 2048 steps, 10 epochs, 32 minibatches,
lr 3e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2, no entropy bonus, observation and reward
normalisation. Needs `pip install -e ".[mujoco]"`.
"""
from __future__ import annotations

import argparse
import json
import shutil

import pgzoo
from pgzoo.algos import presets
from pgzoo.run.plot import plot_runs

from common import DOCS, OUT, final_return, machine, save_results

# the package's preset of PPO on HalfCheetah-v5 (pgzoo/algos/presets.py): CleanRL's settings
CLEANRL_CONTINUOUS = presets.PRESETS[("ppo", "HalfCheetah-v5")].settings
STEPS = 1_000_000


def one_seed(seed: int) -> None:
    run_dir = OUT / f"ppo-halfcheetah-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run = pgzoo.train("ppo", env="gymnasium:HalfCheetah-v5", total_steps=STEPS, seed=seed,
                      run_dir=run_dir, progress=False)  # the preset applies
    res = {"seed": seed, "run_dir": str(run_dir), "env_steps": run.summary["env_steps"],
           "train_seconds": round(run.summary["wall_time"], 1),
           "steps_per_second": round(run.summary["env_steps"] / run.summary["wall_time"]),
           "final_return": round(final_return(run_dir, 0, min_episodes=5), 1),
           "eval_mean_return": round(run.eval["mean_return"], 1)}
    save_results(f"ppo_halfcheetah_seed{seed}", res)
    print(res, flush=True)


def report() -> None:
    seeds = sorted(DOCS.glob("ppo_halfcheetah_seed*.json"))
    results = [json.loads(p.read_text()) for p in seeds]
    save_results("ppo_halfcheetah", {
        "machine": machine(), "command": "python benchmarks/ppo_halfcheetah.py --seed S",
        "settings": CLEANRL_CONTINUOUS, "steps": STEPS, "seeds": results})
    for p in seeds:
        p.unlink()
    plot_runs([OUT / f"ppo-halfcheetah-seed{r['seed']}" for r in results],
              DOCS / "ppo_halfcheetah.png", "PPO on gymnasium:HalfCheetah-v5")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    report() if args.report else one_seed(args.seed)
