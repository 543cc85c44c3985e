r"""Natural evolution strategies in the OpenAI-ES form (Salimans et al. 2017, "Evolution
strategies as a scalable alternative to reinforcement learning").

The search distribution is an isotropic Gaussian N(\theta, \sigma^2 I) over the policy's
parameters. Each generation draws n = ``population_size`` perturbations, in antithetic pairs
\epsilon_{n/2+i} = -\epsilon_i (``antithetic``), evaluates F_i = F(\theta + \sigma \epsilon_i)
(an episode's return), shapes the fitness into centred ranks u_i in [-0.5, 0.5] (rank
transformation, Salimans et al. section 2.2), and estimates the gradient of the smoothed
objective

    \nabla_\theta E_{\epsilon ~ N(0, I)}[F(\theta + \sigma \epsilon)]
        ~ (1 / (n \sigma)) \sum_i u_i \epsilon_i                                    (algorithm 1)

which Adam follows, with the L2 penalty ``weight_decay`` \theta added to the gradient (the
authors' l2coeff). evosax's ``Open_ES`` computes the estimate (it minimises, so it is told -F);
the policy network, the rollouts and the observation statistics are pgzoo's
(``pgzoo/algos/loops/evolution.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.evolution import (
    EvolutionConfig,
    Strategy,
    evolution_needs,
    evosax_strategy,
    make_evolution,
)
from pgzoo.core import config as cfg
from pgzoo.errors import check


@dataclass(frozen=True)
class Config(EvolutionConfig):
    population_size: int = 64
    sigma: float = 0.05  # noise standard deviation (Salimans et al. 0.02 for MuJoCo)
    learning_rate: float = 0.03  # Adam (Salimans et al. 0.01)
    # Salimans et al.'s l2coeff; their gradient estimate divides by n only, evosax's by
    # n sigma, so the same coefficient weighs 1/sigma times less against it here
    weight_decay: float = 0.005
    antithetic: bool = True  # mirrored sampling (Salimans et al.)

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "sigma", "learning_rate")
        cfg.non_negative(self, "weight_decay")
        check(not self.antithetic or self.population_size % 2 == 0,
              f"antithetic sampling needs an even population_size, got {self.population_size}")


def strategy(config: Config, num_dims: int) -> Strategy:
    from evosax.algorithms import Open_ES
    from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

    es = Open_ES(config.population_size, jnp.zeros(num_dims),
                 use_antithetic_sampling=config.antithetic,
                 optimizer=optax.chain(optax.add_decayed_weights(config.weight_decay),
                                       optax.adam(config.learning_rate)),
                 std_schedule=optax.constant_schedule(config.sigma),
                 fitness_shaping_fn=centered_rank_fitness_shaping_fn)
    params = es.default_params
    return evosax_strategy(es, params)


def make(config: Config, env, total_steps: int) -> Agent:
    return make_evolution(config, env, total_steps,
                          lambda num_dims: strategy(config, num_dims))


ALGORITHM = Algorithm(
    name="openai_es", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=5_000_000,
    default_env="CartPole-v1",
    env_needs=evolution_needs,
    hyperparameters=("sigma", "learning_rate", "weight_decay"),
)
