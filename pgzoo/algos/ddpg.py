r"""DDPG: deep deterministic policy gradient (Lillicrap et al. 2015).

DPG (``dpg``) with the two additions that made it work with deep networks: a replay buffer, and
target networks \mu_{\theta'}, Q_{w'} that track the learned ones slowly. Every update samples a
replay minibatch and:

    target        y = r + \gamma (1 - terminated) Q_{w'}(s', \mu_{\theta'}(s'))    -> ``ddpg_target``
    critic        w <- argmin E[(Q_w(s, a) - y)^2]
    actor         \nabla_\theta J = E[ \nabla_a Q_w(s, a)|_{a=\mu_\theta(s)} \nabla_\theta \mu_\theta(s) ]
                  (the deterministic policy gradient, by differentiating Q_w(s, \mu_\theta(s)))
    targets       \theta' <- \tau \theta + (1 - \tau) \theta',   w' <- \tau w + (1 - \tau) w'

Exploration adds Gaussian noise N(0, \sigma) or Ornstein-Uhlenbeck noise (the paper's choice,
\theta = 0.15, \sigma = 0.2, per environment, restarted with each episode)

    x_{t+1} = x_t + \theta (0 - x_t) dt + \sigma \sqrt{dt} N(0, 1)      -> ``ornstein_uhlenbeck``

to \mu_\theta(s), with the paper's unit time step dt = 1 (SB3's OrnsteinUhlenbeckActionNoise
defaults to dt = 0.01, which shrinks each step's innovation tenfold). With ``batch_norm`` the
inputs of the actor and the critic are batch-normalised, as in the paper: batch statistics while
learning, running averages when acting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import (check_budget, make_agent, noisy_deterministic_policy,
                                      uniform_batch)
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.networks import ACTIVATIONS, DeterministicActor, QNetwork
from pgzoo.core.optim import soft_update

NOISES = ("gaussian", "ornstein_uhlenbeck")


@dataclass(frozen=True)
class Config:
    num_envs: int = 1  # SB3 DDPG
    buffer_size: int = 1_000_000  # SB3 DDPG
    batch_size: int = 256  # SB3 DDPG
    learning_starts: int = 100  # SB3 DDPG
    actor_learning_rate: float = 1e-3  # SB3 DDPG (Lillicrap et al.: 1e-4)
    critic_learning_rate: float = 1e-3  # SB3 DDPG and Lillicrap et al.
    gamma: float = 0.99  # SB3 DDPG
    tau: float = 0.005  # SB3 DDPG (Lillicrap et al.: 0.001)
    noise: str = "gaussian"  # rl-baselines3-zoo ddpg.yml, Pendulum-v1 (the paper: OU)
    noise_std: float = 0.1  # Gaussian sigma: rl-baselines3-zoo ddpg.yml, Pendulum-v1
    ou_theta: float = 0.15  # Lillicrap et al. 2015
    ou_sigma: float = 0.2  # Lillicrap et al. 2015
    ou_dt: float = 1.0  # Lillicrap et al. 2015: unit time step (SB3's default 1e-2)
    batch_norm: bool = False  # Lillicrap et al. 2015 (low-dimensional inputs): True
    gradient_steps: int = 1  # SB3 DDPG
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (400, 300)  # SB3 DDPG; Lillicrap et al. 2015
    activation: str = "relu"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "actor_learning_rate",
                     "critic_learning_rate", "gradient_steps", "block_size", "ou_dt")
        cfg.non_negative(self, "learning_starts", "noise_std", "ou_theta", "ou_sigma")
        cfg.unit_interval(self, "gamma", "tau")
        cfg.one_of(self, "noise", NOISES)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any


class InputNorm(nn.Module):
    """Batch normalisation of a network's inputs (no learned scale or shift)."""

    @nn.compact
    def __call__(self, x, train: bool):
        return nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                            momentum=0.99)(x)


class Actor(nn.Module):
    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    batch_norm: bool

    @nn.compact
    def __call__(self, obs, train: bool = False):
        if self.batch_norm:
            obs = InputNorm()(obs, train)
        return DeterministicActor(self.action_dim, self.hidden_sizes, self.activation,
                                  self.obs_ndim)(obs)


