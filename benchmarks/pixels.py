"""Pixels: PPO and DQN on MinAtar Breakout (gymnax, JAX-native, 3 seeds at once), PPO on Atari
Breakout through the Gymnasium bridge (one seed, an hour's budget on two cores), and PPO's Atari
throughput beside Stable-Baselines3's PPO with its CNN policy on the same game.

    python benchmarks/pixels.py ppo_breakout_minatar dqn_breakout_minatar
    python benchmarks/pixels.py ppo_breakout_atari
    python benchmarks/pixels.py atari_throughput      # needs `pip install -e ".[bench,atari]"`

Results go to docs/benchmarks/pixels.json and plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import sys
import time

import onpolicy
from common import DOCS, OUT, machine, steady_steps_per_second
from onpolicy import EXPERIMENTS

import pgzoo

GAME = "BreakoutNoFrameskip-v4"  # no sticky actions: the game CleanRL and SB3 report
EXPERIMENTS.clear()
EXPERIMENTS.update({
    "ppo_breakout_minatar": ("ppo", "Breakout-MinAtar", 2_000_000, {},
                             "beside gymnax-blines PPO at 2M and 10M steps"),
    "dqn_breakout_minatar": ("dqn", "Breakout-MinAtar", 500_000, {},
                             "reported beside PPO"),
    "ppo_breakout_atari": ("ppo", f"gymnasium:{GAME}", 500_000, {},
                           "learns: the return rises above the random policy's (about 1.5)"),
})
onpolicy.RESULTS_FILE = "pixels.json"
SEEDS = {"ppo_breakout_atari": (0,)}  # an hour each on two cores


def sb3_ppo_atari(steps: int) -> dict:
    """SB3's PPO with CleanRL's Atari settings (as SB3 zoo's atari.yml, clip 0.1, 8 envs)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    torch.set_num_threads(2)
    env = VecFrameStack(make_atari_env(GAME, n_envs=8, seed=0), n_stack=4)
    model = PPO("CnnPolicy", env, n_steps=128, n_epochs=4, batch_size=256, learning_rate=2.5e-4,
                clip_range=0.1, ent_coef=0.01, vf_coef=0.5, seed=0, device="cpu", verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    dt = time.time() - t0
    return {"env_steps": steps, "seconds": round(dt, 1), "steps_per_second": round(steps / dt, 1)}


def atari_throughput(steps: int = 20_480) -> dict:
    """One run each on the same machine, nothing else running: pgzoo's PPO (the preset, CleanRL's
    settings) through the bridge, and SB3's."""
    run_dir = OUT / "ppo-atari-throughput"
    shutil.rmtree(run_dir, ignore_errors=True)
    run = pgzoo.train("ppo", f"gymnasium:{GAME}", steps, 0, run_dir=run_dir, progress=False,
                      eval_episodes=0)
    ours = run.summary["env_steps"] / run.summary["wall_time"]
    steady = steady_steps_per_second(run_dir)
    sb3 = sb3_ppo_atari(steps)
    result = {"command": f"pgzoo train ppo --env gymnasium:{GAME} --steps {steps} "
                         "--eval-episodes 0; SB3 PPO('CnnPolicy', make_atari_env + "
                         f"VecFrameStack(4), 8 envs), {steps} steps",
              "pgzoo_steps_per_second": round(ours, 1),
              "pgzoo_steady_steps_per_second": round(steady, 1), "sb3": sb3,
              "speedup": round(ours / sb3["steps_per_second"], 2),
              "steady_speedup": round(steady / sb3["steps_per_second"], 2)}
    print("atari throughput", result, flush=True)
    return result


def main(names: list[str]) -> None:
    path = DOCS / onpolicy.RESULTS_FILE
    for name in names or list(EXPERIMENTS) + ["atari_throughput"]:
        result = (atari_throughput() if name == "atari_throughput"
                  else onpolicy.run_experiment(name, seeds=SEEDS.get(name, (0, 1, 2))))
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
