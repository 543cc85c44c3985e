"""The algorithm contract: everything the host side (``run``, ``api``, ``cli``) may know about an
algorithm is declared here, and nowhere else reads a Config field or a module attribute by name.

Each module in ``pgzoo/algos`` ends with one declaration::

    ALGORITHM = Algorithm(
        name="ppo", config=Config, make=make, action_spaces=("discrete", "continuous"),
        default_budget=500_000,           # in ``budget_unit``s, when the user gives none
        default_env="CartPole-v1",
        hyperparameters=("learning_rate", "ent_coef", ...),   # fields that may be traced
    )

and ``make(config, env, budget) -> Agent`` builds its pure functions. An Agent's ``State`` is one
pytree holding everything (parameters, optimiser states, environment state, replay buffer, RNG key,
counters), so it can be scanned, jitted, vmapped over seeds and hyperparameters, and checkpointed
whole. The host side reaches into a State only through the Agent's accessors.

Hyperparameters as data: the fields an algorithm lists in ``hyperparameters`` are used only in
traced arithmetic (never in Python control flow or shapes), so ``with_values(config, {name:
tracer})`` gives a Config whose ``make`` builds the same functions with those values traced. A
grid of values x seeds then trains in one compiled, vmapped call (``pgzoo.run.experiment``;
rejax does the same). The contract test traces every listed field of every algorithm.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from pgzoo.core.rollout import (AGENT_RETURN_SUM, EPISODE_LENGTH_SUM, EPISODE_RETURN_SUM,
                                EPISODE_SUMS, EPISODES, is_episode_sum)

# A metric an algorithm may report: 1 once its computation is complete (dynamic programming
# within its tolerance); the run then stops when every member has converged.
CONVERGED = "converged"
# What a budget counts; an Agent consumes ``units_per_iteration`` of it per ``step``.
BUDGET_UNITS = ("env_steps", "sweeps", "generations")
# Which driver runs the algorithm: the compiled chunk loop (``pgzoo.run.trainer``), or a host-side
# actor-learner driver (Ray) for the distributed family.
DRIVERS = ("compiled", "ray")
ACTION_SPACE_KINDS = ("discrete", "continuous")  # of each agent, in a multi-agent task

__all__ = ["ACTION_SPACE_KINDS", "AGENT_RETURN_SUM", "is_episode_sum", "ActorLearner", "Agent", "Algorithm", "BUDGET_UNITS", "CONVERGED", "DRIVERS",
           "EPISODES",
           "EPISODE_LENGTH_SUM", "EPISODE_RETURN_SUM", "EPISODE_SUMS", "EnvNeeds",
           "standard_env_needs", "with_values"]


def state_params(state) -> Any:
    return state.params


def state_env(state) -> Any:
    return state.env_state


def replace_env(state, env_state, obs):
    return state._replace(env_state=env_state, obs=obs)


def replace_params(state, params):
    return state._replace(params=params)


class ActorLearner(NamedTuple):
    """The pure pieces of an actor-learner algorithm (A3C, IMPALA), which the Ray driver
    (``pgzoo.distributed``) runs in separate processes and ``algos/loops/actor_learner.py``
    runs in one compiled step. An actor holds ``envs_per_actor`` environments; with the
    parameters it last received it plays ``unroll_length`` steps of each, acting with
    ``act``, and turns them into a message with ``message`` (IMPALA: the trajectory and its
    behaviour log-probabilities; A3C: a gradient). The learner applies ``learn`` to
    ``messages_per_update`` messages at a time."""

    # key -> learner state: a NamedTuple whose ``params`` are what the actors act with
    learner_init: Callable[[jax.Array], Any]
    # (params, obs, key, deterministic=False) -> (action, extras)
    act: Callable[..., tuple[jax.Array, Any]]
    # (params, Trajectory [T, E], last observation [E]) -> message
    message: Callable[[Any, Any, jax.Array], Any]
    # (learner state, messages stacked [B, ...]) -> (learner state, scalar metrics)
    learn: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]]
    num_actors: int
    envs_per_actor: int
    unroll_length: int
    messages_per_update: int
    reuse: int = 1  # messages an actor makes from one trajectory, each with newer parameters
    # messages made with parameters more than this many versions old are dropped (None: never;
    # 0: synchronous, as distributed PPO's learner waits for fresh gradients)
    max_staleness: int | None = None


class Agent(NamedTuple):
    """An algorithm's pure functions, built by its ``make`` for one Config and environment."""

    init: Callable[[jax.Array], Any]  # key -> State
    step: Callable[[Any], tuple[Any, dict[str, jax.Array]]]  # State -> (State, scalar metrics)
    policy: Callable[..., jax.Array]  # (params, obs, key, deterministic) -> action
    units_per_iteration: int  # budget units (``Algorithm.budget_unit``) one ``step`` consumes
    # Accessors: the host side reads a State only through these. The defaults fit a NamedTuple
    # State with ``params``, ``env_state`` and ``obs`` fields.
    params: Callable[[Any], Any] = state_params  # State -> what ``policy`` takes
    env_state: Callable[[Any], Any] = state_env  # State -> environment (wrapper) state
    # (State, env_state, obs) -> State with fresh episodes (a resumed host-bridged run)
    with_env: Callable[[Any, Any, Any], Any] = replace_env
    # (State, params) -> State holding these policy parameters (fine-tuning from another run)
    with_params: Callable[[Any, Any], Any] = replace_params
    # the actor-learner pieces, for the Ray driver (None: the algorithm runs compiled only)
    actor_learner: ActorLearner | None = None


