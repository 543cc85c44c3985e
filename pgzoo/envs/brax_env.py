"""Adapter from a Brax environment to pgzoo's batched protocol; runs entirely inside jit.

``brax:NAME`` names an environment of ``brax.envs`` (ant, halfcheetah, hopper, humanoid,
inverted_pendulum, ...) on Brax's default physics pipeline; ``brax:NAME@PIPELINE`` picks another
(``generalized``, ``positional``, ``spring``, ``mjx``). Brax environments have no time limit of
their own: episodes are cut at ``max_episode_steps`` = 1000 (Brax's training default) and
reported as truncations; Brax's ``done`` is a termination. Actions are in [-1, 1].
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep
from pgzoo.envs.quiet import quiet_mujoco_deprecations
from pgzoo.errors import PgzooError

MAX_EPISODE_STEPS = 1000  # brax.envs.create / brax training default episode_length
PIPELINES = ("generalized", "positional", "spring", "mjx")


class BraxState(NamedTuple):
    physics: Any  # brax.envs.State of one environment
    steps: jax.Array


def _import_brax_envs():
    """``brax.envs``, imported without MuJoCo's "Failed to import mujoco_warp" print (MJX's
    optional Warp backend, which pgzoo does not use). Raises ImportError without Brax."""
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs
    return envs


def brax_ids() -> tuple[str, ...]:
    try:
        envs = _import_brax_envs()
    except ImportError:
        return ()
    return tuple(sorted(envs._envs))  # brax keeps its registry here; there is no public list


class BraxEnv(Env):
    jax_native = True

    def __init__(self, name: str, num_envs: int):
        try:
            envs = _import_brax_envs()
        except ImportError:
            raise PgzooError(f"brax:{name} needs Brax: pip install 'pgzoo[brax]'") from None
        env_id, _, pipeline = name.partition("@")
        if env_id not in brax_ids():
            raise PgzooError(f"unknown Brax environment {env_id!r}; valid: "
                             + ", ".join(brax_ids()))
        if pipeline and pipeline not in PIPELINES:
            raise PgzooError(f"unknown Brax pipeline {pipeline!r}; valid: {', '.join(PIPELINES)}")
        with warnings.catch_warnings(), quiet_mujoco_deprecations():
            warnings.simplefilter("ignore", UserWarning)  # "Brax ... not actively maintained"
            self._env = envs.get_environment(env_id, **({"backend": pipeline} if pipeline else {}))
        self.name = name
        self.spec = f"brax:{name}"
        self.num_envs = num_envs
        self.max_episode_steps = MAX_EPISODE_STEPS
        self.observation_space = spaces.Box(np.full(self._env.observation_size, -np.inf),
                                            np.full(self._env.observation_size, np.inf))
        self.action_space = spaces.Box(-np.ones(self._env.action_size),
                                       np.ones(self._env.action_size))

    def _reset_one(self, key):
        physics = self._env.reset(key)
        return BraxState(physics, jnp.int32(0)), physics.obs.astype(jnp.float32)

    def reset(self, key):
        state, obs = jax.vmap(self._reset_one)(jax.random.split(key, self.num_envs))
        return state, initial_timestep(obs, self.num_envs)

    def _step_one(self, state: BraxState, action, key):
        physics = self._env.step(state.physics, action)
        obs = physics.obs.astype(jnp.float32)
        steps = state.steps + 1
        terminated = jnp.asarray(physics.done) > 0
        truncated = (steps >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        reset_state, reset_obs = self._reset_one(key)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state,
                                  BraxState(physics, steps))
        return next_state, TimeStep(jnp.where(done, reset_obs, obs),
                                    jnp.asarray(physics.reward, jnp.float32), terminated, truncated,
                                    obs, {})

    def step(self, state, action, key):
        return jax.vmap(self._step_one)(state, action, jax.random.split(key, self.num_envs))
