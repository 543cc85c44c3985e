r"""SVPG: Stein variational policy gradient (Liu, Ramachandran, Liu & Peng 2017).

n policies \theta_1, ..., \theta_n (``num_particles``, the leading axis of the parameters) are
particles of a distribution q(\theta) that maximises E_q[J(\theta)] + \alpha H(q), whose optimum is
q(\theta) \propto exp(J(\theta) / \alpha) (with a flat prior). Stein variational gradient descent
moves every particle along

    \phi(\theta_i) = (1/n) \sum_j [ \nabla_{\theta_j} J(\theta_j) / \alpha k(\theta_j, \theta_i)
                                    + \nabla_{\theta_j} k(\theta_j, \theta_i) ]          (eq. 8)

with the RBF kernel k(\theta, \theta') = exp(-||\theta - \theta'||^2 / h) and the median
heuristic h = med / log(n + 1), med the median squared distance between particles, the diagonal
included (Liu & Wang's SVGD code, ``pgzoo/core/svgd.py``; the SVPG paper writes med^2 / log n): the first term shares the particles'
policy gradients among neighbours, the second pushes them apart. Each particle's
\nabla J(\theta_j) is A2C's (``num_envs`` environments of its own, n-step returns
bootstrapped from its own critic V_{w_j}, the gradient of E[A_t \ln \pi(a_t|s_t)] clipped to a
global norm ``max_grad_norm``); the critics learn by their own regression, outside the SVGD step.
The optimiser (RMSprop by default, as A2C) takes -\phi(\theta_i) as particle i's gradient; being
per-coordinate, it rescales the two terms of \phi unlike plain SVGD steps.

The temperature \alpha weighs exploration: a large \alpha lets the repulsion dominate; as
\alpha -> 0 the driving term dominates, and with a kernel that couples no two particles
(k(\theta_j, \theta_i) = 0 for j != i) the particles are n independent A2C runs (tested). The
budget counts every particle's environment steps. Evaluation and ``pgzoo.load`` use the particle
with the best recent return (``best_particle``); the metrics report each particle's return.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgzoo.algos.base import Agent, Algorithm, EnvNeeds
from pgzoo.core import config as cfg
from pgzoo.core.distributions import distribution, policy_head, select_action
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.optim import OPTIMIZERS, make_optimizer
from pgzoo.core.returns import bootstrap_truncated, discounted_returns
from pgzoo.core.rollout import episode_metrics, rollout
from pgzoo.core.svgd import median_bandwidth, rbf
from pgzoo.errors import check


@dataclass(frozen=True)
class Config:
    num_particles: int = 8
    num_envs: int = 8  # per particle (A2C's CartPole setting)
    num_steps: int = 5  # n of the n-step returns
    alpha: float = 10.0  # the temperature
    bandwidth: float = 0.0  # h of the RBF kernel; 0: the median heuristic
    learning_rate: float = 7e-4
    value_learning_rate: float = 7e-4
    optimizer: str = "rmsprop"
    gamma: float = 0.99
    max_grad_norm: float = 0.5  # each particle's policy gradient and critic gradient
    return_smoothing: float = 0.9  # of each particle's recent return (metrics, best particle)
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_particles", "num_envs", "num_steps", "alpha", "learning_rate",
                     "value_learning_rate")
        cfg.non_negative(self, "bandwidth", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "return_smoothing")
        check(self.num_particles >= 2, "SVPG needs at least 2 particles (num_particles)")
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


def svpg_needs(config: Config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_particles * config.num_envs,
                    normalize_obs=config.normalize_obs)


class Params(NamedTuple):
    policies: Any  # [n, ...] the particles
    best: jax.Array  # the particle that evaluation and export use


class State(NamedTuple):
    params: Params
    critics: Any  # [n, ...]
    policy_opt: Any
    critic_opt: Any
    recent_return: jax.Array  # [n] smoothed return of each particle's finished episodes
    seen: jax.Array  # [n] whether the particle has finished an episode yet
    env_state: Any
    obs: jax.Array
    key: jax.Array


def stein_direction(flat_particles, flat_grads, alpha, bandwidth=0.0):
    """phi(theta_i) of eq. 8 for particles [n, d] and their policy gradients grad J [n, d];
    ``bandwidth`` 0 takes the median heuristic. Also returns the kernel matrix k(theta_j,
    theta_i) [n, n]."""
    h = bandwidth if bandwidth > 0.0 else jnp.maximum(median_bandwidth(flat_particles), 1e-8)
    kappa, kappa_grad = rbf(flat_particles, flat_particles, h)
    drive = kappa[..., None] * (flat_grads / alpha)[:, None, :]  # [j, i, d]
    return jnp.mean(drive + kappa_grad, axis=0), kappa


def make(config: Config, env, total_steps: int) -> Agent:
    n, envs = config.num_particles, config.num_envs
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space), config.hidden_sizes, config.activation,
                       obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    policy_tx = make_optimizer(config.optimizer, config.learning_rate)
    critic_tx = make_optimizer(config.optimizer, config.value_learning_rate,
                               config.max_grad_norm)
    clip = (optax.clip_by_global_norm(config.max_grad_norm) if config.max_grad_norm
            else optax.identity())
    per_particle = lambda x: x.reshape((n, envs) + x.shape[1:])
    every_env = lambda x: x.reshape((n * envs,) + x.shape[2:])

    def policy(params: Params, obs, key, deterministic=False):
        theta = jax.tree.map(lambda x: x[params.best], params.policies)
        return select_action(distribution(pi.apply(theta, obs)), key, deterministic)

    def act_all(policies, obs, key):
        """Each particle acts in its own ``num_envs`` environments."""
        keys = jax.random.split(key, n)
        actions = jax.vmap(lambda theta, o, k: select_action(
            distribution(pi.apply(theta, o)), k, False))(policies, per_particle(obs), keys)
        return every_env(actions)

    def init(key):
        pi_key, critic_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        one_obs = per_particle(ts.obs)[0]
        policies = jax.vmap(lambda k: pi.init(k, one_obs))(jax.random.split(pi_key, n))
        critics = jax.vmap(lambda k: vf.init(k, one_obs))(jax.random.split(critic_key, n))
        return State(Params(policies, jnp.int32(0)), critics, jax.vmap(policy_tx.init)(policies),
                     jax.vmap(critic_tx.init)(critics), jnp.zeros(n), jnp.zeros(n, bool),
                     env_state, ts.obs, state_key)

    def particle_gradients(theta, w, traj, last_obs):
        """One particle's A2C policy gradient grad J (ascent, clipped) and critic gradient."""
        final_values = vf.apply(w, traj.final_obs)
        rewards = bootstrap_truncated(traj.reward, traj.truncated, final_values, config.gamma)
        returns = discounted_returns(rewards, traj.done, vf.apply(w, last_obs), config.gamma)

        def critic_loss(w):
            return 0.5 * jnp.mean((returns - vf.apply(w, traj.obs)) ** 2)

        advantage = returns - vf.apply(w, traj.obs)

        def objective(theta):  # E[A ln pi(a|s)], to be maximised
            return jnp.mean(advantage * distribution(pi.apply(theta, traj.obs)).log_prob(
                traj.action))

        value, grad_j = jax.value_and_grad(objective)(theta)
        grad_j, _ = clip.update(grad_j, clip.init(grad_j))
        c_loss, c_grads = jax.value_and_grad(critic_loss)(w)
        return grad_j, c_grads, value, c_loss

    def step(state: State):
        key, rollout_key = jax.random.split(state.key)
        policies = state.params.policies

        env_state, obs, traj = rollout(
            env, state.env_state, state.obs, rollout_key,
            lambda o, k: (act_all(policies, o, k), ()), config.num_steps)
        # [T, n * E] -> [n, T, E]
        mine = jax.tree.map(lambda x: jnp.swapaxes(x.reshape(
            (x.shape[0], n, envs) + x.shape[2:]), 0, 1), traj._replace(info={}))
        grads, c_grads, objectives, c_losses = jax.vmap(particle_gradients)(
            policies, state.critics, mine, per_particle(obs))

        flat = jax.vmap(lambda p: ravel_pytree(p)[0])
        unravel = ravel_pytree(jax.tree.map(lambda x: x[0], policies))[1]
        phi, kappa = stein_direction(flat(policies), flat(grads), config.alpha, config.bandwidth)
        ascent = jax.vmap(unravel)(-phi)  # the optimisers minimise

        def apply(tx, params, grads, opt_state):
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        policies, policy_opt = jax.vmap(lambda p, g, s: apply(policy_tx, p, g, s))(
            policies, ascent, state.policy_opt)
        critics, critic_opt = jax.vmap(lambda p, g, s: apply(critic_tx, p, g, s))(
            state.critics, c_grads, state.critic_opt)

        # each particle's recent return: the mean of its finished episodes, smoothed
        done = per_particle(jnp.swapaxes(traj.info["episode_done"], 0, 1))  # [n, E, T]
        returns = per_particle(jnp.swapaxes(traj.info["episode_return"], 0, 1))
        count = done.sum(axis=(1, 2))
        mean = jnp.where(done, returns, 0.0).sum(axis=(1, 2)) / jnp.maximum(count, 1)
        beta = config.return_smoothing
        smoothed = jnp.where(state.seen, beta * state.recent_return + (1.0 - beta) * mean, mean)
        recent = jnp.where(count > 0, smoothed, state.recent_return)
        shown = jnp.where(state.seen | (count > 0), recent, jnp.nan)
        distances = jnp.sqrt(jnp.sum((flat(policies)[:, None] - flat(policies)[None]) ** 2, -1))
        off_diagonal = ~jnp.eye(n, dtype=bool)
        metrics = {"policy_objective": objectives.mean(), "value_loss": c_losses.mean(),
                   "particle_distance": jnp.sum(jnp.where(off_diagonal, distances, 0.0))
                   / (n * (n - 1)),
                   "kernel_mean_off_diagonal": jnp.sum(jnp.where(off_diagonal, kappa, 0.0))
                   / (n * (n - 1)),
                   # NaN until a particle has finished an episode
                   "best_particle_return": jnp.max(shown), "mean_particle_return": jnp.mean(shown),
                   **{f"particle_{i}_return": shown[i] for i in range(n)},
                   **episode_metrics(traj.info)}
        seen = state.seen | (count > 0)
        # the best particle among those that have finished an episode (particle 0 before any)
        params = Params(policies, jnp.argmax(jnp.where(seen, recent, -jnp.inf)).astype(jnp.int32))
        return State(params, critics, policy_opt, critic_opt, recent, seen, env_state, obs,
                     key), metrics

    return Agent(init, step, policy, n * envs * config.num_steps)


ALGORITHM = Algorithm(
    name="svpg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    # the particle code is action-agnostic, but only discrete tasks are shown to learn so far
    action_spaces=("discrete",),
    default_budget=4_000_000,  # 8 particles x 500k, A2C's CartPole budget each
    env_needs=svpg_needs,
    hyperparameters=("alpha", "learning_rate", "value_learning_rate"),
)
