r"""Natural policy gradient (Kakade 2002), in the batch form of the TRPO paper.

    g = \nabla_\theta E_t[ \pi_\theta(a_t|s_t) / \pi_{\theta_k}(a_t|s_t) \hat{A}_t ] at \theta_k
                                                                        -> ``surrogate``
    H = Fisher information matrix of \pi_{\theta_k} (Hessian of the mean KL)   -> ``mean_kl``
    \theta_{k+1} = \theta_k + \sqrt{2\delta / g^T H^{-1} g} H^{-1} g     -> ``natural_step``

with no line search. H^{-1} g comes from conjugate gradient on Fisher-vector products
(``pgzoo.core.trust_region``), never forming H. The rollout, GAE advantages (normalised) and the
value function's regression are the loop NPG shares with TRPO
(``pgzoo.algos.loops.natural_gradient``); TRPO adds a backtracking line search to this step.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops import natural_gradient as loop
from pgzoo.core.distributions import distribution
from pgzoo.core.trust_region import conjugate_gradient, fisher_vector_product


@dataclass(frozen=True)
class Config(loop.Config):
    """The loop's settings (``pgzoo.algos.loops.natural_gradient.Config``): SB3 TRPO's defaults,
    which NPG's benchmark uses too; NPG has no line search."""


def natural_step(config: Config) -> loop.PolicyStep:
    """The NPG policy step: the natural gradient, scaled so its quadratic-model KL is delta."""

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
        x = conjugate_gradient(fvp, g, config.cg_iters)  # H^{-1} g
        new = flat + jnp.sqrt(2.0 * config.max_kl / (g @ x + 1e-12)) * x
        stats = {"kl": mean_kl(new), "surrogate_gain": surrogate(new) - surrogate(flat)}
        return unravel(new), stats

    return policy_step


def make(config: Config, env, total_steps: int) -> Agent:
    return loop.make_agent(config, env, natural_step(config))


ALGORITHM = Algorithm(
    name="npg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("max_kl", "cg_damping", "gae_lambda", "value_learning_rate"),
)
