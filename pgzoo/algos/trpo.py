r"""Trust Region Policy Optimization (Schulman et al. 2015), and the natural policy gradient.

Each iteration collects T steps from N environments with \pi_{\theta_k}, estimates advantages
\hat{A}_t with GAE(\gamma, \lambda) (normalised), and maximises the surrogate

    L(\theta) = E_t[ \pi_\theta(a_t|s_t) / \pi_{\theta_k}(a_t|s_t) \hat{A}_t ]      -> ``surrogate``

subject to \bar{D}_{KL}(\theta_k \| \theta) = E_t[ KL[\pi_{\theta_k}(.|s_t), \pi_\theta(.|s_t)] ] <= \delta:

    g = \nabla_\theta L(\theta_k),   H = \nabla^2_\theta \bar{D}_{KL}(\theta_k \| \theta)|_{\theta_k}
    x = H^{-1} g                    by conjugate gradient on Fisher-vector products
                                    (``pgzoo.core.trust_region``), never forming H
    TRPO:  \theta_{k+1} = \theta_k + \alpha^j \sqrt{2\delta / x^T H x} x, with the smallest j
           whose sample KL is <= \delta and whose surrogate improves      -> ``backtracking_line_search``
    NPG (Kakade 2002; module ``npg``, no line search):
           \theta_{k+1} = \theta_k + \sqrt{2\delta / g^T H^{-1} g} H^{-1} g

The value function V_\phi is fitted by regression on the GAE value targets \hat{A}_t + V_{\phi_k}(s_t)
(``value_epochs`` epochs of Adam minibatch steps). Time-limit truncations are bootstrapped. The
rollout, GAE and value regression are the loop NPG shares (``pgzoo.algos.loops.natural_gradient``);
the policy step, ``trpo_step``, is this module's.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops import natural_gradient as loop
from pgzoo.core import config as cfg
from pgzoo.core.distributions import distribution
from pgzoo.core.trust_region import (backtracking_line_search, conjugate_gradient,
                                     fisher_vector_product)



@dataclass(frozen=True)
class Config(loop.Config):
    """The loop's settings (``pgzoo.algos.loops.natural_gradient.Config``, SB3 TRPO's defaults)
    and the line search's."""

    line_search_shrink: float = 0.8  # alpha, SB3 TRPO line_search_shrinking_factor
    line_search_steps: int = 10  # SB3 TRPO line_search_max_iter

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "line_search_steps")
        cfg.unit_interval(self, "line_search_shrink")


def trpo_step(config: Config) -> loop.PolicyStep:
    """The TRPO policy step: maximise the surrogate within the KL trust region."""

    def policy_step(pi, theta, batch: loop.Batch):
        flat, unravel = ravel_pytree(theta)
        old_dist = distribution(batch.head)

        def surrogate(flat_theta):
            log_prob = distribution(pi.apply(unravel(flat_theta), batch.obs)).log_prob(
                batch.action)
            return jnp.mean(jnp.exp(log_prob - batch.log_prob) * batch.advantage)

        def mean_kl(flat_theta):
            return old_dist.kl_divergence(
                distribution(pi.apply(unravel(flat_theta), batch.obs))).mean()

        g = jax.grad(surrogate)(flat)
        fvp = fisher_vector_product(mean_kl, flat, config.cg_damping)
        x = conjugate_gradient(fvp, g, config.cg_iters)
        full_step = jnp.sqrt(2.0 * config.max_kl / (x @ fvp(x) + 1e-12)) * x
        new, j, accepted = backtracking_line_search(
            flat, full_step, surrogate, mean_kl, config.max_kl, config.line_search_shrink,
            config.line_search_steps)
        stats = {"line_search_steps": j.astype(jnp.float32),
                 "accepted": accepted.astype(jnp.float32),
                 "kl": mean_kl(new), "surrogate_gain": surrogate(new) - surrogate(flat)}
        return unravel(new), stats

    return policy_step


def make(config: Config, env, total_steps: int) -> Agent:
    return loop.make_agent(config, env, trpo_step(config))


ALGORITHM = Algorithm(
    name="trpo", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=200_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("max_kl", "cg_damping", "gae_lambda", "value_learning_rate"),
)
