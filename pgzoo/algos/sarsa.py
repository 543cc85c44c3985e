r"""SARSA (Rummery & Niranjan 1994; Sutton & Barto 2018, section 6.4) and expected SARSA
(section 6.6): on-policy TD control with a table of action values.

The agent acts epsilon-greedily in Q. After each step (S, A, R, S') it picks its next action
A' ~ \pi(.|S') from the same policy, and

    SARSA           Q(S, A) <- Q(S, A) + \alpha [R + \gamma Q(S', A') - Q(S, A)]             (eq. 6.7)
    expected SARSA  Q(S, A) <- Q(S, A) + \alpha [R + \gamma \sum_a \pi(a|S') Q(S', a) - Q(S, A)]
                                                                                        (eq. 6.9)

(``expected``), with the bootstrap 0 where S' is terminal; at a time limit (truncation) A' is
drawn at the true last state S'. Because the target follows the exploring policy, SARSA learns
the value of acting epsilon-greedily and prefers the safe path in the book's cliff-walking
Example 6.6. Epsilon and \alpha follow linear schedules (``epsilon_final``, ``step_size_final``).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import (
    ControlConfig,
    Step,
    control_needs,
    epsilon_greedy_probs,
    make_learner,
    td_update,
)
from pgzoo.core import config as cfg


@dataclass(frozen=True)
class Config(ControlConfig):
    expected: bool = False  # expected SARSA: the target averages Q(S', .) over pi(.|S')

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "step_size")


def td_target(q, step: Step, gamma, epsilon, expected: bool):
    """R + gamma Q(S', A') (SARSA) or R + gamma sum_a pi(a|S') Q(S', a) (expected SARSA, pi
    epsilon-greedy in Q), with 0 in place of the bootstrap where S' is terminal."""
    q_next = q[step.final_obs]
    if expected:
        bootstrap = jnp.sum(epsilon_greedy_probs(q_next, epsilon) * q_next, axis=-1)
    else:
        bootstrap = jnp.take_along_axis(q_next, step.final_action[:, None], -1)[:, 0]
    return step.reward + gamma * (1.0 - step.terminated) * bootstrap


def make(config: Config, env, total_steps: int) -> Agent:
    def learn(q, memory, step: Step, alpha, epsilon, key):
        target = td_target(q, step, config.gamma, epsilon, config.expected)
        q, loss = td_update(q, step.obs, step.action, target, alpha)
        return q, memory, {"td_loss": loss}

    return make_learner(config, env, total_steps, learn)


ALGORITHM = Algorithm(
    name="sarsa", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=100_000,
    default_env="FrozenLake-v1",
    env_needs=control_needs,
    hyperparameters=("gamma", "step_size", "epsilon"),
)
