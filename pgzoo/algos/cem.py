r"""The cross-entropy method for policy search (Rubinstein 1999; Szita & Lorincz 2006,
"Learning Tetris using the noisy cross-entropy method").

The search distribution is a Gaussian N(\mu, diag(\sigma^2)) over the policy's parameters.
Each generation samples n = ``population_size`` members \theta_i = \mu + \sigma \odot z_i,
z_i ~ N(0, I), keeps the elite: the \rho n members (``elite_fraction``) with the highest
returns, and refits the distribution to them by maximum likelihood,

    \mu'       = (1 / |E|) \sum_{i in E} \theta_i
    \sigma'^2  = (1 / |E|) \sum_{i in E} (\theta_i - \mu')^2 + Z_t

adding the extra variance Z_t = ``extra_noise`` max(0, 1 - t / ``noise_decay_generations``)
so that the distribution does not collapse onto the first elite (Szita & Lorincz's decreasing
noise). evosax has no CEM with this noise, so this module writes it; ``refit`` is the update.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.evolution import EvolutionConfig, Strategy, evolution_needs, make_evolution
from pgzoo.core import config as cfg
from pgzoo.errors import check


@dataclass(frozen=True)
class Config(EvolutionConfig):
    population_size: int = 64
    elite_fraction: float = 0.2  # rho
    sigma: float = 0.1  # the initial standard deviation of every parameter
    extra_noise: float = 0.01  # Z_0, a variance
    noise_decay_generations: int = 100  # Z_t reaches 0 after this many generations

    def __post_init__(self):
        super().__post_init__()
        cfg.positive(self, "sigma", "noise_decay_generations")
        cfg.non_negative(self, "extra_noise")
        cfg.unit_interval(self, "elite_fraction")
        check(int(self.elite_fraction * self.population_size) >= 2, "elite_fraction x "
              "population_size must keep at least 2 members to refit a variance")


class CEMState(NamedTuple):
    mean: jax.Array  # [d]
    var: jax.Array  # [d]
    generation: jax.Array


def refit(population, fitness, num_elites: int, extra_variance):
    """Mean and per-coordinate variance of the ``num_elites`` fittest members, plus the extra
    variance."""
    elite = population[jnp.argsort(-fitness)[:num_elites]]
    mean = jnp.mean(elite, axis=0)
    return mean, jnp.mean((elite - mean) ** 2, axis=0) + extra_variance


def strategy(config: Config, num_dims: int) -> Strategy:
    num_elites = int(config.elite_fraction * config.population_size)

    def init(key, mean):
        return CEMState(mean, jnp.full(num_dims, config.sigma ** 2), jnp.int32(0))

    def ask(key, state: CEMState):
        z = jax.random.normal(key, (config.population_size, num_dims))
        return state.mean + jnp.sqrt(state.var) * z, state

    def tell(population, fitness, state: CEMState):
        noise = config.extra_noise * jnp.maximum(
            0.0, 1.0 - state.generation / config.noise_decay_generations)
        mean, var = refit(population, fitness, num_elites, noise)
        return CEMState(mean, var, state.generation + 1)

    return Strategy(init, ask, tell, lambda state: state.mean,
                    lambda state: jnp.sqrt(jnp.mean(state.var)))


def make(config: Config, env, total_steps: int) -> Agent:
    return make_evolution(config, env, total_steps,
                          lambda num_dims: strategy(config, num_dims))


ALGORITHM = Algorithm(
    name="cem", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=5_000_000,
    default_env="CartPole-v1",
    env_needs=evolution_needs,
    hyperparameters=("sigma", "extra_noise"),
)
