r"""Soft Q-learning (Haarnoja et al. 2017), "Reinforcement learning with deep energy-based
policies": maximum-entropy Q-learning whose policy is the Boltzmann distribution of Q.

The optimal maximum-entropy policy is \pi(a|s) = exp((Q_soft(s, a) - V_soft(s)) / \alpha), with

    soft value       V_soft(s) = \alpha \log \int exp(Q_soft(s, a) / \alpha) da
    soft Bellman     Q_soft(s, a) = r + \gamma E_{s'}[V_soft(s')]          (eqs. 2-3, 10-11)

The critic Q_\theta regresses on the target y = r + \gamma (1 - terminated) V_{\theta^-}(s') from
a replay buffer, with a target network \theta^- copied every ``target_update_every`` updates
(\tau = 1) or Polyak-averaged. The soft value is

- discrete actions: exact, V(s) = \alpha logsumexp_a(Q(s, a) / \alpha); the policy samples
  softmax(Q(s, .) / \alpha), and acts greedily when deterministic;
- continuous actions (in [-1, 1]^d): by importance sampling with a uniform proposal q,
  q(a) = 2^{-d}, from M = ``value_particles`` actions a_i ~ q:

      V(s) = \alpha \log E_{a~q}[exp(Q(s, a)/\alpha) / q(a)]
           ~ \alpha (logsumexp_i(Q(s, a_i)/\alpha) - \log M + d \log 2)       -> ``soft_value``

  and the policy is an amortised sampler a = f_\phi(\xi; s) = tanh(g_\phi(s, \xi)),
  \xi ~ N(0, I), trained by Stein variational gradient descent (eqs. 13-14) towards
  p(a|s) \propto exp(Q(s, a)/\alpha) (as the authors' code does, the score is taken of
  \log p = Q/\alpha + \sum_k \log(1 - a_k^2), the squashing correction, with kernel and score
  both in the squashed action a; this is not an exact change of variables: the sampler targets
  exp(Q/\alpha) \prod_k (1 - a_k^2), which leans to the centre of the box where Q/\alpha is
  flat, e.g. at a large \alpha): of K = ``kernel_particles`` samples per state, the
  first K - K_u ("fixed", j) move the last K_u = K ``kernel_update_ratio`` ("updated", i) by

      \Delta a_i = (1/(K - K_u)) \sum_j [ \kappa(a_j, a_i) \nabla_{a_j} \log p(a_j|s)
                                          + \nabla_{a_j} \kappa(a_j, a_i) ]          -> ``svgd_direction``

  with the RBF kernel \kappa(x, y) = exp(-||x - y||^2 / h), the bandwidth h the median of the
  squared pairwise distances over \log(K - K_u) (the median heuristic), and \phi follows
  \nabla_\phi J = E[\Delta a_i \partial f_\phi / \partial \phi]. Exploration samples f_\phi; the
  deterministic policy is f_\phi(0; s).

Defaults follow the authors' code (softqlearning, examples/mujoco_all_sql.py and
multigoal_sql.py): Adam 3e-4 for both networks, batch 64, 16 value particles, 32 kernel particles
split in half, 128-128 ReLU networks; the temperature \alpha (the paper's 1 / reward scale) is
set per task by the presets.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import check_budget, make_agent, uniform_batch
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.networks import ACTIVATIONS, MLP, Encoder, QNetwork, QValues, dense
from pgzoo.core.optim import periodic_target_update
from pgzoo.core.svgd import svgd_direction
from pgzoo.errors import check

EPS = 1e-6


@dataclass(frozen=True)
class Config:
    num_envs: int = 1
    buffer_size: int = 1_000_000  # the authors' code
    batch_size: int = 64  # the authors' code
    learning_starts: int = 1_000  # uniform random actions before this many steps
    learning_rate: float = 3e-4  # the authors' code (Q and sampler, Adam)
    gamma: float = 0.99  # the authors' code
    alpha: float = 1.0  # temperature, the authors' reward scale 1 (1/alpha); presets set it per task
    tau: float = 1.0  # 1: the target is a copy, as in the authors' code
    target_update_every: int = 1_000  # updates (the authors' code, multigoal)
    value_particles: int = 16  # M, the authors' code
    kernel_particles: int = 32  # K, the authors' code
    kernel_update_ratio: float = 0.5  # K_u / K, the authors' code
    gradient_steps: int = 1  # updates per environment step
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (128, 128)  # the authors' code, multigoal
    activation: str = "relu"  # the authors' code
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate", "alpha",
                     "tau", "target_update_every", "value_particles", "gradient_steps",
                     "block_size")
        cfg.non_negative(self, "learning_starts")
        cfg.unit_interval(self, "gamma", "tau", "kernel_update_ratio")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        updated = int(self.kernel_particles * self.kernel_update_ratio)
        check(self.kernel_particles >= 3 and 1 <= updated <= self.kernel_particles - 2,
                  f"kernel_particles x kernel_update_ratio must leave at least one updated and "
                  f"two fixed particles, got {self.kernel_particles} x "
                  f"{self.kernel_update_ratio}")


class Sampler(nn.Module):
    """f_phi(xi; s) = tanh(g_phi([s, xi])): an action in [-1, 1]^d for each noise sample."""

    action_dim: int
    hidden_sizes: Sequence[int] = (128, 128)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, xi):
        x = Encoder(self.obs_ndim)(obs)
        x = jnp.concatenate([jnp.broadcast_to(x, xi.shape[:-1] + x.shape[-1:]), xi], axis=-1)
        return jnp.tanh(dense(self.action_dim, 0.01)(MLP(self.hidden_sizes,
                                                          self.activation)(x)))


def soft_value(q_values, alpha, log_proposal):
    """V = alpha log mean_i exp(Q_i/alpha - log q(a_i)), the importance-sampling estimate of
    alpha log E_q[exp(Q/alpha) / q(a)] over the last axis (``log_proposal``: log q(a_i))."""
    m = q_values.shape[-1]
    return alpha * (jax.nn.logsumexp(q_values / alpha - log_proposal, axis=-1) - jnp.log(m))


def amortized_svgd_gradient(sample, phi, log_p, n_fixed: int):
    """The sampler's descent direction of amortised SVGD (eq. 14): particles ``sample(phi)``
    [B, K, d] are split into the first ``n_fixed`` (fixed, j) and the rest (updated, i); the
    updated ones should move by Delta a_i (``svgd_direction`` with the fixed ones' scores
    grad log p(a_j), ``log_p``: [B, K_f, d] -> [B, K_f]), so phi ascends
    sum_i <Delta a_i, f_phi(xi_i)>, averaged over the batch: returns (the gradient of its
    negative, for a minimising optimiser; Delta a)."""
    actions, pullback = jax.vjp(sample, phi)
    fixed, updated = actions[:, :n_fixed], actions[:, n_fixed:]
    score = jax.grad(lambda a: jnp.sum(log_p(a)))(fixed)
    direction = svgd_direction(fixed, updated, score)
    # fixed particles get no gradient (the authors stop it there)
    cotangent = jnp.concatenate([jnp.zeros_like(fixed), -direction / actions.shape[0]], axis=1)
    (grads,) = pullback(cotangent)
    return grads, direction


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any
    updates: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    check_budget(config, total_steps)
    obs_ndim = len(env.observation_space.shape)
    discrete = env.action_space.kind == "discrete"
    alpha = config.alpha
    tx = optax.adam(config.learning_rate)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)
    if discrete:
        q = QValues(env.action_space.n, config.hidden_sizes, config.activation, obs_ndim)
        return _make_discrete(config, env, q, tx, buffer, alpha)
    action_dim = env.action_space.shape[0]
    critic = QNetwork(0, config.hidden_sizes, config.activation, obs_ndim)
    sampler = Sampler(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    n_updated = int(config.kernel_particles * config.kernel_update_ratio)
    n_fixed = config.kernel_particles - n_updated
    log_uniform = -action_dim * np.log(2.0)  # log q(a) of the uniform proposal on [-1, 1]^d

    def particles_of(obs, actions):
        """obs [B, *obs_shape] repeated for actions [B, K, d]: [B, K, *obs_shape]."""
        return jnp.broadcast_to(obs[:, None], obs.shape[:1] + actions.shape[1:2] + obs.shape[1:])

    def init_learner(key, obs, action):
        critic_key, sampler_key = jax.random.split(key)
        params = {"sampler": sampler.init(sampler_key, obs, jnp.zeros_like(action)),
                  "critic": critic.init(critic_key, obs, action)}
        return params, Learner(params["critic"], {k: tx.init(v) for k, v in params.items()},
                               jnp.int32(0))

    def policy(params, obs, key, deterministic=False):
        shape = obs.shape[: obs.ndim - obs_ndim] + (action_dim,)
        xi = jnp.zeros(shape) if deterministic else jax.random.normal(key, shape)
        return sampler.apply(params["sampler"], obs, xi)

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample_key, value_key, particle_key = jax.random.split(key, 3)
        b = uniform_batch(buffer, buffer_state, sample_key, normalize)
        batch = b.obs.shape[0]
        # critic: y = r + gamma (1 - terminated) V(s'), V by importance sampling
        proposals = jax.random.uniform(value_key, (batch, config.value_particles, action_dim),
                                       minval=-1.0, maxval=1.0)
        next_q = critic.apply(learner.target_params, particles_of(b.next_obs, proposals),
                              proposals)
        next_v = soft_value(next_q, alpha, log_uniform)
        y = jax.lax.stop_gradient(
            b.reward + config.gamma * (1.0 - b.terminated.astype(jnp.float32)) * next_v)

        def critic_loss(w):
            return 0.5 * jnp.mean((critic.apply(w, b.obs, b.action) - y) ** 2)

        q_loss, grads = jax.value_and_grad(critic_loss)(params["critic"])
        upd, critic_opt = tx.update(grads, learner.opt_state["critic"], params["critic"])
        new_critic = optax.apply_updates(params["critic"], upd)

        # sampler: SVGD towards exp(Q/alpha) of the same (pre-update) critic, as the authors do
        xi = jax.random.normal(particle_key, (batch, config.kernel_particles, action_dim))

        def log_p(a):
            return (critic.apply(params["critic"], particles_of(b.obs, a), a) / alpha
                    + jnp.sum(jnp.log(1.0 - a ** 2 + EPS), axis=-1))

        grads, direction = amortized_svgd_gradient(
            lambda phi: sampler.apply(phi, b.obs[:, None], xi), params["sampler"], log_p, n_fixed)
        upd, sampler_opt = tx.update(grads, learner.opt_state["sampler"], params["sampler"])
        new_sampler = optax.apply_updates(params["sampler"], upd)
        surrogate = jnp.mean(jnp.sqrt(jnp.sum(direction ** 2, axis=-1)))

        updates = learner.updates + 1
        target = periodic_target_update(learner.target_params, new_critic, updates,
                                        config.target_update_every, config.tau)
        new_params = {"sampler": new_sampler, "critic": new_critic}
        return (new_params, Learner(target, {"sampler": sampler_opt, "critic": critic_opt},
                                    updates), buffer_state,
                {"critic_loss": q_loss, "soft_value": jnp.mean(next_v),
                 "svgd_step_norm": surrogate})

    return make_agent(env, config, buffer, init_learner, update, policy)


def _make_discrete(config: Config, env, q, tx, buffer, alpha) -> Agent:
    """Discrete actions: V(s) = alpha logsumexp(Q(s, .)/alpha), pi = softmax(Q(s, .)/alpha)."""

    def init_learner(key, obs, action):
        params = q.init(key, obs)
        return params, Learner(params, tx.init(params), jnp.int32(0))

    def policy(params, obs, key, deterministic=False):
        logits = q.apply(params, obs) / alpha
        if deterministic:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    def update(params, learner: Learner, buffer_state, key, normalize):
        b = uniform_batch(buffer, buffer_state, key, normalize)
        next_v = alpha * jax.nn.logsumexp(q.apply(learner.target_params, b.next_obs) / alpha, -1)
        y = jax.lax.stop_gradient(
            b.reward + config.gamma * (1.0 - b.terminated.astype(jnp.float32)) * next_v)

        def loss_fn(theta):
            q_sa = jnp.take_along_axis(q.apply(theta, b.obs), b.action[:, None], -1)[:, 0]
            return 0.5 * jnp.mean((q_sa - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        upd, opt_state = tx.update(grads, learner.opt_state, params)
        params = optax.apply_updates(params, upd)
        updates = learner.updates + 1
        target = periodic_target_update(learner.target_params, params, updates,
                                        config.target_update_every, config.tau)
        return (params, Learner(target, opt_state, updates), buffer_state,
                {"critic_loss": loss, "soft_value": jnp.mean(next_v)})

    return make_agent(env, config, buffer, init_learner, update, policy)


ALGORITHM = Algorithm(
    name="soft_q_learning", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=50_000,
    default_env="Pendulum-v1",
    hyperparameters=("learning_rate", "gamma", "alpha", "tau"),
)
