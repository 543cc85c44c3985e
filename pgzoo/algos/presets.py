"""Tuned presets: the settings and budget under which ``docs/benchmarks.md`` reports each
algorithm on each environment, shipped with the package (rl-baselines3-zoo's hyperparameter files,
as one table).

``pgzoo train ALGO --env ENV`` (and ``pgzoo.train``) applies the preset of (ALGO, ENV) when there
is one, says so in one line, and lets ``--set`` / keyword overrides win over it; ``--no-preset``
(``preset=False``) gives the module defaults. ``pgzoo show ALGO --env ENV`` prints the result.

A preset belongs to a task, not a backend: ``Pendulum-v1`` covers the JAX-native (gymnax) version
and ``gymnasium:Pendulum-v1``; MuJoCo tasks are named by their Gymnasium id (``HalfCheetah-v5``);
Brax tasks keep their prefix (``brax:halfcheetah``).

``bar`` is the benchmark's target for the mean return of the final episodes and of the
deterministic evaluation (``None``: reported, no target); ``benchmarks/presets.py`` trains every
preset with no ``--set`` and checks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pgzoo.envs.registry import resolve
from pgzoo.errors import PgzooError


@dataclass(frozen=True)
class Preset:
    steps: int  # the budget per seed, in the algorithm's budget unit
    settings: dict[str, Any] = field(default_factory=dict)  # Config fields that differ
    source: str = ""  # where the settings come from
    bar: float | None = None  # target mean return (final episodes and evaluation)


# Pendulum settings of PPO, tuned here (docs/benchmarks.md).
_PPO_PENDULUM = {"num_steps": 256, "num_minibatches": 16, "update_epochs": 10,
                 "gamma": 0.9, "learning_rate": 1e-3, "ent_coef": 0.0, "normalize_obs": True}
# Tabular control on slippery FrozenLake: epsilon 1 -> 0.05 over half the run, alpha 0.1 -> 0.01.
_TABULAR_FROZENLAKE = {"gamma": 0.99, "step_size": 0.1, "step_size_final": 0.01, "epsilon": 1.0,
                       "epsilon_final": 0.05}
# CleanRL ppo_continuous_action.py.
_PPO_MUJOCO = {"num_envs": 1, "num_steps": 2048, "update_epochs": 10, "num_minibatches": 32,
               "learning_rate": 3e-4, "ent_coef": 0.0, "normalize_obs": True,
               "normalize_reward": True}
# PPG on small tasks: more epochs per iteration and shorter phases than the paper's Procgen
# settings (e_pi = e_v = 1, n_pi = 32), which learn CartPole slowly (docs/benchmarks.md).
_PPG_SMALL = {"e_pi": 4, "e_v": 4, "n_pi": 8, "learning_rate": 2.5e-4}
_OFFPOLICY_MUJOCO = {"learning_starts": 10_000}
# gymnax-blines agents/Breakout-MinAtar/ppo.yaml (constant lr 5e-4, 64 envs, gamma 0.999, 2x256);
# its network is an MLP of the flattened frame, here the MinAtar CNN comes first (encoder auto).
# (num_steps 128, 4 epochs, lambda 0.95, clip 0.2 and entropy 0.01 are also PPO's defaults)
_PPO_MINATAR = {"num_envs": 64, "num_minibatches": 8, "learning_rate": 5e-4, "anneal_lr": False,
                "gamma": 0.999, "hidden_sizes": (256, 256), "activation": "relu"}
# Young & Tian 2019 (MinAtar examples/dqn.py): 16 3x3 filters and 128 units, batch 32, replay
# 100k, target network every 1000 steps, Huber loss, lr 2.5e-4; here 4 environments and one
# update per step of them (per 4 transitions, as Mnih et al. 2015), epsilon 1 -> 0.05 over the
# first 10% of the run.
_DQN_MINATAR = {"num_envs": 4, "buffer_size": 100_000, "batch_size": 32, "learning_starts": 5_000,
                "train_frequency": 1, "target_update_every": 250,
                "loss": "huber", "exploration_fraction": 0.1, "hidden_sizes": (128,)}
# CleanRL ppo_atari.py: the Nature CNN and 512 units shared by policy and value, 8 games (its
# other settings are PPO's defaults, which come from CleanRL's ppo.py).
_PPO_ATARI = {"num_envs": 8, "clip_coef": 0.1, "hidden_sizes": (512,), "activation": "relu",
              "shared_torso": True}  # SB3 zoo's learning_starts for MuJoCo

PRESETS: dict[tuple[str, str], Preset] = {
    ("reinforce", "CartPole-v1"): Preset(1_000_000, {}, "module defaults", 475.0),
    ("actor_critic", "CartPole-v1"): Preset(1_000_000, {}, "module defaults", 300.0),
    ("a2c", "CartPole-v1"): Preset(500_000, {}, "rl-baselines3-zoo a2c.yml", 475.0),
    ("a2c", "Acrobot-v1"): Preset(
        500_000, {"num_envs": 16, "normalize_obs": True, "learning_rate": 1e-3},
        "rl-baselines3-zoo a2c.yml (16 envs, normalised observations), lr tuned here", -100.0),
    ("vpg", "CartPole-v1"): Preset(500_000, {}, "module defaults", 475.0),
    ("ppo", "CartPole-v1"): Preset(500_000, {}, "CleanRL ppo.py", 475.0),
    ("ppo", "Acrobot-v1"): Preset(500_000, {}, "CleanRL ppo.py", -100.0),
    ("ppo", "Pendulum-v1"): Preset(300_000, _PPO_PENDULUM, "tuned here", None),
    ("ppo", "Breakout-MinAtar"): Preset(2_000_000, _PPO_MINATAR, "gymnax-blines ppo.yaml", None),
    **{("ppo", game): Preset(500_000, _PPO_ATARI, "CleanRL ppo_atari.py; 500k steps: about 45 min "
                             "on 2 CPU cores at 200 steps/s", None)
       for game in ("BreakoutNoFrameskip-v4", "PongNoFrameskip-v4", "ALE/Breakout-v5",
                    "ALE/Pong-v5")},
    ("ppo", "HalfCheetah-v5"): Preset(1_000_000, _PPO_MUJOCO,
                                      "CleanRL ppo_continuous_action.py", 1400.0),
    ("npg", "CartPole-v1"): Preset(500_000, {}, "module defaults", 475.0),
    ("trpo", "CartPole-v1"): Preset(200_000, {}, "module defaults", 475.0),
    ("trpo", "Acrobot-v1"): Preset(200_000, {}, "module defaults", -100.0),
    ("trpo", "HalfCheetah-v5"): Preset(
        1_000_000, {"num_envs": 2, "num_steps": 1024, "normalize_obs": True,
                    "normalize_reward": True, "value_epochs": 20},
        "tuned here: 2048-step batches, normalised (docs/benchmarks.md)", 1500.0),
    ("acktr", "CartPole-v1"): Preset(500_000, {}, "module defaults", 475.0),
    ("acktr", "Pendulum-v1"): Preset(
        1_000_000, {"num_envs": 4, "num_steps": 16, "learning_rate": 0.06},
        "tuned here: smaller, more frequent K-FAC updates", -400.0),
    ("ppg", "CartPole-v1"): Preset(500_000, _PPG_SMALL, "tuned here, docs/benchmarks.md", 475.0),
    ("ppg", "Acrobot-v1"): Preset(500_000, _PPG_SMALL, "tuned here, docs/benchmarks.md", -100.0),
    ("dqn", "CartPole-v1"): Preset(500_000, {}, "CleanRL dqn.py", 475.0),
    ("dqn", "Breakout-MinAtar"): Preset(500_000, _DQN_MINATAR, "MinAtar examples/dqn.py", None),
    ("dqn", "Acrobot-v1"): Preset(500_000, {}, "CleanRL dqn.py", -100.0),
    # tabular control on slippery FrozenLake 4x4: chosen here among a few candidates, 3 seeds
    # (docs/benchmarks.md, "Tabular methods"); CliffWalking uses the defaults, S&B Example 6.6
    ("q_learning", "FrozenLake-v1"): Preset(200_000, _TABULAR_FROZENLAKE, "tuned here", None),
    ("sarsa", "FrozenLake-v1"): Preset(200_000, _TABULAR_FROZENLAKE, "tuned here", None),
    ("monte_carlo", "FrozenLake-v1"): Preset(
        500_000, {"gamma": 0.999, "step_size": 0.01, "epsilon": 1.0, "epsilon_final": 0.05},
        "tuned here", None),
    # CEM on Pendulum: 4 episodes per member (one is too noisy a fitness for the elite),
    # more extra noise for longer; chosen here among 3 candidates, 3 seeds
    ("cma_es", "Pendulum-v1"): Preset(
        50_000_000, {"population_size": 128, "common_starts": True, "restart_patience": 200},
        "tried here (docs/benchmarks.md): with restarts 4 of 6 seeds reach -300",
        -300.0),
    ("cem", "Pendulum-v1"): Preset(
        50_000_000, {"episodes_per_member": 4, "extra_noise": 0.03,
                     "noise_decay_generations": 1000}, "tuned here", -300.0),
    ("impala", "CartPole-v1"): Preset(
        2_000_000, {"optimizer": "adam", "learning_rate": 1e-3, "max_grad_norm": 0.0,
                    "ent_coef": 0.0}, "tuned here (docs/benchmarks.md)", 475.0),
    ("acer", "CartPole-v1"): Preset(500_000, {"ent_coef": 0.0}, "rl-baselines-zoo acer.yml",
                                    475.0),
    ("acer", "Acrobot-v1"): Preset(
        500_000, {"num_envs": 16, "normalize_obs": True, "normalize_reward": True,
                  "ent_coef": 0.0},
        "rl-baselines-zoo acer.yml (normalize: true scales observations and rewards)", -100.0),
    ("awr", "CartPole-v1"): Preset(500_000, {}, "module defaults (the authors')", 475.0),
    ("awr", "Pendulum-v1"): Preset(300_000, {"actor_learning_rate": 1e-3, "action_std": 0.4},
                                   "tuned here (Hopper's action_std)", -300.0),
    ("awr", "Hopper-v5"): Preset(
        1_000_000, {"actor_learning_rate": 1e-4, "action_std": 0.4, "normalize_obs": True},
        "the authors' awr_configs.py, Hopper-v2", None),
    ("off_pac", "CartPole-v1"): Preset(
        1_000_000, {"normalize_obs": True, "num_envs": 32},
        "tuned here; the behaviour stays uniform-random, so the curve is the behaviour's return "
        "and the target policy shows in --eval-every", None),
    ("svpg", "Acrobot-v1"): Preset(
        4_000_000, {"num_envs": 16, "normalize_obs": True, "learning_rate": 1e-3,
                    "value_learning_rate": 1e-3},
        "A2C's Acrobot preset for every particle; 8 particles x 500k steps", None),
    ("openai_es", "HalfCheetah-v5"): Preset(
        10_000_000, {"population_size": 32, "sigma": 0.02, "learning_rate": 0.02},
        "Salimans et al. 2017 sigma 0.02; population and Adam rate chosen here for a one-hour "
        "budget through the Gymnasium bridge", None),
    ("soft_q_learning", "Pendulum-v1"): Preset(50_000, {"alpha": 0.2}, "tuned here", -300.0),
    ("soft_q_learning", "CartPole-v1"): Preset(500_000, {"alpha": 0.05}, "tuned here", 475.0),
    ("soft_q_learning", "MultiGoal-v0"): Preset(
        30_000, {"alpha": 10.0}, "the authors' multigoal_sql.py: reward scale 0.1", None),
    ("td3", "Pendulum-v1"): Preset(20_000, {}, "rl-baselines3-zoo td3.yml", -200.0),
    ("ddpg", "Pendulum-v1"): Preset(20_000, {}, "rl-baselines3-zoo ddpg.yml", -200.0),
    ("sac", "Pendulum-v1"): Preset(20_000, {"learning_rate": 1e-3},
                                   "rl-baselines3-zoo sac.yml", -200.0),
    ("d4pg", "Pendulum-v1"): Preset(20_000, {}, "module defaults", -200.0),
    ("sac_v1", "Pendulum-v1"): Preset(50_000, {}, "module defaults", -200.0),
    ("dpg", "Pendulum-v1"): Preset(200_000, {}, "module defaults", -400.0),
    ("td3", "HalfCheetah-v5"): Preset(300_000, _OFFPOLICY_MUJOCO, "rl-baselines3-zoo td3.yml",
                                      6500.0),
    ("sac", "HalfCheetah-v5"): Preset(300_000, _OFFPOLICY_MUJOCO, "rl-baselines3-zoo sac.yml",
                                      6500.0),
    ("ddpg", "HalfCheetah-v5"): Preset(300_000, _OFFPOLICY_MUJOCO,
                                       "rl-baselines3-zoo ddpg.yml", None),
    ("d4pg", "HalfCheetah-v5"): Preset(
        300_000, {**_OFFPOLICY_MUJOCO, "n_step": 5, "v_min": -200.0, "v_max": 1200.0},
        "Barth-Maron et al. 2018 n-step 5; support set for HalfCheetah's returns", None),
}


def task(env_spec: str) -> str | None:
    """The task a spec names, as presets are keyed (None: a user's environment class)."""
    backend, env_id = resolve(env_spec)
    if backend == "class":
        return None
    return f"brax:{env_id}" if backend == "brax" else env_id


def find(algo: str, env_spec: str) -> tuple[str, Preset] | None:
    """(task, preset) for ``algo`` on ``env_spec``, or None when there is none."""
    name = task(env_spec)
    preset = PRESETS.get((algo, name)) if name is not None else None
    return (name, preset) if preset is not None else None


def for_algorithm(algo: str) -> list[str]:
    """The tasks ``algo`` has presets for."""
    return [t for (a, t) in PRESETS if a == algo]


def check_choice(preset: Any) -> bool:
    if not isinstance(preset, bool):
        raise PgzooError(f"preset must be True (apply the tuned preset when there is one) or "
                         f"False (module defaults), got {preset!r}")
    return preset