class Critic(nn.Module):
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    batch_norm: bool

    @nn.compact
    def __call__(self, obs, action, train: bool = False):
        if self.batch_norm:
            obs = InputNorm()(obs, train)
        return QNetwork(0, self.hidden_sizes, self.activation, self.obs_ndim)(obs, action)


def ddpg_target(reward, terminated, next_q, gamma):
    """y = r + gamma (1 - terminated) Q'(s', mu'(s'))."""
    return reward + gamma * (1.0 - terminated) * next_q


def ornstein_uhlenbeck(x, key, theta: float, sigma: float, dt: float = 1.0):
    """One step of x_{t+1} = x_t - theta x_t dt + sigma sqrt(dt) N(0, 1): with dt = 1 the
    innovation has standard deviation sigma (Lillicrap et al. 2015)."""
    return x - theta * x * dt + sigma * jnp.sqrt(dt) * jax.random.normal(key, x.shape)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = Actor(action_dim, config.hidden_sizes, config.activation, obs_ndim, config.batch_norm)
    critic = Critic(config.hidden_sizes, config.activation, obs_ndim, config.batch_norm)
    actor_tx = optax.adam(config.actor_learning_rate)
    critic_tx = optax.adam(config.critic_learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)

    def init_learner(key, obs, action):
        actor_key, critic_key = jax.random.split(key)
        params = {"actor": actor.init(actor_key, obs), "critic": critic.init(critic_key, obs, action)}
        opt = {"actor": actor_tx.init(params["actor"]["params"]),
               "critic": critic_tx.init(params["critic"]["params"])}
        return params, Learner(params, opt)

    policy = noisy_deterministic_policy(actor, config.noise_std)

    def explore(params, obs, noise, key, step):
        if config.noise == "gaussian":
            return policy(params, obs, key), noise
        noise = ornstein_uhlenbeck(noise, key, config.ou_theta, config.ou_sigma, config.ou_dt)
        return jnp.clip(actor.apply(params["actor"], obs) + noise, -1.0, 1.0), noise

    def init_noise(num_envs):
        return () if config.noise == "gaussian" else jnp.zeros((num_envs, action_dim))

    def train_apply(module, variables, *args):
        """Apply in training mode; returns the output and the variables with new batch stats."""
        out, new = module.apply(variables, *args, train=True, mutable=["batch_stats"])
        return out, {**variables, **new}

    def update(params, learner: Learner, buffer_state, key, normalize):
        b = uniform_batch(buffer, buffer_state, key, normalize)
        targets = learner.target_params
        next_q = critic.apply(targets["critic"], b.next_obs,
                              actor.apply(targets["actor"], b.next_obs))
        y = ddpg_target(b.reward, b.terminated.astype(jnp.float32), next_q, config.gamma)

        def critic_loss(w, variables):
            q, variables = train_apply(critic, {**variables, "params": w}, b.obs, b.action)
            return jnp.mean((q - y) ** 2), variables

        (c_loss, critic_vars), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            params["critic"]["params"], params["critic"])
        updates, critic_opt = critic_tx.update(grads, learner.opt_state["critic"])
        critic_vars = {**critic_vars,
                       "params": optax.apply_updates(critic_vars["params"], updates)}

        def actor_loss(theta, variables):
            action, variables = train_apply(actor, {**variables, "params": theta}, b.obs)
            return -jnp.mean(critic.apply(critic_vars, b.obs, action)), variables

        (a_loss, actor_vars), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params["actor"]["params"], params["actor"])
        updates, actor_opt = actor_tx.update(grads, learner.opt_state["actor"])
        actor_vars = {**actor_vars, "params": optax.apply_updates(actor_vars["params"], updates)}

        params = {"actor": actor_vars, "critic": critic_vars}
        learner = Learner(soft_update(targets, params, config.tau),
                          {"actor": actor_opt, "critic": critic_opt})
        return params, learner, buffer_state, {"critic_loss": c_loss, "actor_loss": a_loss,
                                               "q_mean": jnp.mean(y)}

    return make_agent(env, config, buffer, init_learner, update, policy, explore, init_noise)


ALGORITHM = Algorithm(
    name="ddpg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=20_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("actor_learning_rate", "critic_learning_rate", "tau", "noise_std"),
)
