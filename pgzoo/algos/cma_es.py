r"""CMA-ES (Hansen & Ostermeier 2001; Hansen 2016, "The CMA evolution strategy: a tutorial"):
a Gaussian search distribution N(m, \sigma^2 C) over the policy's parameters whose mean, step
size and full covariance adapt from the ranked population.

Each generation samples x_i = m + \sigma B D z_i, z_i ~ N(0, I) (C = B D^2 B^T), ranks the
members by their return, and with the recombination weights w_i (positive for the best
\mu = n/2, negative for the rest: active CMA) updates

    m'      = m + c_m \sigma \sum_{i<=\mu} w_i y_i,          y_i = (x_i - m) / \sigma        (eq. 41)
    p_\sigma = (1 - c_\sigma) p_\sigma + \sqrt{c_\sigma (2 - c_\sigma) \mu_eff} C^{-1/2} <y>_w
    \sigma'  = \sigma exp((c_\sigma / d_\sigma) (||p_\sigma|| / E||N(0, I)|| - 1))      (eqs. 43-44)
    p_c     = (1 - c_c) p_c + h_\sigma \sqrt{c_c (2 - c_c) \mu_eff} <y>_w               (eq. 45)
    C'      = (1 + c_1 \delta(h_\sigma) - c_1 - c_\mu \sum w_j) C + c_1 p_c p_c^T
              + c_\mu \sum_i w_i^o y_i y_i^T                                            (eq. 47)

with the tutorial's default constants for the dimension and population size. The update is
evosax's ``CMA_ES`` (it minimises, so it is told -F), which follows the tutorial's equation
numbers; the policy network, the rollouts and the observation statistics are pgzoo's
(``pgzoo/algos/loops/evolution.py``). The covariance is d x d: CMA-ES suits policies of a few
thousand parameters at most.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.evolution import (
    EvolutionConfig,
    Strategy,
    evolution_needs,
    evosax_strategy,
    make_evolution,
)
from pgzoo.core import config as cfg
from pgzoo.errors import PgzooError, check


@dataclass(frozen=True)
class Config(EvolutionConfig):
    population_size: int = 64
    hidden_sizes: tuple[int, ...] = (16,)  # a small network: C has d^2 entries
    sigma: float = 0.1  # the initial step size sigma_0
    # a floor under sigma (evosax's std_min): on a noisy fitness the step size can shrink
    # until the search stalls; 0 leaves it free, as the tutorial does
    sigma_min: float = 0.0
    # a ceiling over sigma (evosax's std_max, 1e8 by default): on a tanh policy the step size
    # can grow without bound as saturated, bang-bang networks keep winning, until the mean
    # overflows; this keeps the search finite
    sigma_max: float = 1000.0

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "sigma")
        cfg.non_negative(self, "sigma_min")
        check(self.sigma_max > max(self.sigma_min, 0.0), f"sigma_max ({self.sigma_max}) must "
              f"exceed sigma_min ({self.sigma_min}) and 0")


MAX_DIMS = 5_000  # C is d x d, eigendecomposed every generation


def strategy(config: Config, num_dims: int) -> Strategy:
    from evosax.algorithms import CMA_ES

    if num_dims > MAX_DIMS:
        raise PgzooError(f"cma_es keeps a full {num_dims} x {num_dims} covariance for this "
                         f"network; give a smaller one (--set hidden_sizes=16) to stay under "
                         f"{MAX_DIMS} parameters, or use openai_es")
    es = CMA_ES(config.population_size, jnp.zeros(num_dims))
    params = es.default_params.replace(std_init=jnp.asarray(config.sigma, jnp.float32),
                                       std_min=jnp.asarray(config.sigma_min, jnp.float32),
                                       std_max=jnp.asarray(config.sigma_max, jnp.float32))
    return evosax_strategy(es, params)


def make(config: Config, env, total_steps: int) -> Agent:
    return make_evolution(config, env, total_steps,
                          lambda num_dims: strategy(config, num_dims))


ALGORITHM = Algorithm(
    name="cma_es", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=5_000_000,
    default_env="CartPole-v1",
    env_needs=evolution_needs,
    hyperparameters=("sigma", "sigma_min", "sigma_max"),
)
