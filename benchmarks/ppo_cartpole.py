"""PPO on CartPole-v1: learning (3 seeds), throughput against Stable-Baselines3, --seeds 8 scaling,
and the Gymnasium bridge.

    python benchmarks/ppo_cartpole.py            # needs `pip install -e ".[bench]"`

Hyperparameters are CleanRL's ppo.py (pgzoo's PPO defaults): 4 envs x 128 steps, 4 epochs,
4 minibatches, lr 2.5e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2, c2 0.01, 500k steps.
"""
from __future__ import annotations

import argparse
import time

import pgzoo
from pgzoo.run.plot import plot_runs

from common import DOCS, OUT, final_return, machine, save_results, steady_steps_per_second

STEPS = 500_000


def pgzoo_run(env: str, name: str, steps: int, seed: int = 0, seeds: int = 1):
    run_dir = OUT / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    t0 = time.time()
    run = pgzoo.train("ppo", env=env, total_steps=steps, seed=seed, seeds=seeds, run_dir=run_dir,
                      progress=False)
    wall = time.time() - t0
    train_time = run.summary["wall_time"]
    return run, {"run_dir": str(run_dir), "seeds": seeds,
                 "env_steps_per_seed": run.summary["env_steps"],
                 "train_seconds": round(train_time, 2), "total_seconds": round(wall, 2),
                 "steps_per_second": round(run.summary["env_steps"] * seeds / train_time),
                 "steady_steps_per_second": round(steady_steps_per_second(run_dir)),
                 "final_return": [round(final_return(run_dir, s), 1) for s in range(seeds)],
                 "eval_mean_return": round(run.eval["mean_return"], 1)}


def sb3_ppo(steps: int, seed: int = 0) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(2)
    env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=128, n_epochs=4,
                learning_rate=lambda f: 2.5e-4 * f, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu",
                verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    dt = time.time() - t0
    return {"env_steps": steps, "seconds": round(dt, 2), "steps_per_second": round(steps / dt)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sb3-steps", type=int, default=100_000,
                        help="steps of SB3's PPO to time (its speed does not depend on length)")
    args = parser.parse_args()
    results = {"machine": machine(), "command": "python benchmarks/ppo_cartpole.py"}

    results["jax_native_3_seeds_sequential"] = []
    runs = []
    for seed in range(3):
        run, res = pgzoo_run("CartPole-v1", f"ppo-cartpole-seed{seed}", STEPS, seed=seed)
        runs.append(run.run_dir)
        results["jax_native_3_seeds_sequential"].append(res)
        print("jax-native seed", seed, res, flush=True)
    _, results["jax_native_seeds_8"] = pgzoo_run("CartPole-v1", "ppo-cartpole-seeds8", STEPS,
                                                 seeds=8)
    print("seeds 8", results["jax_native_seeds_8"], flush=True)
    results["sb3_ppo_cartpole"] = sb3_ppo(args.sb3_steps)
    print("sb3", results["sb3_ppo_cartpole"], flush=True)
    bridge_runs = []
    results["gymnasium_bridge"] = []
    for seed in range(3):
        run, res = pgzoo_run("gymnasium:CartPole-v1", f"ppo-gymcartpole-seed{seed}", STEPS,
                             seed=seed)
        bridge_runs.append(run.run_dir)
        results["gymnasium_bridge"].append(res)
        print("bridge seed", seed, res, flush=True)

    one = results["jax_native_3_seeds_sequential"][0]
    sb3 = results["sb3_ppo_cartpole"]["steps_per_second"]
    results["speedup_vs_sb3"] = round(one["steps_per_second"] / sb3, 1)
    results["steady_speedup_vs_sb3"] = round(one["steady_steps_per_second"] / sb3, 1)
    results["bridge_speedup_vs_sb3"] = round(
        min(r["steps_per_second"] for r in results["gymnasium_bridge"]) / sb3, 2)
    results["seeds8_time_ratio"] = round(
        results["jax_native_seeds_8"]["train_seconds"] / one["train_seconds"], 2)
    save_results("ppo_cartpole", results)
    plot_runs(runs + [OUT / "ppo-cartpole-seeds8"], DOCS / "ppo_cartpole.png",
              "PPO on CartPole-v1 (JAX-native)")
    plot_runs(bridge_runs, DOCS / "ppo_gymnasium_cartpole.png",
              "PPO on gymnasium:CartPole-v1 (host bridge)")
    print({k: results[k] for k in ("speedup_vs_sb3", "steady_speedup_vs_sb3", "bridge_speedup_vs_sb3",
                                   "seeds8_time_ratio")})


if __name__ == "__main__":
    main()
