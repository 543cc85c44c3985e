"""One experiment's pieces: algorithm module, Config, environment and Agent, for N seeds.

On JAX-native environments the State carries a leading seed axis and every function is vmapped
over it (``--seeds K``); on host-bridged environments there is a single seed and no seed axis.
Seed i of a run with base seed s uses ``PRNGKey(s + i)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from pgzoo import algos, envs
from pgzoo.algos.base import Agent
from pgzoo.core import config as cfg
from pgzoo.errors import PgzooError, check
from pgzoo.run.evaluation import Policy


@dataclass
class Experiment:
    algo: str
    module: ModuleType
    config: Any
    env_spec: str
    env: envs.Env
    agent: Agent
    total_steps: int
    seed: int
    num_seeds: int

    @property
    def vmapped(self) -> bool:
        return self.env.jax_native

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.agent.steps_per_iteration

    def init_state(self):
        if not self.vmapped:
            return self.agent.init(jax.random.PRNGKey(self.seed))
        keys = jnp.stack([jax.random.PRNGKey(self.seed + i) for i in range(self.num_seeds)])
        return jax.vmap(self.agent.init)(keys)

    def template(self):
        return jax.eval_shape(self.init_state)

    def step(self, state):
        if not self.vmapped:
            return self.agent.step(state)
        if jax.tree.leaves(state)[0].shape[0] == 1:
            # One seed (a run or a seed group): step it unbatched. Under vmap, lax.cond becomes a
            # select of both branches and in-place buffer updates become batched scatters: SAC
            # on Pendulum ran 1.5x slower vmapped over a seed axis of size 1.
            state, metrics = self.agent.step(jax.tree.map(lambda x: x[0], state))
            return jax.tree.map(lambda x: x[None], (state, metrics))
        return jax.vmap(self.agent.step)(state)

    def seed_state(self, state, index: int):
        return jax.tree.map(lambda x: x[index], state) if self.vmapped else state

    def policy(self, state, index: int = 0) -> Policy:
        one = self.seed_state(state, index)
        return Policy(self.algo, self.env_spec, self.config, self.agent, self.env, one.params,
                      one.env_state)

    def restart_episodes(self, state, key):
        """On a host-bridged environment, a restored State starts fresh episodes."""
        env_state, ts = self.env.resume(state.env_state, key)
        return state._replace(env_state=env_state, obs=ts.obs)


def build(algo: str, env_spec: str, total_steps: int | None = None, seed: int = 0,
          num_seeds: int = 1, overrides: dict[str, Any] | None = None) -> Experiment:
    module = algos.get(algo)
    config = cfg.build(module.Config, dict(overrides or {}), algo)
    total_steps = module.DEFAULT_TOTAL_STEPS if total_steps is None else total_steps
    check(isinstance(total_steps, int) and not isinstance(total_steps, bool) and total_steps > 0,
          f"total_steps must be a positive integer, got {total_steps!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0,
          f"seed must be an integer >= 0, got {seed!r}")
    check(isinstance(num_seeds, int) and not isinstance(num_seeds, bool) and num_seeds >= 1,
          f"seeds must be an integer >= 1, got {num_seeds!r}")
    env = envs.make(env_spec, num_envs=config.num_envs,
                    normalize_obs=getattr(config, "normalize_obs", False),
                    normalize_reward=getattr(config, "normalize_reward", False),
                    gamma=getattr(config, "gamma", 0.99))
    kind = env.action_space.kind
    if kind not in module.ACTION_SPACES:
        raise PgzooError(f"{algo} does not support {kind} actions ({env_spec} has "
                         f"{type(env.unwrapped.action_space).__name__} actions); {algo} supports: "
                         + ", ".join(module.ACTION_SPACES))
    if num_seeds > 1 and not env.jax_native:
        raise PgzooError(f"--seeds {num_seeds} needs a JAX-native environment; {env.spec} runs "
                         "through the Gymnasium bridge, so train its seeds one at a time")
    agent = module.make(config, env, total_steps)
    check(total_steps >= agent.steps_per_iteration,
          f"total_steps must be at least one iteration of {algo} "
          f"({agent.steps_per_iteration} steps with this config), got {total_steps}")
    return Experiment(algo, module, config, env.spec, env, agent, total_steps, seed, num_seeds)
