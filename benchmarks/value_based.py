"""Value-based methods: DQN, Double DQN and n-step DQN (CleanRL's dqn.py settings, the package
presets), and DQN's throughput beside Stable-Baselines3.

    python benchmarks/value_based.py                  # the JAX-native experiments, 3 seeds each
    python benchmarks/value_based.py dqn_cartpole_bridge
    python benchmarks/value_based.py throughput       # needs `pip install -e ".[bench]"`

Results go to docs/benchmarks/value_based.json and plots to docs/benchmarks/.
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

EXPERIMENTS.clear()
EXPERIMENTS.update({
    "dqn_cartpole": ("dqn", "CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "double_dqn_cartpole": ("dqn", "CartPole-v1", 500_000, {"double_q": True},
                            "reported beside DQN"),
    "dqn_acrobot": ("dqn", "Acrobot-v1", 500_000, {}, ">= -100 within 500k"),
    "double_dqn_acrobot": ("dqn", "Acrobot-v1", 500_000, {"double_q": True},
                           "reported beside DQN"),
    "dqn_3step_cartpole": ("dqn", "CartPole-v1", 500_000, {"n_step": 3},
                           "reported beside 1-step"),
    "dqn_cartpole_bridge": ("dqn", "gymnasium:CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "soft_q_learning_pendulum": ("soft_q_learning", "Pendulum-v1", 50_000, {},
                                 ">= -300 within 50k"),
    "soft_q_learning_cartpole": ("soft_q_learning", "CartPole-v1", 500_000, {},
                                 ">= 475 within 500k"),
    "soft_q_learning_multigoal": ("soft_q_learning", "MultiGoal-v0", 30_000, {},
                                  ">= 3 of 4 goals in 100 episodes"),
})
onpolicy.RESULTS_FILE = "value_based.json"

# CleanRL dqn.py's settings, on SB3's DQN
SB3_SETTINGS = dict(learning_rate=2.5e-4, buffer_size=10_000, learning_starts=10_000,
                    batch_size=128, tau=1.0, gamma=0.99, train_freq=10, gradient_steps=1,
                    target_update_interval=500, exploration_fraction=0.5,
                    exploration_initial_eps=1.0, exploration_final_eps=0.05,
                    policy_kwargs={"net_arch": [120, 84]})


def sb3_dqn(steps: int) -> float:
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(2)
    model = DQN("MlpPolicy", "CartPole-v1", seed=0, device="cpu", verbose=0, **SB3_SETTINGS)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    return steps / (time.time() - t0)


def throughput(steps: int = 100_000) -> dict:
    """One run each, CleanRL's settings on both sides (SB3's DQN loss is Huber; ours is squared
    error by default, which costs the same)."""
    sb3 = sb3_dqn(steps)
    result = {"sb3_steps_per_second": round(sb3, 1)}
    for backend, env in (("native", "CartPole-v1"), ("bridge", "gymnasium:CartPole-v1")):
        run_dir = OUT / f"dqn-throughput-{backend}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run = pgzoo.train("dqn", env, steps, 0, run_dir=run_dir, progress=False,
                          eval_episodes=0)
        ours = run.summary["env_steps"] / run.summary["wall_time"]
        result[backend] = {"steps_per_second": round(ours, 1),
                           "steady_steps_per_second": round(steady_steps_per_second(run_dir), 1),
                           "speedup": round(ours / sb3, 2)}
    result["command"] = (f"pgzoo train dqn --env {{CartPole-v1,gymnasium:CartPole-v1}} --steps "
                         f"{steps}; SB3 DQN('MlpPolicy', 'CartPole-v1', **SB3_SETTINGS), {steps} "
                         "steps")
    print("throughput", result, flush=True)
    return result


def goals_reached(run_dir, episodes: int = 100, seed: int = 0) -> list[int]:
    """Per seed of a MultiGoal-v0 run: how many of the four goals the stochastic policy's
    ``episodes`` episodes from the start state reach (each episode is at most 30 steps)."""
    import jax
    import numpy as np

    from pgzoo import envs
    from pgzoo.envs.multigoal import goal_index

    counts = []
    config = json.loads((run_dir / "config.json").read_text())
    for k in range(config["seeds"]):
        policy = pgzoo.load(run_dir, k)
        env = envs.make("MultiGoal-v0", num_envs=episodes)
        state, ts = env.reset(jax.random.PRNGKey(seed))
        reached = np.full(episodes, -1)
        done = np.zeros(episodes, bool)
        key = jax.random.PRNGKey(seed + 1)
        for _ in range(env.max_episode_steps):
            key, act_key, step_key = jax.random.split(key, 3)
            action = policy.act(policy.params, ts.obs, act_key, deterministic=False)
            state, ts = env.step(state, action, step_key)
            ended = np.asarray(ts.terminated) & ~done
            reached[ended] = np.asarray(goal_index(ts.final_obs))[ended]
            done |= np.asarray(ts.done)
        counts.append(len(set(reached[reached >= 0].tolist())))
    return counts


def main(names: list[str]) -> None:
    path = DOCS / onpolicy.RESULTS_FILE
    for name in names or [n for n in EXPERIMENTS if not n.endswith("_bridge")]:
        result = throughput() if name == "throughput" else onpolicy.run_experiment(name)
        if name == "soft_q_learning_multigoal":
            result["goals_reached"] = goals_reached(OUT / name)
            print("goals reached per seed:", result["goals_reached"], flush=True)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
