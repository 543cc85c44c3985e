"""One experiment's pieces: the algorithm's contract declaration, its Config, the environment and
the Agent, for N seeds and optionally a grid of hyperparameter values.

On JAX-native environments the State carries a leading member axis and every function is vmapped
over it (``--seeds K``); on host-bridged environments there is a single seed and no member axis.
Seed i of a run with base seed s uses ``PRNGKey(s + i)``.

A grid (``grid=[{"learning_rate": 1e-3}, {"learning_rate": 3e-4}]``) sets hyperparameters the
algorithm declares traceable: member m is grid point ``m // num_seeds`` with seed
``m % num_seeds``, and the point's values live in the State (``GridState``), so the whole grid x
seeds trains in one compiled call and is checkpointed with it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo import algos, envs
from pgzoo.algos import presets
from pgzoo.algos.base import Agent, Algorithm, with_values
from pgzoo.core import config as cfg
from pgzoo.errors import PgzooError, check
from pgzoo.run.evaluation import Policy

MAX_TOTAL_STEPS = 2**31 - 1
MAX_SEED = 2**31 - 1
MAX_SEEDS = 4096


class GridState(NamedTuple):
    values: dict[str, jax.Array]  # this member's hyperparameter values
    state: Any  # the algorithm's State


@dataclass
class Experiment:
    algorithm: Algorithm
    config: Any
    env_spec: str
    env: envs.Env
    agent: Agent
    total_steps: int  # the budget, in ``algorithm.budget_unit``s
    seed: int
    num_seeds: int
    grid: tuple[dict[str, float], ...] = ()
    preset: str | None = None  # the preset applied ("algo/task"), if any

    @property
    def algo(self) -> str:
        return self.algorithm.name

    @property
    def vmapped(self) -> bool:
        return self.env.jax_native

    @property
    def members(self) -> int:
        """Entries of the member axis: grid points x seeds."""
        return max(1, len(self.grid)) * self.num_seeds

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.agent.units_per_iteration

    def _agent(self, values) -> Agent:
        """The Agent built with this member's (traced) hyperparameter values."""
        return self.algorithm.make(with_values(self.config, values), self.env, self.total_steps)

    def _init_member(self, key, values=None):
        if not self.grid:
            return self.agent.init(key)
        return GridState(values, self._agent(values).init(key))

    def _step_member(self, state):
        if not self.grid:
            return self.agent.step(state)
        inner, metrics = self._agent(state.values).step(state.state)
        return GridState(state.values, inner), metrics

    def _inner(self, state):
        return state.state if self.grid else state

    def init_state(self):
        if not self.vmapped:
            return self.agent.init(jax.random.PRNGKey(self.seed))
        points = self.grid or ({},)
        keys = jnp.stack([jax.random.PRNGKey(self.seed + i)
                          for _ in points for i in range(self.num_seeds)])
        values = {name: jnp.asarray([p[name] for p in points for _ in range(self.num_seeds)],
                                    jnp.float32) for name in points[0]}
        # lax.map initialises one member at a time (unbatched), as a single-seed run does
        return jax.lax.map(lambda kv: self._init_member(*kv), (keys, values or None))

    def member_seeds(self) -> list[int]:
        """The seed of each member: member m has seed ``seed + m % num_seeds``."""
        return [self.seed + m % self.num_seeds for m in range(self.members)]

    def template(self):
        return jax.eval_shape(self.init_state)

    def step(self, state):
        if not self.vmapped:
            return self.agent.step(state)
        if jax.tree.leaves(state)[0].shape[0] == 1:
            # One member (a run or a seed group): step it unbatched. Under vmap, lax.cond becomes
            # a select of both branches and in-place buffer updates become batched scatters: SAC
            # on Pendulum ran 1.5x slower vmapped over a seed axis of size 1.
            state, metrics = self._step_member(jax.tree.map(lambda x: x[0], state))
            return jax.tree.map(lambda x: x[None], (state, metrics))
        return jax.vmap(self._step_member)(state)

    def member_state(self, state, index: int):
        """The algorithm's State of one member."""
        return self._inner(jax.tree.map(lambda x: x[index], state) if self.vmapped else state)

    def point_state(self, state, point: int):
        """The algorithm's State of grid point ``point``: its seeds, with the member axis."""
        k = self.num_seeds
        return jax.tree.map(lambda x: x[point * k:(point + 1) * k], self._inner(state))

    def params(self, state):
        """Policy parameters (with the member axis on JAX-native environments)."""
        return self.agent.params(self._inner(state))

    def env_state(self, state):
        return self.agent.env_state(self._inner(state))

    def policy(self, state, index: int = 0) -> Policy:
        one = self.member_state(state, index)
        return Policy(self.algo, self.env_spec, self.config, self.agent, self.env,
                      self.agent.params(one), self.agent.env_state(one))

    def with_params(self, state, params):
        """``state`` holding these policy parameters (with the member axis when vmapped)."""
        if not self.grid:
            return self.agent.with_params(state, params)
        return state._replace(state=self.agent.with_params(state.state, params))

    def restart_episodes(self, state, key):
        """On a host-bridged environment, a restored State starts fresh episodes."""
        env_state, ts = self.env.resume(self.agent.env_state(state), key)
        return self.agent.with_env(state, env_state, ts.obs)


