r"""Vanilla policy gradient, as OpenAI's Spinning Up formulates it (with GAE advantages).

Each iteration collects T steps from N environments with \pi_{\theta_k}, then

    \hat{A}_t = GAE(\gamma, \lambda) with V_{\phi_k}                        -> ``gae``
    \hat{R}_t = rewards-to-go, bootstrapped from V where a rollout cuts an episode
                (and at time-limit truncations)                        -> ``discounted_returns``
    \theta_{k+1} = \theta_k + \alpha \hat{g},   \hat{g} = E_t[ \nabla \ln \pi_\theta(a_t|s_t) \hat{A}_t ]
                   (one Adam step per batch, advantages normalised)
    \phi_{k+1}   = argmin_\phi E_t[ (V_\phi(s_t) - \hat{R}_t)^2 ]
                   (``value_iters`` Adam steps of regression on the same batch)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (FAMILIES, distribution, policy_head,
                                      select_action)
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.returns import bootstrap_truncated, discounted_returns, gae
from pgzoo.core.rollout import episode_metrics, rollout



@dataclass(frozen=True)
class Config:
    num_envs: int = 4
    num_steps: int = 256  # N x T = 1024 per batch (Spinning Up uses 4000; smaller learns faster here)
    learning_rate: float = 1e-3  # pi_lr; Spinning Up 3e-4, raised for the smaller batch (tuned)
    value_learning_rate: float = 1e-3  # vf_lr, Spinning Up
    value_iters: int = 80  # train_v_iters, Spinning Up
    gamma: float = 0.99  # Spinning Up
    gae_lambda: float = 0.97  # lam, Spinning Up
    normalize_advantage: bool = True  # Spinning Up normalises advantages in its buffer
    hidden_sizes: tuple[int, ...] = (64, 64)  # Spinning Up
    activation: str = "tanh"  # Spinning Up
    policy_dist: str = "gaussian"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "value_learning_rate",
                     "value_iters")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)


class State(NamedTuple):
    params: Any  # {"policy": theta, "value": phi}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                       config.activation, obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = {"policy": optax.adam(config.learning_rate),
          "value": optax.adam(config.value_learning_rate)}

    def init(key):
        pi_key, vf_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "value": vf.init(vf_key, ts.obs)}
        return State(params, {k: tx[k].init(params[k]) for k in tx}, env_state, ts.obs,
                     state_key)

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
        values = vf.apply(params["value"], traj.obs)
        rewards = bootstrap_truncated(traj.reward, traj.truncated,
                                      vf.apply(params["value"], traj.final_obs), config.gamma)
        last_value = vf.apply(params["value"], obs)
        advantage, _ = gae(rewards, values, traj.done, last_value, config.gamma, config.gae_lambda)
        rewards_to_go = discounted_returns(rewards, traj.done, last_value, config.gamma)
        if config.normalize_advantage:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)

        def pi_loss(theta):
            dist = distribution(pi.apply(theta, traj.obs))
            return -jnp.mean(dist.log_prob(traj.action) * advantage), dist.entropy().mean()

        (p_loss, entropy), g = jax.value_and_grad(pi_loss, has_aux=True)(params["policy"])
        updates, pi_opt = tx["policy"].update(g, state.opt_state["policy"], params["policy"])
        theta = optax.apply_updates(params["policy"], updates)

        def vf_loss(phi):
            return jnp.mean((vf.apply(phi, traj.obs) - rewards_to_go) ** 2)

        def fit(carry, _):
            phi, opt = carry
            loss, grads = jax.value_and_grad(vf_loss)(phi)
            updates, opt = tx["value"].update(grads, opt, phi)
            return (optax.apply_updates(phi, updates), opt), loss

        (phi, vf_opt), v_losses = jax.lax.scan(fit, (params["value"], state.opt_state["value"]),
                                               None, length=config.value_iters)
        metrics = {"policy_loss": p_loss, "value_loss": v_losses[-1], "entropy": entropy,
                   **episode_metrics(traj.info)}
        return (State({"policy": theta, "value": phi}, {"policy": pi_opt, "value": vf_opt},
                      env_state, obs, key), metrics)

    return Agent(init, step, policy, config.num_envs * config.num_steps)


ALGORITHM = Algorithm(
    name="vpg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("learning_rate", "value_learning_rate", "gae_lambda"),
)
