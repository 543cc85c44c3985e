r"""Policy iteration (Sutton & Barto 2018, section 4.3): alternate policy evaluation and greedy
policy improvement on a finite MDP whose model p(s', r | s, a) is known.

Starting from the arbitrary deterministic policy \pi_0(s) = 0:

1. evaluation, by sweeps of the Bellman expectation backup for \pi,

       V(s) <- \sum_{s'} p(s'|s, \pi(s)) [r(s, \pi(s), s') + \gamma V(s')]      (eq. 4.5)

   until no value changes by more than \theta (``tolerance``), or for at most
   ``max_evaluation_sweeps`` sweeps (with \gamma = 1 a policy that never ends its episodes has
   no finite value: the cap makes it look as bad as it is, and the improvement leaves it; the
   default \gamma = 0.99 gives every policy a finite value, as CliffWalking and Taxi need
   when they start from \pi_0; with \gamma = 1 the cap moves the improvement on by about one
   layer of states per capped evaluation, so it converges, slowly: about 14,000 sweeps on
   CliffWalking);
2. improvement, \pi'(s) = \arg\max_a \sum_{s'} p(s'|s, a) [r + \gamma V(s')]          (eq. 4.9),
   keeping \pi(s) wherever it is already within \theta of the maximum, so that the loop cannot
   cycle between equally good actions;

and stop when the improvement changes no action after an evaluation that converged: \pi is then
optimal and V = v_*. The run keeps Q_V, the look-ahead of V, whose greedy policy is \pi
once it is optimal (up to ties). The budget counts sweeps, each evaluation sweep being one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.tabular import PlanConfig, make_planner, model_of, plan_needs, q_backup
from pgzoo.core import config as cfg


@dataclass(frozen=True)
class Config(PlanConfig):
    gamma: float = 0.99  # < 1: every policy has a finite value (S&B ch. 4 assume proper ones)
    max_evaluation_sweeps: int = 1_000  # per evaluation; reached only by improper policies

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "max_evaluation_sweeps")


class Plan(NamedTuple):
    v: jax.Array  # [S] the current policy's value estimate
    pi: jax.Array  # [S] int32, the current deterministic policy
    sweeps: jax.Array  # evaluation sweeps since the last improvement


def make(config: Config, env, total_sweeps: int) -> Agent:
    model = model_of(env)
    states = jnp.arange(model.initial.shape[0])

    def sweep(plan: Plan):
        # 1. one evaluation sweep of pi
        v = q_backup(model, plan.v, config.gamma)[states, plan.pi]
        change = jnp.max(jnp.abs(v - plan.v))
        evaluated = change < config.tolerance
        sweeps = plan.sweeps + 1
        # 2. improvement, once the evaluation has converged (or hit its cap)
        q = q_backup(model, v, config.gamma)
        keep = q[states, plan.pi] >= jnp.max(q, axis=-1) - config.tolerance
        improved = jnp.where(keep, plan.pi, jnp.argmax(q, axis=-1)).astype(jnp.int32)
        improve = evaluated | (sweeps >= config.max_evaluation_sweeps)
        pi = jnp.where(improve, improved, plan.pi)
        changed = jnp.sum(pi != plan.pi)
        # optimal: an evaluation that converged and an improvement that changed nothing
        done = evaluated & (changed == 0)
        new = Plan(v, pi, jnp.where(improve, 0, sweeps))
        return new, jnp.where(done, 0.0, jnp.maximum(change, config.tolerance)), {
            "start_value": model.initial @ v, "policy_changes": changed.astype(jnp.float32),
            "evaluation_change": change}

    def init_plan():
        return Plan(jnp.zeros(states.shape), jnp.zeros(states.shape, jnp.int32), jnp.int32(0))

    # the table the policy acts on: Q of the current V (once optimal, greedy in it is optimal)
    return make_planner(env, init_plan, sweep, lambda plan: q_backup(model, plan.v, config.gamma),
                        config.tolerance)


ALGORITHM = Algorithm(
    name="policy_iteration", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=100_000,
    default_env="FrozenLake-v1",
    budget_unit="sweeps",
    env_needs=plan_needs,
    hyperparameters=("gamma", "tolerance"),
)