def _grid(algorithm: Algorithm, config: Any,
          grid: Sequence[Mapping[str, Any]] | None) -> tuple[dict[str, float], ...]:
    """Validate a grid: every point sets the same traceable fields to valid values."""
    if not grid:
        return ()
    points = [dict(p) for p in grid]
    names = sorted(points[0])
    traceable = algorithm.hyperparameters
    for name in names:
        check(name in traceable, f"{algorithm.name} cannot vary {name!r} inside one compiled "
              f"call; its traceable hyperparameters: {', '.join(traceable) or 'none'}")
    out = []
    for p in points:
        check(sorted(p) == names, f"every grid point must set {', '.join(names)}, got {p}")
        # the point's Config, validated and with its values parsed as the fields' types
        values = cfg.to_dict(cfg.build(algorithm.config, {**cfg.to_dict(config), **p},
                                       algorithm.name))
        out.append({name: float(values[name]) for name in names})
    return tuple(out)


def build(algo: str, env_spec: str, total_steps: int | None = None, seed: int = 0,
          num_seeds: int = 1, overrides: dict[str, Any] | None = None,
          grid: Sequence[Mapping[str, Any]] | None = None, preset: bool = False) -> Experiment:
    """The Experiment of ``algo`` on ``env_spec``. With ``preset``, the tuned preset of the pair
    (``pgzoo.algos.presets``), when there is one, gives the budget and the Config fields that
    ``overrides`` leave unset."""
    algorithm = algos.get(algo)
    found = presets.find(algo, env_spec) if presets.check_choice(preset) else None
    if found is not None:
        overrides = {**found[1].settings, **(overrides or {})}
        if total_steps is None:
            total_steps = found[1].steps
    config = cfg.build(algorithm.config, dict(overrides or {}), algo)
    total_steps = algorithm.default_budget if total_steps is None else total_steps
    check(isinstance(total_steps, int) and not isinstance(total_steps, bool)
          and 0 < total_steps <= MAX_TOTAL_STEPS,
          f"total_steps must be a positive integer of at most {MAX_TOTAL_STEPS:,} (the step "
          f"counters are 32-bit), got {total_steps!r}")
    check(isinstance(num_seeds, int) and not isinstance(num_seeds, bool)
          and 1 <= num_seeds <= MAX_SEEDS,
          f"seeds must be an integer in [1, {MAX_SEEDS}], got {num_seeds!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool)
          and 0 <= seed <= MAX_SEED - num_seeds + 1,
          f"seed must be an integer in [0, {MAX_SEED - num_seeds + 1}] (seeds are 31-bit), "
          f"got {seed!r}")
    points = _grid(algorithm, config, grid)
    needs = algorithm.env_needs(config)
    multi_agent_spec = envs.resolve(env_spec)[0] in envs.MULTI_AGENT_BACKENDS
    if needs.multi_agent and not multi_agent_spec:
        raise PgzooError(f"{algo} is a multi-agent algorithm and {env_spec} has one agent; "
                         f"valid: a multi-agent task such as {', '.join(envs.MULTI_AGENT_EXAMPLES)}")
    if multi_agent_spec and not needs.multi_agent:
        multi = [name for name, a in algos.ALGORITHMS.items()
                 if a.env_needs(a.config()).multi_agent]
        raise PgzooError(f"{env_spec} is a multi-agent task and {algo} acts for one agent; "
                         f"multi-agent algorithms: {', '.join(multi)}")
    env = envs.make(env_spec, num_envs=needs.num_envs, normalize_obs=needs.normalize_obs,
                    normalize_reward=needs.normalize_reward, gamma=needs.gamma,
                    one_hot=not needs.state_index)
    kinds = ([s.kind for s in env.action_space.spaces] if needs.multi_agent
             else [env.action_space.kind])
    kind = next((k for k in kinds if k not in algorithm.action_spaces), kinds[0])
    if kind not in algorithm.action_spaces:
        raise PgzooError(f"{algo} does not support {kind} actions ({env_spec} has "
                         f"{type(env.unwrapped.action_space).__name__} actions); {algo} supports: "
                         + ", ".join(algorithm.action_spaces))
    if needs.state_index and env.observation_space.kind != "discrete":
        raise PgzooError(f"{algo} is a tabular method and needs a finite state space (Discrete "
                         f"observations), and {env_spec} has Box observations; valid: "
                         "FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1, Taxi-v4, mdp:FILE.npz "
                         "or any Gymnasium id with Discrete observations")
    if needs.tabular_model and env.tabular_model() is None:
        raise PgzooError(f"{algo} plans with the transition model p(s', r | s, a), and "
                         f"{env_spec} exposes none; valid: FrozenLake-v1, FrozenLake8x8-v1, "
                         "CliffWalking-v1, Taxi-v4 (and their gymnasium: versions), mdp:FILE.npz, "
                         "or a Gymnasium env class with a toy-text P table")
    if (num_seeds > 1 or points) and not env.jax_native:
        what = f"--seeds {num_seeds}" if num_seeds > 1 else "a hyperparameter grid"
        raise PgzooError(f"{what} needs a JAX-native environment; {env.spec} runs through the "
                         "Gymnasium bridge, so train its seeds one at a time")
    agent = algorithm.make(config, env, total_steps)
    unit = algorithm.budget_unit.replace("_", " ")
    check(total_steps >= agent.units_per_iteration,
          f"total_steps must be at least one iteration of {algo} "
          f"({agent.units_per_iteration} {unit} with this config), got {total_steps}")
    return Experiment(algorithm, config, env.spec, env, agent, total_steps, seed, num_seeds,
                      points, f"{algo}/{found[0]}" if found is not None else None)
