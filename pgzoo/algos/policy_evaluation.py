r"""Iterative policy evaluation (Sutton & Barto 2018, section 4.1): the value v_\pi of a fixed
policy, here the equiprobable random policy \pi(a|s) = 1/|A| of the book's Example 4.1, on a
finite MDP whose model p(s', r | s, a) is known.

Each sweep applies the Bellman expectation backup to every state at once,

    V_{k+1}(s) = \sum_a \pi(a|s) \sum_{s'} p(s'|s, a) [r(s, a, s') + \gamma V_k(s')]   (eq. 4.5)

(terminal s': V = 0) and stops once \max_s |V_{k+1}(s) - V_k(s)| < \theta (``tolerance``). The
fixed point is the solution of the linear system v_\pi = (I - \gamma P_\pi)^{-1} r_\pi. The table
the run keeps is Q_\pi(s, a), the one-step look-ahead of V: acting greedily in it is one step of
policy improvement (the book's Figure 4.1, right column), which is what evaluation reports.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import PlanConfig, make_planner, model_of, plan_needs, q_backup


@dataclass(frozen=True)
class Config(PlanConfig):
    gamma: float = 0.99  # with gamma = 1 a random policy need not end its episodes


def make(config: Config, env, total_sweeps: int) -> Agent:
    model = model_of(env)

    def sweep(v):
        new_v = jnp.mean(q_backup(model, v, config.gamma), axis=-1)  # pi(a|s) = 1/|A|
        return new_v, jnp.max(jnp.abs(new_v - v)), {"start_value": model.initial @ new_v}

    return make_planner(env, lambda: jnp.zeros(model.initial.shape), sweep,
                        lambda v: q_backup(model, v, config.gamma), config.tolerance)


ALGORITHM = Algorithm(
    name="policy_evaluation", config=Config, make=make,
    summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=1_000,
    default_env="FrozenLake-v1",
    budget_unit="sweeps",
    env_needs=plan_needs,
    hyperparameters=("gamma", "tolerance"),
)
