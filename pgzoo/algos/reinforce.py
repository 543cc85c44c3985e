r"""REINFORCE: Monte-Carlo policy gradient (Williams 1992; Sutton & Barto 2018, sec. 13.3-13.4).

For every step t of an episode, with the return from t

    G_t = \sum_{k=t+1}^{T} \gamma^{k-t-1} R_k                        -> ``discounted_returns``

the policy parameters move along

    \theta <- \theta + \alpha_\theta \gamma^t (G_t - b(S_t)) \nabla \ln \pi_\theta(A_t|S_t)

where the \gamma^t factor is optional (``discount_gradient``; Sutton & Barto keep it, most
implementations drop it) and the baseline b is 0 or a learned state value (``baseline``),
fitted by

    w <- w + \alpha_w (G_t - V_w(S_t)) \nabla V_w(S_t).                 -> ``value_loss``

N environments run in parallel for T steps per iteration. Their episodes have different lengths
and cross iteration boundaries, so a step is used only when its episode ended within the rollout
(``complete_mask``): its G_t is then a true Monte-Carlo return. Steps of an episode still running
at the end of the rollout are dropped; the episode goes on, and its later steps are used in the
next iteration. At a time-limit truncation the return is bootstrapped with \gamma V_w(S_final)
when there is a baseline, and cut otherwise. t counts steps from the start of each episode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (FAMILIES, distribution, policy_head,
                                      select_action)
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.optim import OPTIMIZERS, make_optimizer
from pgzoo.core.returns import bootstrap_truncated, complete_mask, discounted_returns
from pgzoo.core.rollout import episode_metrics, rollout

ACTION_SPACES = ("discrete", "continuous")
DEFAULT_TOTAL_STEPS = 1_000_000  # the CartPole-v1 budget of the benchmark


@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # N parallel episodes
    num_steps: int = 256  # T steps per environment per iteration
    learning_rate: float = 1e-3  # alpha_theta (Adam); tuned here on CartPole-v1
    value_learning_rate: float = 3e-3  # alpha_w (Adam); tuned here on CartPole-v1
    gamma: float = 0.99
    baseline: bool = True  # learned V_w(s) baseline (Sutton & Barto sec. 13.4)
    discount_gradient: bool = False  # the gamma^t factor of Sutton & Barto's update
    normalize_advantage: bool = False  # not in the original algorithm; off
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
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)


class State(NamedTuple):
    params: Any  # {"policy": theta, "value": w}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def value_loss(values, returns, mask):
    return 0.5 * jnp.sum(mask * (returns - values) ** 2) / jnp.maximum(mask.sum(), 1.0)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                       config.activation, obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = {"policy": make_optimizer(config.optimizer, config.learning_rate, config.max_grad_norm),
          "value": make_optimizer(config.optimizer, config.value_learning_rate,
                                  config.max_grad_norm)}

    def init(key):
        pi_key, vf_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "value": vf.init(vf_key, ts.obs)}
        opt_state = {k: tx[k].init(params[k]) for k in tx}
        return State(params, opt_state, env_state, ts.obs, state_key)

    def policy(params, obs, key, deterministic=False):
        head = pi.apply(params["policy"], obs)
        return select_action(distribution(head), key, deterministic)

    def step(state: State):
        key, rollout_key = jax.random.split(state.key)
        params = state.params

        def act(obs, k):
            return policy(params, obs, k), ()

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        rewards = traj.reward
        if config.baseline:
            final_values = vf.apply(params["value"], traj.final_obs)
            rewards = bootstrap_truncated(rewards, traj.truncated, final_values, config.gamma)
        # The last value is irrelevant: only steps whose episode ended are used.
        returns = discounted_returns(rewards, traj.done, jnp.zeros(config.num_envs), config.gamma)
        mask = complete_mask(traj.done).astype(jnp.float32)
        episode_t = traj.info["episode_length"] - 1  # t, counted from the episode's start
        weight = mask * (config.gamma ** episode_t if config.discount_gradient else 1.0)
        n = jnp.maximum(mask.sum(), 1.0)

        def vf_loss(w):
            return value_loss(vf.apply(w, traj.obs), returns, mask)

        if config.baseline:
            v_loss, v_grads = jax.value_and_grad(vf_loss)(params["value"])
            baseline = vf.apply(params["value"], traj.obs)
        else:
            v_loss, v_grads, baseline = jnp.float32(0.0), None, 0.0
        advantage = returns - baseline
        if config.normalize_advantage:
            mean = jnp.sum(mask * advantage) / n
            std = jnp.sqrt(jnp.sum(mask * (advantage - mean) ** 2) / n)
            advantage = (advantage - mean) / (std + 1e-8)

        def pi_loss(theta):
            dist = distribution(pi.apply(theta, traj.obs))
            log_prob = dist.log_prob(traj.action)
            objective = jnp.sum(weight * advantage * log_prob) / n
            entropy = jnp.sum(mask * dist.entropy()) / n
            return -(objective + config.ent_coef * entropy), entropy

        (p_loss, entropy), p_grads = jax.value_and_grad(pi_loss, has_aux=True)(params["policy"])
        grads = {"policy": p_grads, "value": v_grads}
        new_params, opt_state = dict(params), dict(state.opt_state)
        for k in tx if config.baseline else ("policy",):
            updates, opt_state[k] = tx[k].update(grads[k], state.opt_state[k], params[k])
            new_params[k] = optax.apply_updates(params[k], updates)
        metrics = {"policy_loss": p_loss, "value_loss": v_loss, "entropy": entropy,
                   "used_fraction": mask.mean()}
        metrics.update(episode_metrics(traj.info))
        return State(new_params, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, config.num_envs * config.num_steps)
