r"""On-policy first-visit Monte-Carlo control for epsilon-soft policies (Sutton & Barto 2018,
section 5.4): action values estimated by averaging the returns that follow each first visit.

The agent acts epsilon-greedily in Q (an epsilon-soft policy) and records its episode
S_0, A_0, R_1, ..., S_{T-1}, A_{T-1}, R_T. When the episode ends it walks back through it,

    G <- \gamma G + R_{t+1}                                        (t = T-1, ..., 0)

and, where (S_t, A_t) does not appear among S_0, A_0, ..., S_{t-1}, A_{t-1} (the first visit),

    N(S_t, A_t) <- N(S_t, A_t) + 1
    Q(S_t, A_t) <- Q(S_t, A_t) + (G - Q(S_t, A_t)) / N(S_t, A_t)

which keeps Q(s, a) the average of the first-visit returns, as the book's Returns(s, a) lists
do (or a constant step size \alpha in place of 1/N: ``step_size`` > 0). The policy stays
epsilon-greedy in Q, and evaluation takes the greedy action. An episode cut by a time limit is
averaged with the return it had; the task must have a time limit, since an episode is kept in a
buffer of that many steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import ControlConfig, Step, control_needs, make_learner
from pgzoo.errors import PgzooError, check


@dataclass(frozen=True)
class Config(ControlConfig):
    step_size: float = 0.0  # 0: the sample average 1/N(s, a) of S&B 5.4; > 0: constant alpha

    def __post_init__(self):
        super().__post_init__()
        check(self.step_size > 0 or self.step_size_final <= 0, "step_size 0 (the sample "
              "average) cannot move to a constant step_size_final; give both or neither")


class Memory(NamedTuple):
    visits: jax.Array  # [S, A] N(s, a), first visits so far
    states: jax.Array  # [N, T] the episode so far, per environment
    actions: jax.Array  # [N, T]
    rewards: jax.Array  # [N, T]
    length: jax.Array  # [N] steps recorded


def first_visit_returns(states, actions, rewards, length, gamma):
    """For one recorded episode ([T] arrays, ``length`` valid steps): the return G_t following
    each step, and whether step t is the first visit of (S_t, A_t)."""
    t = jnp.arange(states.shape[0])
    valid = t < length

    def back(g, x):
        r, ok = x
        g = jnp.where(ok, r + gamma * g, 0.0)
        return g, g

    _, returns = jax.lax.scan(back, jnp.float32(0.0), (rewards, valid), reverse=True)
    same = (states[:, None] == states[None, :]) & (actions[:, None] == actions[None, :])
    seen_before = jnp.any(same & (t[None, :] < t[:, None]) & valid[None, :], axis=1)
    return returns, valid & ~seen_before


def average_episode(q, visits, states, actions, rewards, length, alpha, gamma):
    """Fold one recorded episode into Q: N(S_t, A_t) += 1 and Q(S_t, A_t) moves towards G_t by
    1/N (``alpha`` = 0: the running average of the returns) or by ``alpha``, at each first
    visit. Returns (Q, N, the mean of 1/2 (G_t - Q(S_t, A_t))^2 before the update)."""
    returns, first = first_visit_returns(states, actions, rewards, length, gamma)
    error = returns - q[states, actions]
    visits = visits.at[states, actions].add(first.astype(visits.dtype))
    rate = jnp.where(alpha > 0, alpha, 1.0 / jnp.maximum(visits[states, actions], 1.0))
    q = q.at[states, actions].add(jnp.where(first, rate * error, 0.0))
    loss = jnp.sum(jnp.where(first, 0.5 * error ** 2, 0.0)) / jnp.maximum(first.sum(), 1)
    return q, visits, loss


def make(config: Config, env, total_steps: int) -> Agent:
    horizon = env.max_episode_steps
    if horizon is None:
        raise PgzooError(f"monte_carlo records whole episodes and needs a task with a time "
                         f"limit; {env.spec} has none (use sarsa or q_learning there)")

    def init_memory(num_states, num_actions, num_envs):
        zeros = jnp.zeros((num_envs, horizon), jnp.int32)
        return Memory(jnp.zeros((num_states, num_actions)), zeros, zeros,
                      jnp.zeros((num_envs, horizon)), jnp.zeros(num_envs, jnp.int32))

    def learn(q, memory: Memory, step: Step, alpha, epsilon, key):
        envs = jnp.arange(step.obs.shape[0])
        at = memory.length
        memory = memory._replace(states=memory.states.at[envs, at].set(step.obs),
                                 actions=memory.actions.at[envs, at].set(step.action),
                                 rewards=memory.rewards.at[envs, at].set(step.reward),
                                 length=at + 1)

        def one(carry, i):  # environments whose episode ended, one at a time
            q, visits = carry

            def update(q, visits):
                return average_episode(q, visits, memory.states[i], memory.actions[i],
                                       memory.rewards[i], memory.length[i], alpha, config.gamma)

            def keep(q, visits):
                return q, visits, jnp.float32(jnp.nan)

            q, visits, loss = jax.lax.cond(step.done[i], update, keep, q, visits)
            return (q, visits), loss

        (q, visits), losses = jax.lax.scan(one, (q, memory.visits), envs)
        memory = memory._replace(visits=visits, length=jnp.where(step.done, 0, memory.length))
        return q, memory, {"mc_loss": jnp.nanmean(losses)}

    def restart(memory: Memory):  # fresh episodes (a resumed bridged run): drop partial ones
        return memory._replace(length=jnp.zeros_like(memory.length))

    return make_learner(config, env, total_steps, learn, init_memory, restart)


ALGORITHM = Algorithm(
    name="monte_carlo", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=100_000,
    default_env="FrozenLake-v1",
    env_needs=control_needs,
    hyperparameters=("gamma", "epsilon"),
)
