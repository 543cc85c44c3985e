r"""What the tabular methods share (Sutton & Barto 2018, chapters 4-6): the Bellman backups of a
finite MDP's model, epsilon-greedy action selection over a Q table, and two training loops.

With the model's tables P(s'|s, a), R(s, a, s') and T(s, a, s') (the probability that the step
ends the episode; ``pgzoo.envs.tabular``), the one-step look-ahead of a value function V is

    Q_V(s, a) = \sum_{s'} P(s'|s, a) [R(s, a, s') + \gamma (1 - T(s, a, s')) V(s')]   -> ``q_backup``

and a policy \pi's own value solves the linear system v_\pi = r_\pi + \gamma P_\pi v_\pi with
r_\pi(s) = \sum_a \pi(a|s) \sum_{s'} P R and P_\pi(s, s') = \sum_a \pi(a|s) P(s'|s, a)
(1 - T(s, a, s')): v_\pi = (I - \gamma P_\pi)^{-1} r_\pi                   -> ``solve_policy``

Loops:

- ``make_planner``: dynamic programming. One State step is one sweep over every state (the
  budget counts sweeps); the algorithm's ``sweep(plan) -> (plan, change)`` updates its values,
  and once ``change`` (the largest |V_{k+1}(s) - V_k(s)|) is below the tolerance the plan is
  final and later sweeps leave it as it is (``converged`` = 1). The policy is greedy in the Q
  table, with the environment kept only for evaluation.
- ``make_learner``: sample-based control (Monte-Carlo, SARSA, Q-learning). N environments act
  epsilon-greedily in the shared table, one State step is a block of environment steps, and the
  algorithm's ``learn(q, memory, step, alpha, epsilon, key) -> (q, memory, stats)`` updates the
  table from each transition. Epsilon and the step size alpha follow linear schedules over the
  budget; greedy ties are broken uniformly at random, as the book does.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.algos.base import CONVERGED, Agent, EnvNeeds
from pgzoo.core import config as cfg
from pgzoo.core.rollout import EPISODE_SUMS, block_of_steps, episode_metrics
from pgzoo.errors import check


class Model(NamedTuple):
    """The model's tables as JAX arrays."""

    transitions: jax.Array  # [S, A, S']
    rewards: jax.Array  # [S, A, S']
    terminates: jax.Array  # [S, A, S']
    initial: jax.Array  # [S]


def model_of(env) -> Model:
    m = env.tabular_model()
    return Model(jnp.asarray(m.transitions), jnp.asarray(m.rewards), jnp.asarray(m.terminates),
                 jnp.asarray(m.initial))


def q_backup(model: Model, v: jax.Array, gamma) -> jax.Array:
    """Q_V(s, a) = sum_s' P(s'|s, a) [R(s, a, s') + gamma (1 - T(s, a, s')) V(s')]."""
    future = gamma * (1.0 - model.terminates) * v[None, None, :]
    return jnp.sum(model.transitions * (model.rewards + future), axis=-1)


def solve_policy(model, pi, gamma: float) -> np.ndarray:
    """v_pi = (I - gamma P_pi)^{-1} r_pi for a stochastic policy ``pi`` [S, A], in float64
    (NumPy): the exact answer iterative policy evaluation converges to (gamma < 1, or a policy
    that ends every episode)."""
    p, r, t = (np.asarray(x, np.float64) for x in model[:3])
    pi = np.asarray(pi, np.float64)
    r_pi = np.einsum("sa,sat,sat->s", pi, p, r)
    p_pi = np.einsum("sa,sat->st", pi, p * (1.0 - t))
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * p_pi, r_pi)


def finite_horizon_return(model, pi, horizon: int) -> float:
    """The deterministic policy ``pi`` [S]'s exact expected undiscounted return from the start
    distribution within ``horizon`` steps (a task's time limit), by backward induction on the
    model in float64 (NumPy): what its episodes return on average, with no sampling."""
    p, r, t, init = (np.asarray(x, np.float64) for x in model[:4])
    s = np.arange(len(pi))
    p, r, t = p[s, pi], r[s, pi], t[s, pi]
    v = np.zeros(len(pi))
    for _ in range(horizon):
        v = np.sum(p * (r + (1.0 - t) * v[None, :]), axis=-1)
    return float(init @ v)


def greedy_actions(q: jax.Array, key: jax.Array) -> jax.Array:
    """argmax_a q[..., a], ties broken uniformly at random."""
    best = q >= jnp.max(q, axis=-1, keepdims=True)
    return jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf)).astype(jnp.int32)


