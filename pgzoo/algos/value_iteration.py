r"""Value iteration (Sutton & Barto 2018, section 4.4): dynamic programming with the Bellman
optimality backup, on a finite MDP whose model p(s', r | s, a) is known.

Each sweep applies, to every state at once,

    Q_k(s, a)   = \sum_{s'} p(s'|s, a) [r(s, a, s') + \gamma V_k(s')]     (terminal s': V = 0)
    V_{k+1}(s)  = \max_a Q_k(s, a)                                            (eq. 4.10)

and stops once \max_s |V_{k+1}(s) - V_k(s)| < \theta (``tolerance``). The output is the
deterministic policy \pi(s) = \arg\max_a Q(s, a) (eq. 4.9's greedy policy). The budget counts
sweeps; with \gamma = 1 value iteration converges on episodic tasks where the optimal policy
ends every episode (FrozenLake, CliffWalking, Taxi).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import PlanConfig, make_planner, model_of, plan_needs, q_backup


@dataclass(frozen=True)
class Config(PlanConfig):
    pass


def make(config: Config, env, total_sweeps: int) -> Agent:
    model = model_of(env)

    def sweep(v):
        q = q_backup(model, v, config.gamma)  # Q_k
        new_v = jnp.max(q, axis=-1)  # V_{k+1} = max_a Q_k
        return new_v, jnp.max(jnp.abs(new_v - v)), {"start_value": model.initial @ new_v}

    return make_planner(env, lambda: jnp.zeros(model.initial.shape), sweep,
                        lambda v: q_backup(model, v, config.gamma), config.tolerance)


ALGORITHM = Algorithm(
    name="value_iteration", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=1_000,
    default_env="FrozenLake-v1",
    budget_unit="sweeps",
    env_needs=plan_needs,
    hyperparameters=("gamma", "tolerance"),
)
