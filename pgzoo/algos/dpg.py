r"""DPG: deterministic policy gradient, off-policy actor-critic (Silver et al. 2014).

A deterministic actor \mu_\theta(s) and a critic Q_w(s, a), learned online from the transitions
of a Gaussian behaviour policy \beta(a|s) = N(\mu_\theta(s), \sigma^2) -- no replay buffer and no
target networks (DDPG's additions, ``ddpg``). N parallel environments step together; after every
step, on its N transitions (s, a, r, s'):

    TD error     \delta = r + \gamma (1 - terminated) Q_w(s', \mu_\theta(s')) - Q_w(s, a)
    critic       w <- w + \alpha_w \delta \nabla_w Q_w(s, a)                 (semi-gradient TD(0))
    actor        \theta <- \theta + \alpha_\theta \nabla_\theta \mu_\theta(s) \nabla_a Q_w(s, a)|_{a=\mu_\theta(s)}

The critic is, by default, of the compatible form of Silver et al.'s COPDAC-Q,

    Q_w(s, a) = V_v(s) + (a - \mu_\theta(s))^T g_w(s),   so   \nabla_a Q_w(s, a)|_{a=\mu_\theta(s)} = g_w(s)

with V and g networks (the paper's linear features (a - \mu_\theta(s))^T \nabla_\theta \mu_\theta(s)^T w
are one choice of g), and Q_w(s', \mu_\theta(s')) = V_v(s'); ``critic="mlp"`` uses an MLP of
(s, a) instead. With ``updates_per_step`` K > 1 the update is repeated K times on the same N transitions
before they are dropped. The deterministic policy gradient needs no importance weights for the
off-policy actor update (the theorem integrates over states only), nor does the Q-learning critic. The step
sizes are Adam's. Actions live in [-1, 1]^d and are rescaled to the environment's box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent
from pgzoo.algos.offpolicy import SUMS, noisy_deterministic_policy
from pgzoo.core import config as cfg
from pgzoo.core.networks import (ACTIVATIONS, MLP, DeterministicActor, QNetwork, ValueNetwork,
                                 dense)
from pgzoo.core.rollout import episode_metrics

ACTION_SPACES = ("continuous",)
DEFAULT_TOTAL_STEPS = 200_000  # the Pendulum-v1 budget of the benchmark
DEFAULT_ENV = "Pendulum-v1"
CRITICS = ("compatible", "mlp")


@dataclass(frozen=True)
class Config:
    num_envs: int = 16  # parallel environments decorrelate the online updates
    actor_learning_rate: float = 1e-4
    critic_learning_rate: float = 1e-3
    gamma: float = 0.9  # online updates on Pendulum-v1 learned with 0.9, not with 0.95 or 0.99
    exploration_noise: float = 0.4  # sigma of the Gaussian behaviour policy (0.2, 0.3 learned less)
    critic: str = "compatible"  # Silver et al. 2014's COPDAC form (see the docstring), or "mlp"
    updates_per_step: int = 1  # gradient steps on each step's N transitions (no memory kept)
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    normalize_obs: bool = False
    normalize_reward: bool = True  # without it Pendulum-v1 reached only -450 to -530 in 200k

    def __post_init__(self):
        cfg.positive(self, "num_envs", "actor_learning_rate", "critic_learning_rate",
                     "updates_per_step", "block_size")
        cfg.non_negative(self, "exploration_noise")
        cfg.unit_interval(self, "gamma")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "critic", CRITICS)


class CompatibleCritic(nn.Module):
    """Q_w(s, a) = V_v(s) + (a - mu(s))^T g_w(s): the advantage is linear in the deviation from
    the actor's action (``mu`` is an input, held fixed), so grad_a Q_w(s, a) = g_w(s)."""

    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int

    @nn.compact
    def __call__(self, obs, action, mu):
        value = ValueNetwork(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        x = MLP(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        g = dense(self.action_dim, 0.01)(x)
        return value + jnp.sum((action - jax.lax.stop_gradient(mu)) * g, axis=-1)


class MLPCritic(nn.Module):
    """Q_w(s, a), an MLP of the concatenated observation and action."""

    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int

    @nn.compact
    def __call__(self, obs, action, mu):
        del mu
        return QNetwork(0, self.hidden_sizes, self.activation, self.obs_ndim)(obs, action)


class State(NamedTuple):
    params: Any  # {"actor", "critic"}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = DeterministicActor(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    critic = (CompatibleCritic(action_dim, config.hidden_sizes, config.activation, obs_ndim)
              if config.critic == "compatible"
              else MLPCritic(config.hidden_sizes, config.activation, obs_ndim))
    actor_tx = optax.adam(config.actor_learning_rate)
    critic_tx = optax.adam(config.critic_learning_rate)

    def init(key):
        env_key, actor_key, critic_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        action = jnp.zeros((config.num_envs, action_dim))
        params = {"actor": actor.init(actor_key, ts.obs),
                  "critic": critic.init(critic_key, ts.obs, action, action)}
        opt = {"actor": actor_tx.init(params["actor"]), "critic": critic_tx.init(params["critic"])}
        return State(params, opt, env_state, ts.obs, state_key)

    policy = noisy_deterministic_policy(actor, config.exploration_noise)

    def update(carry, obs, action, reward, next_obs, terminated):
        params, opt = carry
        next_mu = actor.apply(params["actor"], next_obs)
        next_q = critic.apply(params["critic"], next_obs, next_mu, next_mu)
        mu = actor.apply(params["actor"], obs)
        target = jax.lax.stop_gradient(reward + config.gamma * (1.0 - terminated) * next_q)

        def critic_loss(w):  # its gradient is -delta grad_w Q_w(s, a)
            return 0.5 * jnp.mean((target - critic.apply(w, obs, action, mu)) ** 2)

        def actor_loss(theta):  # its gradient is -grad_theta mu(s) grad_a Q_w(s, a)|_{a=mu(s)}
            return -jnp.mean(critic.apply(params["critic"], obs, actor.apply(theta, obs), mu))

        c_loss, c_grads = jax.value_and_grad(critic_loss)(params["critic"])
        a_loss, a_grads = jax.value_and_grad(actor_loss)(params["actor"])
        c_upd, c_opt = critic_tx.update(c_grads, opt["critic"])
        a_upd, a_opt = actor_tx.update(a_grads, opt["actor"])
        params = {"actor": optax.apply_updates(params["actor"], a_upd),
                  "critic": optax.apply_updates(params["critic"], c_upd)}
        return (params, {"actor": a_opt, "critic": c_opt}), {"critic_loss": c_loss,
                                                              "actor_loss": a_loss}

    def env_step(state: State, key):
        act_key, env_key = jax.random.split(key)
        action = policy(state.params, state.obs, act_key)
        env_state, ts = env.step(state.env_state, action, env_key)
        transitions = (state.obs, action, ts.reward, ts.final_obs,
                       ts.terminated.astype(jnp.float32))
        (params, opt), stats = jax.lax.scan(
            lambda carry, _: update(carry, *transitions), (state.params, state.opt_state), None,
            length=config.updates_per_step)
        state = State(params, opt, env_state, ts.obs, state.key)
        return state, {**jax.tree.map(jnp.mean, stats), **episode_metrics(ts.info)}

    def step(state: State):
        key, block_key = jax.random.split(state.key)
        state, m = jax.lax.scan(env_step, state._replace(key=key),
                                jax.random.split(block_key, config.block_size))
        return state, {k: (v.sum() if k in SUMS else jnp.mean(v)) for k, v in m.items()}

    return Agent(init, step, policy, config.block_size * config.num_envs)