def epsilon_greedy(q: jax.Array, epsilon, key: jax.Array) -> jax.Array:
    """With probability epsilon a uniformly random action, otherwise a greedy one."""
    explore_key, random_key, greedy_key = jax.random.split(key, 3)
    random = jax.random.randint(random_key, q.shape[:-1], 0, q.shape[-1], jnp.int32)
    explore = jax.random.uniform(explore_key, q.shape[:-1]) < epsilon
    return jnp.where(explore, random, greedy_actions(q, greedy_key))


def epsilon_greedy_probs(q: jax.Array, epsilon) -> jax.Array:
    """pi(a|s) of the epsilon-greedy policy, the greedy mass split among tied maxima."""
    best = (q >= jnp.max(q, axis=-1, keepdims=True)).astype(q.dtype)
    return epsilon / q.shape[-1] + (1.0 - epsilon) * best / best.sum(-1, keepdims=True)


def index(obs: jax.Array) -> jax.Array:
    """The state index a tabular observation carries (it arrives as a float)."""
    return obs.astype(jnp.int32)


def greedy_policy(params, obs, key, deterministic=False):
    """The policy of a Q table: argmax_a Q(s, a) (first maximum when deterministic, ties broken
    at random otherwise)."""
    q = params[index(obs)]
    if deterministic:
        return jnp.argmax(q, axis=-1).astype(jnp.int32)
    return greedy_actions(q, key)


def linear(start, end, fraction, t, total):
    """A value moving linearly from ``start`` to ``end`` over ``fraction`` of ``total``."""
    progress = jnp.clip(t / jnp.maximum(fraction * total, 1.0), 0.0, 1.0)
    return start + progress * (end - start)


# --- dynamic programming -----------------------------------------------------------------------
class PlanState(NamedTuple):
    params: jax.Array  # Q [S, A]: what the policy acts on
    plan: Any  # the algorithm's values (V, a policy, ...)
    converged: jax.Array  # the last sweep changed no value by more than the tolerance
    env_state: Any  # for evaluation only: planning never steps the environment
    obs: jax.Array


def make_planner(env, init_plan: Callable[[], Any], sweep: Callable, q_of: Callable,
                 tolerance: float, policy: Callable = greedy_policy) -> Agent:
    """A dynamic-programming Agent: ``sweep(plan) -> (plan, change, stats)`` is one sweep,
    ``q_of(plan)`` the Q table the policy acts on."""

    def init(key):
        env_state, ts = env.reset(key)
        plan = init_plan()
        return PlanState(q_of(plan), plan, jnp.bool_(False), env_state, ts.obs)

    def step(state: PlanState):
        new_plan, change, stats = sweep(state.plan)
        # a converged plan stays as it is: the stopping tolerance ends the computation
        plan = jax.tree.map(lambda new, old: jnp.where(state.converged, old, new), new_plan,
                            state.plan)
        converged = state.converged | (change < tolerance)
        zero = jnp.float32(0.0)
        return (state._replace(params=q_of(plan), plan=plan, converged=converged),
                {**{k: zero for k in EPISODE_SUMS}, "bellman_error": change,
                 CONVERGED: converged.astype(jnp.float32), **stats})

    return Agent(init, step, policy, 1)


@dataclass(frozen=True)
class PlanConfig:
    """The settings every dynamic-programming method has."""

    gamma: float = 1.0  # S&B ch. 4: episodic tasks, undiscounted
    tolerance: float = 1e-6  # stop once a sweep changes no value by more than this (S&B's theta)

    def __post_init__(self):
        cfg.positive(self, "tolerance")
        cfg.unit_interval(self, "gamma")


def plan_needs(config) -> EnvNeeds:
    return EnvNeeds(num_envs=1, gamma=config.gamma, tabular_model=True, state_index=True)


# --- sample-based control ----------------------------------------------------------------------
@dataclass(frozen=True)
class ControlConfig:
    """The settings every sample-based tabular method has (S&B Example 6.6's defaults)."""

    num_envs: int = 1  # one agent, as in the book
    gamma: float = 1.0  # S&B Example 6.6 (CliffWalking, undiscounted)
    step_size: float = 0.5  # alpha, S&B Example 6.6
    step_size_final: float = -1.0  # alpha at the end of the run, linearly; < 0: constant alpha
    epsilon: float = 0.1  # S&B Example 6.6
    epsilon_final: float = -1.0  # epsilon after exploration_fraction of the run; < 0: constant
    exploration_fraction: float = 0.5  # of the budget over which epsilon moves
    q_init: float = 0.0  # the initial Q(s, a) (optimistic when above the returns)
    block_size: int = 100  # environment steps per State step (only sets the iteration length)

    def __post_init__(self):
        cfg.positive(self, "num_envs", "block_size")
        cfg.unit_interval(self, "gamma", "epsilon", "exploration_fraction")
        cfg.non_negative(self, "step_size")
        check(self.step_size <= 1.0 and self.step_size_final <= 1.0, f"step sizes must be at "
              f"most 1, got step_size {self.step_size}, step_size_final {self.step_size_final}")
        check(self.epsilon_final <= 1.0, f"epsilon_final must be in [0, 1] (or < 0: constant "
              f"epsilon), got {self.epsilon_final}")


