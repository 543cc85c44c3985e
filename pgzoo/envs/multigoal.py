"""The multi-goal task of soft Q-learning (Haarnoja et al. 2017, section 5.1), JAX-native.

A point mass in the plane starts near the origin, s_0 ~ N(0, 0.1^2 I), and moves by its action,
a velocity in [-1, 1]^2: s' = clip(s + a, -7, 7). Four goals sit at (+-5, 0) and (0, +-5). The
reward is

    r(s, a) = - 30 ||a||^2 - min_g ||s' - g||^2  (+ 10 on reaching a goal)

and an episode ends (a termination) within distance 1 of a goal, or after 30 steps (a time
limit). A policy that maximises the return alone commits to one goal; a maximum-entropy policy
keeps all four, which is what this task is for. ``goal_index(obs)`` tells which goal a final
observation reached (-1: none).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep

GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]], np.float32)
GOAL_THRESHOLD = 1.0
GOAL_REWARD = 10.0
ACTION_COST = 30.0
DISTANCE_COST = 1.0
INIT_SIGMA = 0.1
BOUND = 7.0
MAX_EPISODE_STEPS = 30


class MultiGoalState(NamedTuple):
    position: jax.Array
    steps: jax.Array


def goal_index(position: jax.Array) -> jax.Array:
    """The goal within GOAL_THRESHOLD of each position, or -1."""
    distance = jnp.linalg.norm(position[..., None, :] - GOALS, axis=-1)
    return jnp.where(distance.min(-1) < GOAL_THRESHOLD, distance.argmin(-1), -1)


class MultiGoalEnv(Env):
    jax_native = True

    def __init__(self, num_envs: int):
        self.name = "MultiGoal-v0"
        self.spec = f"pgzoo:{self.name}"
        self.num_envs = num_envs
        self.max_episode_steps = MAX_EPISODE_STEPS
        self.observation_space = spaces.Box(np.full(2, -BOUND), np.full(2, BOUND))
        self.action_space = spaces.Box(-np.ones(2), np.ones(2))

    def _reset_one(self, key):
        position = jnp.clip(INIT_SIGMA * jax.random.normal(key, (2,)), -BOUND, BOUND)
        return MultiGoalState(position, jnp.int32(0)), position

    def reset(self, key):
        state, obs = jax.vmap(self._reset_one)(jax.random.split(key, self.num_envs))
        return state, initial_timestep(obs, self.num_envs)

    def _step_one(self, state: MultiGoalState, action, key):
        action = jnp.clip(action, -1.0, 1.0)
        position = jnp.clip(state.position + action, -BOUND, BOUND)
        distance_sq = jnp.sum((position - GOALS) ** 2, axis=-1).min()
        terminated = goal_index(position) >= 0
        reward = (-ACTION_COST * jnp.sum(action ** 2) - DISTANCE_COST * distance_sq
                  + GOAL_REWARD * terminated)
        steps = state.steps + 1
        truncated = (steps >= MAX_EPISODE_STEPS) & ~terminated
        done = terminated | truncated
        reset_state, reset_obs = self._reset_one(key)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state,
                                  MultiGoalState(position, steps))
        return next_state, TimeStep(jnp.where(done, reset_obs, position),
                                    reward.astype(jnp.float32), terminated, truncated, position,
                                    {})

    def step(self, state, action, key):
        return jax.vmap(self._step_one)(state, action, jax.random.split(key, self.num_envs))
