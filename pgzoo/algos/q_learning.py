r"""Q-learning (Watkins 1989; Sutton & Barto 2018, section 6.5): off-policy TD control with a
table of action values.

The agent acts epsilon-greedily in Q; after each step (S, A, R, S') it moves Q(S, A) towards the
greedy one-step target, whatever action it will actually take next:

    Q(S, A) <- Q(S, A) + \alpha [R + \gamma \max_a Q(S', a) - Q(S, A)]          (eq. 6.8)

with \max_a Q(S', a) = 0 where S' is terminal; at a time limit (truncation) it bootstraps from
the true last state S'. Q converges to q_* under the usual step-size conditions with every pair
visited infinitely often, so the greedy policy \arg\max_a Q(s, a), which evaluation uses, is
optimal even while the behaviour policy explores (the book's cliff-walking Example 6.6).
Epsilon and \alpha follow linear schedules (``epsilon_final``, ``step_size_final``).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import ControlConfig, Step, control_needs, make_learner, td_update
from pgzoo.core import config as cfg


@dataclass(frozen=True)
class Config(ControlConfig):
    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "step_size")


def td_target(q, step: Step, gamma):
    """R + gamma max_a Q(S', a), with 0 in place of max_a Q(S', a) where S' is terminal."""
    return step.reward + gamma * (1.0 - step.terminated) * jnp.max(q[step.final_obs], axis=-1)


def make(config: Config, env, total_steps: int) -> Agent:
    def learn(q, memory, step: Step, alpha, epsilon, key):
        q, loss = td_update(q, step.obs, step.action, td_target(q, step, config.gamma), alpha)
        return q, memory, {"td_loss": loss}

    return make_learner(config, env, total_steps, learn)


ALGORITHM = Algorithm(
    name="q_learning", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=100_000,
    default_env="FrozenLake-v1",
    env_needs=control_needs,
    hyperparameters=("gamma", "step_size", "epsilon"),
)