def control_needs(config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_envs, gamma=config.gamma, state_index=True)

class Step(NamedTuple):
    """One transition of each environment, with the actions the behaviour policy picks next."""

    obs: jax.Array  # [N] s
    action: jax.Array  # [N] a
    reward: jax.Array  # [N] r
    terminated: jax.Array  # [N]
    done: jax.Array  # [N] terminated or truncated
    final_obs: jax.Array  # [N] s' (the true last state where the episode ended)
    final_action: jax.Array  # [N] a' ~ pi(.|s'): SARSA's next action (sampled at s' if done)


class LearnState(NamedTuple):
    params: jax.Array  # Q [S, A]
    memory: Any  # the algorithm's own: visit counts, the episode so far, ...
    env_state: Any
    obs: jax.Array
    action: jax.Array  # [N] the action already chosen for ``obs`` (SARSA acts on it)
    key: jax.Array
    env_steps: jax.Array  # steps per environment


def make_learner(config, env, total_steps: int, learn: Callable,
                 init_memory: Callable[[int, int, int], Any] = lambda s, a, n: (),
                 restart_memory: Callable[[Any], Any] = lambda m: m) -> Agent:
    """A sample-based tabular Agent (see the module docstring); ``config`` has ``num_envs``,
    ``block_size``, ``epsilon``, ``epsilon_final``, ``exploration_fraction``, ``step_size``,
    ``step_size_final`` and ``q_init``. ``restart_memory`` forgets what belongs to episodes
    in progress when fresh ones start (a resumed host-bridged run)."""
    num_states, num_actions = env.observation_space.n, env.action_space.n
    num_envs = config.num_envs

    def schedules(env_steps):
        t = (env_steps * num_envs).astype(jnp.float32)
        eps_end = config.epsilon if config.epsilon_final < 0 else config.epsilon_final
        alpha_end = config.step_size if config.step_size_final < 0 else config.step_size_final
        epsilon = linear(config.epsilon, eps_end, config.exploration_fraction, t, total_steps)
        alpha = linear(config.step_size, alpha_end, 1.0, t, total_steps)
        return epsilon, alpha

    def init(key):
        env_key, act_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        q = jnp.full((num_states, num_actions), config.q_init, jnp.float32)
        action = epsilon_greedy(q[index(ts.obs)], config.epsilon, act_key)
        return LearnState(q, init_memory(num_states, num_actions, num_envs), env_state, ts.obs,
                          action, state_key, jnp.int32(0))

    def with_env(state: LearnState, env_state, obs):
        key, act_key = jax.random.split(state.key)
        epsilon, _ = schedules(state.env_steps)
        action = epsilon_greedy(state.params[index(obs)], epsilon, act_key)
        return state._replace(env_state=env_state, obs=obs, action=action, key=key,
                              memory=restart_memory(state.memory))

    def env_step(state: LearnState, key):
        env_key, next_key, final_key, learn_key = jax.random.split(key, 4)
        epsilon, alpha = schedules(state.env_steps)
        env_state, ts = env.step(state.env_state, state.action, env_key)
        q = state.params
        next_action = epsilon_greedy(q[index(ts.obs)], epsilon, next_key)
        at_final = epsilon_greedy(q[index(ts.final_obs)], epsilon, final_key)
        transition = Step(index(state.obs), state.action, ts.reward, ts.terminated, ts.done,
                          index(ts.final_obs), jnp.where(ts.done, at_final, next_action))
        q, memory, stats = learn(q, state.memory, transition, alpha, epsilon, learn_key)
        state = LearnState(q, memory, env_state, ts.obs, next_action, state.key,
                           state.env_steps + 1)
        return state, {**stats, "epsilon": epsilon, "step_size": alpha,
                       **episode_metrics(ts.info)}

    step = block_of_steps(env_step, config.block_size)
    return Agent(init, step, greedy_policy, config.block_size * num_envs, with_env=with_env)


def td_update(q: jax.Array, s: jax.Array, a: jax.Array, target: jax.Array, alpha):
    """Q(s, a) <- Q(s, a) + alpha (target - Q(s, a)) for each environment's transition (applied
    in turn, so environments that share a pair each move it); returns (Q, mean 1/2 delta^2)."""

    def one(q, x):
        s_i, a_i, y = x
        delta = y - q[s_i, a_i]
        return q.at[s_i, a_i].add(alpha * delta), 0.5 * delta ** 2

    q, losses = jax.lax.scan(one, q, (s, a, target))
    return q, jnp.mean(losses)
