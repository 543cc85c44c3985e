"""The on-policy family: REINFORCE, one-step actor-critic, A2C, VPG and the PPO variants.

    python benchmarks/onpolicy.py                 # every experiment below, then the A2C/SB3 timing
    python benchmarks/onpolicy.py a2c_cartpole    # only the named experiments

Each experiment trains 3 seeds; JAX-native ones train them at once (``seeds=3``), bridged ones one
after another. Results go to docs/benchmarks/onpolicy.json and plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import sys
import time

import pgzoo
from pgzoo.algos import presets
from pgzoo.core import config as cfg
from pgzoo.envs.registry import resolve
from pgzoo.run.experiment import build
from pgzoo.run.plot import plot_runs

from common import DOCS, OUT, final_return, machine, read_metrics, steady_steps_per_second

# name: (algorithm, environment, steps, overrides, target description). Every run starts from
# the package's preset of its algorithm and environment (pgzoo/algos/presets.py), as
# `pgzoo train` does; overrides are only the variant an experiment studies, and
# {"preset": False} runs the module defaults.
EXPERIMENTS = {
    "reinforce_cartpole": ("reinforce", "CartPole-v1", 1_000_000, {}, ">= 475 within 1M"),
    "reinforce_no_baseline_cartpole": ("reinforce", "CartPole-v1", 1_000_000,
                                       {"baseline": False}, "reported"),
    "actor_critic_cartpole": ("actor_critic", "CartPole-v1", 1_000_000, {}, ">= 300 within 1M"),
    "actor_critic_q_cartpole": ("actor_critic", "CartPole-v1", 1_000_000,
                                {"critic": "action_value"}, "reported"),
    "a2c_cartpole": ("a2c", "CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "a2c_acrobot": ("a2c", "Acrobot-v1", 500_000, {}, ">= -100 within 500k"),
    "vpg_cartpole": ("vpg", "CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "ppo_kl_cartpole": ("ppo", "CartPole-v1", 500_000, {"objective": "kl_penalty"},
                        ">= 475 within 500k"),
    "ppo_kl_acrobot": ("ppo", "Acrobot-v1", 500_000, {"objective": "kl_penalty"},
                       ">= -90 within 500k"),
    "ppo_gaussian_pendulum": ("ppo", "gymnasium:Pendulum-v1", 300_000, {}, "reported"),
    "ppo_beta_pendulum": ("ppo", "gymnasium:Pendulum-v1", 300_000, {"policy_dist": "beta"},
                          "reported"),
}


def sets(overrides: dict) -> str:
    return " ".join("--no-preset" if k == "preset" else f"--set {k}={v}"
                    for k, v in overrides.items())


def steps_flag(algo: str, env: str, steps: int) -> str:
    """``--steps N`` unless N is the preset's budget."""
    found = presets.find(algo, env)
    return "" if found and found[1].steps == steps else f" --steps {steps}"


def finished(run_dir, algo: str, env: str, steps: int, seeds: int, overrides: dict) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly this experiment, with today's defaults
    (``--reuse``)."""
    path = run_dir / "config.json"
    if not path.exists():
        return False
    meta = json.loads(path.read_text())
    variant = {k: v for k, v in overrides.items() if k != "preset"}
    config = cfg.to_dict(build(algo, env, steps, 0, 1, variant,
                               preset=overrides.get("preset", True)).config)
    same_env = resolve(meta["env"]) == resolve(env)
    return (meta["status"] == "finished" and meta["algo"] == algo and same_env
            and meta["total_steps"] == steps and meta["seeds"] == seeds
            and json.loads(json.dumps(config)) == meta["config"])


def run_experiment(name: str, seeds=(0, 1, 2), reuse: bool = False) -> dict:
    """Train ``name`` on ``seeds`` (JAX-native: at once; bridged: one after another). With
    ``reuse``, run directories that hold the same finished run are not retrained."""
    algo, env, steps, overrides, target = EXPERIMENTS[name]
    bridged = env.startswith("gymnasium:")
    dirs = []
    for seed in seeds if bridged else [0]:
        run_dir = OUT / (f"{name}-seed{seed}" if bridged else name)
        dirs.append(run_dir)
        num_seeds = 1 if bridged else len(seeds)
        if reuse and finished(run_dir, algo, env, steps, num_seeds, overrides):
            continue
        shutil.rmtree(run_dir, ignore_errors=True)
        pgzoo.train(algo, env, steps, seed, seeds=num_seeds, run_dir=run_dir,
                    progress=False, **overrides)  # "preset": False is train's own keyword
    finals = ([final_return(d, 0, 20) for d in dirs] if bridged
              else [final_return(dirs[0], s, 20) for s in range(len(seeds))])
    evals = []
    for d in dirs:
        evals += [s["mean_return"] for s in json.loads((d / "eval.json").read_text())["per_seed"]]
    seed_list = ", ".join(map(str, seeds))
    seed_flag = f"--seed S (S = {seed_list})" if bridged else f"--seeds {len(seeds)}"
    result = {"command": f"pgzoo train {algo} --env {env}{steps_flag(algo, env, steps)} "
                         f"{seed_flag} {sets(overrides)}".strip(),
              "target": target, "final_return": [round(f, 1) for f in finals],
              "eval_mean_return": [round(e, 1) for e in evals],
              "seconds": round(sum(read_metrics(d)[-1]["wall_time"] for d in dirs), 1)}
    plot_runs(dirs, DOCS / f"{name}.png", f"{algo} on {env} ({name})")
    print(name, result, flush=True)
    return result


def sb3_a2c(steps: int) -> dict:
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(2)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    model = A2C("MlpPolicy", env, n_steps=5, learning_rate=7e-4, gamma=0.99, gae_lambda=1.0,
                ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, seed=0, device="cpu", verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    dt = time.time() - t0
    return {"env_steps": steps, "seconds": round(dt, 2), "steps_per_second": round(steps / dt)}


def a2c_throughput() -> dict:
    run_dir = OUT / "a2c-throughput"
    shutil.rmtree(run_dir, ignore_errors=True)
    run = pgzoo.train("a2c", "CartPole-v1", 500_000, 0, run_dir=run_dir, progress=False)
    ours = run.summary["env_steps"] / run.summary["wall_time"]
    steady = steady_steps_per_second(run_dir)
    sb3 = sb3_a2c(100_000)
    result = {"command": "pgzoo train a2c --env CartPole-v1 --steps 500000 (1 seed)",
              "pgzoo_steps_per_second": round(ours), "pgzoo_steady_steps_per_second": round(steady),
              "sb3": sb3, "speedup": round(ours / sb3["steps_per_second"], 1),
              "steady_speedup": round(steady / sb3["steps_per_second"], 1)}
    print("a2c throughput", result, flush=True)
    return result


RESULTS_FILE = "onpolicy.json"


def main(names: list[str]) -> None:
    path = DOCS / RESULTS_FILE
    for name in names or list(EXPERIMENTS) + ["a2c_throughput"]:
        result = a2c_throughput() if name == "a2c_throughput" else run_experiment(name)
        # Re-read before writing, so that runs of other experiments in parallel are kept.
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
