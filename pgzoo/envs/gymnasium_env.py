"""The host bridge: any Gymnasium environment behind pgzoo's functional protocol.

The simulators live on the host; ``reset`` and ``step`` are JAX ``io_callback``s, so an algorithm's
rollout is the same compiled code for this backend and for JAX-native ones. The JAX-side state is
only a step counter: the simulator state itself cannot be checkpointed, which is why resuming a run
on this backend starts fresh episodes (``resume``) while keeping every learned statistic.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep
from pgzoo.errors import PgzooError


class GymnasiumEnv(Env):
    jax_native = False

    def __init__(self, make_env: Callable[[], object], num_envs: int, spec: str):
        self.spec = spec
        self.num_envs = num_envs
        self._make_env = make_env
        self._envs = [make_env() for _ in range(num_envs)]
        first = self._envs[0]
        try:
            self.observation_space = spaces.from_gymnasium(first.observation_space)
            self.action_space = spaces.from_gymnasium(first.action_space)
        except TypeError as err:
            raise PgzooError(
                f"environment {spec!r} has a {err} space; pgzoo supports Box observations and "
                "Discrete or Box actions") from None
        if not isinstance(self.observation_space, spaces.Box):
            raise PgzooError(f"environment {spec!r} has a Discrete observation space; "
                             "pgzoo supports Box observations")
        gym_spec = getattr(first, "spec", None)
        self.max_episode_steps = getattr(gym_spec, "max_episode_steps", None)
        obs_shape = self.observation_space.shape
        n = num_envs
        self._obs_struct = jax.ShapeDtypeStruct((n, *obs_shape), jnp.float32)
        self._step_struct = (
            self._obs_struct, jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((n,), jnp.bool_), jax.ShapeDtypeStruct((n,), jnp.bool_),
            self._obs_struct)
        self._discrete = isinstance(self.action_space, spaces.Discrete)

    # --- host side -------------------------------------------------------------------------
    def _host_reset(self, seed):
        seed = int(seed)
        obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(self._envs)]
        return np.asarray(obs, np.float32).reshape(self._obs_struct.shape)

    def _host_step(self, actions):
        actions = np.asarray(actions)
        n = self.num_envs
        obs = np.empty(self._obs_struct.shape, np.float32)
        final = np.empty_like(obs)
        rewards = np.empty(n, np.float32)
        terminated = np.empty(n, bool)
        truncated = np.empty(n, bool)
        for i, env in enumerate(self._envs):
            action = int(actions[i]) if self._discrete else actions[i]
            o, r, term, trunc, _ = env.step(action)
            final[i] = o
            rewards[i], terminated[i] = r, term
            truncated[i] = trunc and not term
            obs[i] = env.reset()[0] if (term or trunc) else o
        return obs, rewards, terminated, truncated, final

    # --- JAX side --------------------------------------------------------------------------
    def reset(self, key):
        seed = jax.random.randint(key, (), 0, 2**30)
        obs = io_callback(self._host_reset, self._obs_struct, seed, ordered=True)
        return jnp.zeros((), jnp.int32), initial_timestep(obs, self.num_envs)

    def step(self, state, action, key):
        obs, reward, terminated, truncated, final = io_callback(
            self._host_step, self._step_struct, action, ordered=True)
        return state + 1, TimeStep(obs, reward, terminated, truncated, final, {})

    def close(self) -> None:
        for env in self._envs:
            env.close()
