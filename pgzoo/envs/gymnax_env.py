"""Adapter from a gymnax environment to pgzoo's batched protocol; runs entirely inside jit."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep
from pgzoo.errors import PgzooError


class GymnaxEnv(Env):
    jax_native = True

    def __init__(self, name: str, num_envs: int):
        import gymnax

        self.name = name
        self.spec = f"gymnax:{name}"
        self.num_envs = num_envs
        self._env, self._params = gymnax.make(name)
        try:
            self.observation_space = spaces.from_gymnax(self._env.observation_space(self._params))
            self.action_space = spaces.from_gymnax(self._env.action_space(self._params))
        except TypeError as err:
            raise PgzooError(f"gymnax:{name} has a {err} space; pgzoo supports Box observations "
                             "and Discrete or Box actions") from None
        if not isinstance(self.observation_space, spaces.Box):
            raise PgzooError(f"gymnax:{name} has Discrete observations; pgzoo supports Box "
                             "observations")
        self.max_episode_steps = int(self._params.max_steps_in_episode)

    def _reset_one(self, key):
        obs, state = self._env.reset_env(key, self._params)
        return state, obs.astype(jnp.float32)

    def reset(self, key):
        state, obs = jax.vmap(self._reset_one)(jax.random.split(key, self.num_envs))
        return state, initial_timestep(obs, self.num_envs)

    def _step_one(self, state, action, key):
        key_step, key_reset = jax.random.split(key)
        obs, next_state, reward, terminated, _ = self._env.step_env(
            key_step, state, action, self._params)
        obs = obs.astype(jnp.float32)
        terminated = jnp.asarray(terminated, bool)
        # A time limit that coincides with a terminal state is a termination (no bootstrap).
        truncated = jnp.logical_and(self._env.is_truncated(next_state, self._params), ~terminated)
        done = jnp.logical_or(terminated, truncated)
        reset_state, reset_obs = self._reset_one(key_reset)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        next_obs = jnp.where(done, reset_obs, obs)
        return next_state, TimeStep(next_obs, jnp.asarray(reward, jnp.float32).reshape(()),
                                    terminated, truncated, obs, {})

    def step(self, state, action, key):
        if isinstance(self.action_space, spaces.Discrete):
            action = action.astype(jnp.int32)
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._step_one)(state, action, keys)
