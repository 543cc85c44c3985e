r"""DQN (Mnih et al. 2015), with Double DQN (van Hasselt et al. 2016) and n-step returns.

A network Q_\theta(s, \cdot) gives one value per discrete action. The behaviour policy is
\epsilon-greedy, \epsilon falling linearly from ``start_e`` to ``end_e`` over the first
``exploration_fraction`` of the run (uniform random actions before ``learning_starts``). Every
transition goes into a replay buffer; every ``train_frequency`` environment steps, a minibatch of
n-step transitions (s_t, a_t, R_t^{(n)}, s_{t+k}, \gamma^k) is sampled and

    n-step return      R^{(n)}_t = \sum_{i=0}^{k-1} \gamma^i r_{t+i},  k = n, or fewer when the
                       episode ended inside the window (terminated: no bootstrap; truncated:
                       bootstrap from the true final observation)          -> ``replay.n_step_transition``
    DQN target         y = R^{(n)} + \gamma^k (1 - terminated) \max_a Q_{\theta^-}(s_{t+k}, a)
    Double DQN target  a^* = \argmax_a Q_\theta(s_{t+k}, a)   (the online network selects,
                       y = R^{(n)} + \gamma^k (1 - terminated) Q_{\theta^-}(s_{t+k}, a^*)   the target evaluates)
                                                                            -> ``q_learning_target``
    loss               L(\theta) = E[\ell(Q_\theta(s_t, a_t) - y)],  \ell squared error or Huber
    target network     \theta^- <- \tau \theta + (1 - \tau) \theta^-  every ``target_update_every``
                       updates (\tau = 1: a copy, as in the paper)

Defaults are CleanRL's ``dqn.py`` on CartPole-v1: Adam 2.5e-4, buffer 10k, batch 128, 10k random
steps, train every 10 steps, target copy every 500 steps (50 updates), \epsilon 1 -> 0.05 over
half the run, squared error, a 120-84 ReLU network. The n-step window is the one D4PG uses: it
never crosses an episode end, and the buffer samples only windows of consecutive stored steps of
one environment, never across its write head.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import check_budget, make_agent, normalized
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.networks import ACTIVATIONS, ENCODERS, QValues, choose_encoder
from pgzoo.core.optim import periodic_target_update


@dataclass(frozen=True)
class Config:
    num_envs: int = 1  # CleanRL dqn.py
    buffer_size: int = 10_000  # CleanRL dqn.py
    batch_size: int = 128  # CleanRL dqn.py
    learning_starts: int = 10_000  # CleanRL dqn.py (uniform random actions before this)
    learning_rate: float = 2.5e-4  # CleanRL dqn.py (Adam)
    gamma: float = 0.99  # CleanRL dqn.py
    train_frequency: int = 10  # CleanRL dqn.py: environment steps (per env) between updates
    gradient_steps: int = 1  # updates each time it trains
    target_update_every: int = 50  # updates; CleanRL: every 500 steps at train_frequency 10
    tau: float = 1.0  # CleanRL dqn.py: 1 copies the online network
    start_e: float = 1.0  # CleanRL dqn.py
    end_e: float = 0.05  # CleanRL dqn.py
    exploration_fraction: float = 0.5  # CleanRL dqn.py: epsilon reaches end_e at half the run
    loss: str = "mse"  # CleanRL dqn.py; "huber" as Mnih et al. 2015 (error clipping)
    double_q: bool = False  # van Hasselt et al. 2016
    n_step: int = 1  # 1: the paper's one-step target
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (120, 84)  # CleanRL dqn.py
    activation: str = "relu"  # CleanRL dqn.py
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate",
                     "train_frequency", "gradient_steps", "target_update_every", "n_step",
                     "block_size", "exploration_fraction")
        cfg.non_negative(self, "learning_starts")
        cfg.unit_interval(self, "gamma", "tau", "start_e", "end_e")
        cfg.one_of(self, "loss", ("mse", "huber"))
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)


def linear_epsilon(start_e: float, end_e: float, duration: float):
    """epsilon(t) = max(end_e, start_e + (end_e - start_e) t / duration), CleanRL's schedule."""

    def epsilon(t):
        slope = (end_e - start_e) / duration
        return jnp.maximum(slope * t + start_e, end_e)

    return epsilon


def q_learning_target(reward, discount, next_q_target, next_q_online=None):
    """y = R + discount * Q_target(s', a*), a* = argmax Q_online(s') (Double DQN) or
    argmax Q_target(s') (DQN). ``discount`` is gamma^k (1 - terminated)."""
    chooser = next_q_target if next_q_online is None else next_q_online
    best = jnp.argmax(chooser, axis=-1)
    return reward + discount * jnp.take_along_axis(next_q_target, best[..., None], -1)[..., 0]


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any
    updates: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    q = QValues(env.action_space.n, config.hidden_sizes, config.activation, obs_ndim,
                config.encoder)
    choose_encoder(config.encoder, env.observation_space.shape)  # a one-line error, early
    tx = optax.adam(config.learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs, config.n_step)
    epsilon = linear_epsilon(config.start_e, config.end_e,
                             config.exploration_fraction * total_steps)

    def init_learner(key, obs, action):
        params = q.init(key, obs)
        return params, Learner(params, tx.init(params), jnp.int32(0))

    def greedy(params, obs):
        return jnp.argmax(q.apply(params, obs), axis=-1).astype(jnp.int32)

    def epsilon_greedy(params, obs, key, eps):
        explore_key, action_key = jax.random.split(key)
        random = jax.random.randint(action_key, obs.shape[:1], 0, env.action_space.n, jnp.int32)
        take_random = jax.random.uniform(explore_key, obs.shape[:1]) < eps
        return jnp.where(take_random, random, greedy(params, obs))

    def policy(params, obs, key, deterministic=False):
        if deterministic:
            return greedy(params, obs)
        return epsilon_greedy(params, obs, key, config.end_e)

    def explore(params, obs, noise, key, step):
        return epsilon_greedy(params, obs, key, epsilon(step)), noise

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample = buffer.sample(buffer_state, key).experience
        b = normalized(replay.n_step_transition(sample, config.gamma), normalize)
        next_q_target = q.apply(learner.target_params, b.next_obs)
        next_q_online = q.apply(params, b.next_obs) if config.double_q else None
        y = jax.lax.stop_gradient(
            q_learning_target(b.reward, b.discount, next_q_target, next_q_online))

        def loss_fn(theta):
            q_sa = jnp.take_along_axis(q.apply(theta, b.obs), b.action[:, None], -1)[:, 0]
            td = q_sa - y
            loss = jnp.mean(td ** 2) if config.loss == "mse" else jnp.mean(
                optax.huber_loss(q_sa, y, delta=1.0))
            return loss, q_sa

        (loss, q_sa), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        upd, opt_state = tx.update(grads, learner.opt_state, params)
        params = optax.apply_updates(params, upd)
        updates = learner.updates + 1
        target = periodic_target_update(learner.target_params, params, updates,
                                        config.target_update_every, config.tau)
        stats = {"td_loss": loss, "q_values": jnp.mean(q_sa)}
        return params, Learner(target, opt_state, updates), buffer_state, stats

    return make_agent(env, config, buffer, init_learner, update, policy, explore=explore,
                      train_every=config.train_frequency)


ALGORITHM = Algorithm(
    name="dqn", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=500_000,  # CleanRL dqn.py, CartPole-v1
    hyperparameters=("learning_rate", "gamma", "tau", "start_e", "end_e"),
)
