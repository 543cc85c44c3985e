r"""DPG: deterministic policy gradient, off-policy actor-critic (Silver et al. 2014).

A deterministic actor \mu_\theta(s) and a critic Q_w(s, a), learned online from the transitions
of a Gaussian behaviour policy \beta(a|s) = N(\mu_\theta(s), \sigma^2) -- no replay buffer and no
target networks (DDPG's additions, ``ddpg``). N parallel environments step together; after every
step, on its N transitions (s, a, r, s'):

    TD error     \delta = r + \gamma (1 - terminated) Q_w(s', \mu_\theta(s')) - Q_w(s, a)
    critic       w <- w + \alpha_w \delta \nabla_w Q_w(s, a)                 (semi-gradient TD(0))
    actor        \theta <- \theta + \alpha_\theta \nabla_\theta \mu_\theta(s) \nabla_a Q_w(s, a)|_{a=\mu_\theta(s)}

Three critics (``critic``):

- ``"compatible"``: Silver et al.'s COPDAC-Q (Theorem 3), the compatible function approximator

      Q^w(s, a) = (a - \mu_\theta(s))^T \nabla_\theta \mu_\theta(s)^T w + V^v(s)       -> ``compatible_q``

  with w of the dimension of \theta (a pytree shaped like the actor's parameters, starting at 0)
  and V^v a network (the paper: linear in features of s). \nabla_\theta \mu_\theta(s)^T w is a
  Jacobian-vector product, so \nabla_a Q^w|_{a=\mu_\theta(s)} = \nabla_\theta \mu_\theta(s)^T w and the
  actor step above is the paper's \theta <- \theta + \alpha_\theta \nabla_\theta \mu_\theta(s)
  (\nabla_\theta \mu_\theta(s)^T w); the critic's semi-gradient is \delta \phi(s, a) with the
  compatible features \phi(s, a) = \nabla_\theta \mu_\theta(s) (a - \mu_\theta(s)) for w, and
  \delta \nabla_v V^v(s) for v.
- ``"linear_advantage"`` (the default): the same shape with a learned gradient,
  Q_w(s, a) = V_v(s) + (a - \mu_\theta(s))^T g_w(s), V and g networks of s, so
  \nabla_a Q_w|_{a=\mu_\theta(s)} = g_w(s); COPDAC-Q is the special case
  g(s) = \nabla_\theta \mu_\theta(s)^T w.
- ``"mlp"``: an MLP of (s, a).

With the first two, Q(s', \mu_\theta(s')) = V(s'); in the actor's step the actor's parameters
inside the critic (\mu_\theta(s) and its Jacobian) are held fixed. With ``updates_per_step``
K > 1 the update is repeated K times on the same N transitions before they are dropped. The
deterministic policy gradient needs no importance weights for the off-policy actor update (the
theorem integrates over states only), nor does the Q-learning critic. The step sizes are Adam's. Actions live in [-1, 1]^d and are rescaled to the environment's box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import noisy_deterministic_policy
from pgzoo.core import config as cfg
from pgzoo.core.networks import (ACTIVATIONS, DeterministicActor, QNetwork, Torso,
                                 ValueNetwork, dense)
from pgzoo.core.rollout import EPISODE_SUMS, episode_metrics

CRITICS = ("compatible", "linear_advantage", "mlp")


@dataclass(frozen=True)
class Config:
    num_envs: int = 16  # parallel environments decorrelate the online updates
    actor_learning_rate: float = 1e-4
    critic_learning_rate: float = 1e-3
    gamma: float = 0.9  # online updates on Pendulum-v1 learned with 0.9, not with 0.95 or 0.99
    exploration_noise: float = 0.4  # sigma of the Gaussian behaviour policy (0.2, 0.3 learned less)
    critic: str = "linear_advantage"  # or Silver et al.'s "compatible" (COPDAC-Q), or "mlp"
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


def compatible_q(actor, value, critic_params, actor_params, obs, action):
    """Q^w(s, a) = (a - mu_theta(s))^T grad_theta mu_theta(s)^T w + V^v(s) (Silver et al. 2014,
    Theorem 3), ``critic_params = {"w": <shaped like actor_params>, "v": <value network>}``.

    grad_theta mu_theta(s)^T w is the Jacobian-vector product of theta -> mu_theta(s) along w."""
    mu, jacobian_w = jax.jvp(lambda theta: actor.apply(theta, obs), (actor_params,),
                             (critic_params["w"],))
    return value.apply(critic_params["v"], obs) + jnp.sum((action - mu) * jacobian_w, axis=-1)


class LinearAdvantageCritic(nn.Module):
    """Q_w(s, a) = V_v(s) + (a - mu(s))^T g_w(s): the advantage is linear in the deviation from
    the actor's action (``mu`` is an input, held fixed), so grad_a Q_w(s, a) = g_w(s)."""

    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int

    @nn.compact
    def __call__(self, obs, action, mu):
        value = ValueNetwork(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
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
    if config.critic == "compatible":
        value = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)

        def init_critic(key, obs, action, actor_params):
            return {"v": value.init(key, obs), "w": jax.tree.map(jnp.zeros_like, actor_params)}

        def q(critic_params, actor_params, obs, action):
            return compatible_q(actor, value, critic_params, actor_params, obs, action)
    else:
        critic = (LinearAdvantageCritic(action_dim, config.hidden_sizes, config.activation,
                                        obs_ndim) if config.critic == "linear_advantage"
                  else MLPCritic(config.hidden_sizes, config.activation, obs_ndim))

        def init_critic(key, obs, action, actor_params):
            return critic.init(key, obs, action, action)

        def q(critic_params, actor_params, obs, action):
            return critic.apply(critic_params, obs, action, actor.apply(actor_params, obs))
    actor_tx = optax.adam(config.actor_learning_rate)
    critic_tx = optax.adam(config.critic_learning_rate)

    def init(key):
        env_key, actor_key, critic_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        action = jnp.zeros((config.num_envs, action_dim))
        actor_params = actor.init(actor_key, ts.obs)
        params = {"actor": actor_params,
                  "critic": init_critic(critic_key, ts.obs, action, actor_params)}
        opt = {"actor": actor_tx.init(params["actor"]), "critic": critic_tx.init(params["critic"])}
        return State(params, opt, env_state, ts.obs, state_key)

    policy = noisy_deterministic_policy(actor, config.exploration_noise)

    def update(carry, obs, action, reward, next_obs, terminated):
        params, opt = carry
        theta_now = jax.lax.stop_gradient(params["actor"])
        next_q = q(params["critic"], theta_now, next_obs, actor.apply(theta_now, next_obs))
        target = jax.lax.stop_gradient(reward + config.gamma * (1.0 - terminated) * next_q)

        def critic_loss(w):  # its gradient is -delta grad_w Q_w(s, a)
            return 0.5 * jnp.mean((target - q(w, theta_now, obs, action)) ** 2)

        def actor_loss(theta):  # its gradient is -grad_theta mu(s) grad_a Q_w(s, a)|_{a=mu(s)}
            return -jnp.mean(q(params["critic"], theta_now, obs, actor.apply(theta, obs)))

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
        return state, {k: (v.sum() if k in EPISODE_SUMS else jnp.mean(v)) for k, v in m.items()}

    return Agent(init, step, policy, config.block_size * config.num_envs)


ALGORITHM = Algorithm(
    name="dpg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=200_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("actor_learning_rate", "critic_learning_rate", "exploration_noise"),
)
