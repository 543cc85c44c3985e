r"""One-step actor-critic (Sutton & Barto 2018, sec. 13.5), and its action-value variant.

After every environment step (S, A, R, S') the critic and the actor are updated at once.

State-value critic (``critic="state_value"``):

    \delta = R + \gamma V_w(S') - V_w(S)      (V_w(S') = 0 at termination; at a time-limit
                                               truncation S' is the true final observation)
    w      <- w + \alpha_w \delta \nabla V_w(S)                    -> ``critic_loss``
    \theta <- \theta + \alpha_\theta I \delta \nabla \ln \pi_\theta(A|S)     -> ``actor_loss``
    I      <- \gamma I   (``discount_actor``; I = 1 when off, as most implementations use)

Action-value critic (``critic="action_value"``), as the policy-gradient survey writes it:

    \delta = R + \gamma Q_w(S', A') - Q_w(S, A),   A' ~ \pi_\theta(.|S')   (the SARSA error)
    w      <- w + \alpha_w \delta \nabla Q_w(S, A)
    \theta <- \theta + \alpha_\theta I Q_w(S, A) \nabla \ln \pi_\theta(A|S)

N environments run in parallel (their updates are averaged); one iteration is T such steps, each
with its own update, inside one compiled ``scan``. I = \gamma^t with t counted from the episode's
start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (FAMILIES, distribution, policy_head,
                                      select_action)
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, QNetwork, ValueNetwork
from pgzoo.core.optim import OPTIMIZERS, apply_each, make_optimizer
from pgzoo.core.rollout import episode_metrics
from pgzoo.envs import Discrete

CRITICS = ("state_value", "action_value")


@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # parallel environments; each step's update averages over them
    num_steps: int = 128  # T updates per iteration (only sets the iteration's length)
    critic: str = "state_value"  # V_w (Sutton & Barto) or Q_w (the action-value actor-critic)
    learning_rate: float = 3e-4  # alpha_theta (Adam); tuned here on CartPole-v1
    value_learning_rate: float = 1e-3  # alpha_w (Adam); tuned here on CartPole-v1
    gamma: float = 0.99
    discount_actor: bool = False  # the I <- gamma I factor of Sutton & Barto
    ent_coef: float = 0.0  # not in the original algorithm; off
    optimizer: str = "adam"
    max_grad_norm: float = 0.0  # 0: no clipping
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    policy_dist: str = "gaussian"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "value_learning_rate")
        cfg.non_negative(self, "ent_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma")
        cfg.one_of(self, "critic", CRITICS)
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)


class State(NamedTuple):
    params: Any  # {"policy": theta, "critic": w}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def td_error(reward, terminated, next_value, value, gamma):
    """delta = R + gamma (1 - terminated) next_value - value."""
    return reward + gamma * (1.0 - terminated) * next_value - value


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_value = config.critic == "action_value"
    pi = PolicyNetwork(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                       config.activation, obs_ndim)
    if action_value:
        n = env.action_space.n if isinstance(env.action_space, Discrete) else 0
        qf = QNetwork(n, config.hidden_sizes, config.activation, obs_ndim)
        critic = lambda w, obs, action: qf.apply(w, obs, action)  # noqa: E731
    else:
        vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
        critic = lambda w, obs, action: vf.apply(w, obs)  # noqa: E731
    tx = {"policy": make_optimizer(config.optimizer, config.learning_rate, config.max_grad_norm),
          "critic": make_optimizer(config.optimizer, config.value_learning_rate,
                                   config.max_grad_norm)}

    def policy(params, obs, key, deterministic=False):
        head = pi.apply(params["policy"], obs)
        return select_action(distribution(head), key, deterministic)

    def init(key):
        pi_key, critic_key, env_key, state_key, act_key = jax.random.split(key, 5)
        env_state, ts = env.reset(env_key)
        theta = pi.init(pi_key, ts.obs)
        action = policy({"policy": theta}, ts.obs, act_key)
        w = (qf.init(critic_key, ts.obs, action) if action_value
             else vf.init(critic_key, ts.obs))
        params = {"policy": theta, "critic": w}
        return State(params, {k: tx[k].init(params[k]) for k in tx}, env_state, ts.obs, state_key)

    def one_step(carry, key):
        params, opt_state, env_state, obs = carry
        act_key, env_key, next_key = jax.random.split(key, 3)
        action = policy(params, obs, act_key)
        env_state, ts = env.step(env_state, action, env_key)
        # S' is the true next state (final_obs); A' ~ pi(.|S') for the SARSA error.
        next_action = policy(params, ts.final_obs, next_key)
        next_value = critic(params["critic"], ts.final_obs, next_action)
        discount = (config.gamma ** (ts.info["episode_length"] - 1) if config.discount_actor
                    else 1.0)  # I = gamma^t

        def critic_loss(w):
            value = critic(w, obs, action)
            delta = td_error(ts.reward, ts.terminated, jax.lax.stop_gradient(next_value), value,
                             config.gamma)
            return 0.5 * jnp.mean(delta**2), (delta, value)

        (c_loss, (delta, value)), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            params["critic"])
        signal = jax.lax.stop_gradient(value if action_value else delta)

        def actor_loss(theta):
            dist = distribution(pi.apply(theta, obs))
            objective = jnp.mean(discount * signal * dist.log_prob(action))
            entropy = dist.entropy().mean()
            return -(objective + config.ent_coef * entropy), entropy

        (a_loss, entropy), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params["policy"])
        new_params, new_opt = apply_each(tx, {"policy": a_grads, "critic": c_grads}, opt_state,
                                         params)
        metrics = {"actor_loss": a_loss, "critic_loss": c_loss, "entropy": entropy,
                   "td_error": jnp.abs(delta).mean(), **episode_metrics(ts.info)}
        return (new_params, new_opt, env_state, ts.obs), metrics

    def step(state: State):
        key, scan_key = jax.random.split(state.key)
        carry = (state.params, state.opt_state, state.env_state, state.obs)
        (params, opt_state, env_state, obs), m = jax.lax.scan(
            one_step, carry, jax.random.split(scan_key, config.num_steps))
        sums = ("episodes", "episode_return_sum", "episode_length_sum")
        metrics = {k: (v.sum() if k in sums else v.mean()) for k, v in m.items()}
        return State(params, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, config.num_envs * config.num_steps)


ALGORITHM = Algorithm(
    name="actor_critic", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=1_000_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("learning_rate", "value_learning_rate", "ent_coef"),
)
