"""The functional, batched environment protocol shared by every backend.

    reset(key)                      -> (env_state, timestep)
    step(env_state, action, key)    -> (env_state, timestep)

Every array carries a leading axis of size ``num_envs``. Episodes reset automatically: where an
episode ended at a step, ``timestep.obs`` is already the first observation of the next episode and
``timestep.final_obs`` is the true last observation of the episode that ended. Algorithms bootstrap
from ``V(final_obs)`` where ``truncated`` (a time limit) and not where ``terminated``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.envs.spaces import Space


class TimeStep(NamedTuple):
    obs: jax.Array  # [N, *obs_shape]; after an auto-reset, the new episode's first observation
    reward: jax.Array  # [N] float32
    terminated: jax.Array  # [N] bool: the MDP reached a terminal state; V(final_obs) = 0
    truncated: jax.Array  # [N] bool: cut by a time limit; bootstrap on V(final_obs)
    final_obs: jax.Array  # [N, *obs_shape]; last observation of the step (pre-reset)
    info: dict[str, Any]  # wrappers add entries, e.g. episode_return where the episode ended

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class Env:
    """Base of every environment and wrapper: a batch of ``num_envs`` copies of one task."""

    num_envs: int
    observation_space: Space
    action_space: Space
    jax_native: bool  # True: steps inside jit with no host round trip, can be vmapped over seeds
    spec: str  # the spec string that made it, e.g. "gymnax:CartPole-v1"
    max_episode_steps: int | None

    def reset(self, key: jax.Array) -> tuple[Any, TimeStep]:
        raise NotImplementedError

    def step(self, state: Any, action: jax.Array, key: jax.Array) -> tuple[Any, TimeStep]:
        raise NotImplementedError

    def resume(self, state: Any, key: jax.Array) -> tuple[Any, TimeStep]:
        """Start fresh episodes but keep what wrappers learned (normalisation statistics).

        Used when a run is resumed on a host-side environment, whose simulator state cannot be
        saved in a checkpoint."""
        return self.reset(key)

    def normalize_obs(self, state: Any, obs: jax.Array) -> jax.Array:
        """Apply the observation transformation of the wrappers, with frozen statistics."""
        return obs

    def denormalize_obs(self, state: Any, obs: jax.Array) -> jax.Array:
        """Undo ``normalize_obs`` (exact except where normalisation clipped)."""
        return obs

    def host_error(self) -> Exception | None:
        """The error a host-side simulator raised inside a compiled call, if one did (JAX reports
        it only as a runtime error of the call); None for JAX-native environments."""
        return None

    def tabular_model(self) -> Any:
        """The finite MDP's tables (``pgzoo.envs.tabular.TabularModel``) where the task has them,
        for the planning methods; None otherwise."""
        return None

    @property
    def unwrapped(self) -> Env:
        return self


def initial_timestep(obs: jax.Array, num_envs: int) -> TimeStep:
    zeros = jnp.zeros((num_envs,), jnp.float32)
    false = jnp.zeros((num_envs,), bool)
    return TimeStep(obs, zeros, false, false, obs, {})