@dataclasses.dataclass(frozen=True)
class EnvNeeds:
    """What an algorithm needs from the environment layer for one Config."""

    num_envs: int = 1
    normalize_obs: bool = False
    normalize_reward: bool = False
    gamma: float = 0.99  # the discount of reward normalisation
    tabular_model: bool = False  # needs the transition model P(s'|s, a), R (dynamic programming)
    # observations are the state index of a Discrete space (the tabular methods); otherwise a
    # discrete observation arrives one-hot encoded
    state_index: bool = False
    multi_agent: bool = False  # one action space per agent (MADDPG)


def standard_env_needs(config: Any) -> EnvNeeds:
    """The needs of a Config with the usual fields: ``num_envs`` and, where the algorithm has
    them, ``normalize_obs``, ``normalize_reward`` and ``gamma``. The one place that reads
    Config fields by name for the host side."""
    fields = {f.name for f in dataclasses.fields(config)}
    pick = {name: getattr(config, name) for name in ("num_envs", "normalize_obs",
                                                     "normalize_reward", "gamma")
            if name in fields}
    return EnvNeeds(**pick)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """The declaration the host side reads (see the module docstring)."""

    name: str
    config: type  # a frozen dataclass whose invalid values raise PgzooError
    make: Callable[..., Agent]  # (config, env, budget) -> Agent
    action_spaces: tuple[str, ...]
    default_budget: int
    default_env: str = "CartPole-v1"
    budget_unit: str = "env_steps"
    driver: str = "compiled"
    # False: ``--seeds K`` runs K single-seed calls instead of one vmapped call (for libraries
    # that do not survive vmap: kfac-jax).
    vmap_seeds: bool = True
    env_needs: Callable[[Any], EnvNeeds] = standard_env_needs
    hyperparameters: tuple[str, ...] = ()  # numeric Config fields that may be traced
    summary: str = ""  # one line for ``pgzoo list``
    # how a config of a driver="compiled" algorithm gets an actor-learner form (D4PG's
    # num_actors), for the message when the ray driver is asked for without one
    ray_hint: str = ""

    def __post_init__(self):
        bad = set(self.action_spaces) - set(ACTION_SPACE_KINDS)
        assert self.action_spaces and not bad, f"{self.name}: action spaces {self.action_spaces}"
        assert self.budget_unit in BUDGET_UNITS, f"{self.name}: budget unit {self.budget_unit}"
        assert self.driver in DRIVERS, f"{self.name}: driver {self.driver}"
        assert self.default_budget > 0, f"{self.name}: default budget {self.default_budget}"
        names = {f.name: f for f in dataclasses.fields(self.config)}
        for hp in self.hyperparameters:
            assert hp in names and isinstance(names[hp].default, float), \
                f"{self.name}: hyperparameter {hp!r} must be a float field of its Config"


def with_values(config: Any, values: Mapping[str, Any]) -> Any:
    """A copy of ``config`` with ``values`` set, unvalidated, so they may be JAX tracers (the
    values were validated as Python numbers before tracing)."""
    new = copy.copy(config)
    for name, value in values.items():
        object.__setattr__(new, name, value)
    return new
