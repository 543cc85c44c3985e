"""Collecting T steps from a batch of environments inside one compiled ``scan``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Trajectory(NamedTuple):
    obs: jax.Array  # [T, N, ...] observation the action was taken in
    action: jax.Array  # [T, N, ...]
    extras: Any  # whatever the acting function returned beside the action (log-prob, value)
    reward: jax.Array  # [T, N]
    terminated: jax.Array  # [T, N]
    truncated: jax.Array  # [T, N]
    final_obs: jax.Array  # [T, N, ...] true next observation (pre-reset)
    info: dict  # [T, N] entries from wrappers

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


def rollout(env, env_state, obs, key, act: Callable, num_steps: int):
    """Run ``act(obs, key) -> (action, extras)`` for ``num_steps`` steps.

    Returns the final environment state, the observation to continue from, and the Trajectory."""

    def one_step(carry, step_key):
        env_state, obs = carry
        act_key, env_key = jax.random.split(step_key)
        action, extras = act(obs, act_key)
        env_state, ts = env.step(env_state, action, env_key)
        out = Trajectory(obs, action, extras, ts.reward, ts.terminated, ts.truncated,
                         ts.final_obs, ts.info)
        return (env_state, ts.obs), out

    (env_state, obs), traj = jax.lax.scan(one_step, (env_state, obs),
                                          jax.random.split(key, num_steps))
    return env_state, obs, traj


# The metrics every algorithm reports and the host side reads: sums over the episodes that ended
# in an iteration (the host divides them into mean return and length).
EPISODES, EPISODE_RETURN_SUM, EPISODE_LENGTH_SUM = "episodes", "episode_return_sum", "episode_length_sum"
EPISODE_SUMS = (EPISODES, EPISODE_RETURN_SUM, EPISODE_LENGTH_SUM)
# Multi-agent tasks add one return sum per agent, ``agent_return_sum/NAME``; the host reports
# ``NAME/episode_return``, the agent's mean episode return.
AGENT_RETURN_SUM = "agent_return_sum/"


def is_episode_sum(name: str) -> bool:
    return name in EPISODE_SUMS or name.startswith(AGENT_RETURN_SUM)


def episode_metrics(info: dict) -> dict[str, jax.Array]:
    """Sums over the episodes that ended in a batch; the host turns them into means."""
    done = info["episode_done"]
    return {
        EPISODES: done.sum().astype(jnp.float32),
        EPISODE_RETURN_SUM: jnp.where(done, info["episode_return"], 0.0).sum(),
        EPISODE_LENGTH_SUM: jnp.where(done, info["episode_length"], 0).sum().astype(jnp.float32),
        **{AGENT_RETURN_SUM + name: jnp.where(done, r, 0.0).sum()
           for name, r in info.get("agent_returns", {}).items()},
    }


def block_of_steps(env_step: Callable, block_size: int) -> Callable:
    """A State step of ``block_size`` calls of ``env_step(state, key) -> (state, metrics)``
    (a scan; the State has a ``key`` field), whose metrics are the block's sums of the episode
    sums and means (NaN ignored) of the rest."""

    def step(state):
        key, block_key = jax.random.split(state.key)
        state, m = jax.lax.scan(env_step, state._replace(key=key),
                                jax.random.split(block_key, block_size))
        return state, {k: (v.sum() if is_episode_sum(k) else jnp.nanmean(v)) for k, v in m.items()}

    return step
