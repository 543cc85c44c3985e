r"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, the synchronous form of A3C).

N environments step in lockstep for n steps; then one update uses, for every step t of the
rollout, the n-step return bootstrapped from the value of the state where the rollout ends

    R_t = \sum_{i=0}^{k-1} \gamma^i r_{t+i} + \gamma^k V_w(s_{t+k}),   k = n - t   -> ``discounted_returns``
    A_t = R_t - V_w(s_t)

(cut at terminations, bootstrapped from V(s_final) at time-limit truncations), and descends

    L = -E_t[ A_t \ln \pi_\theta(a_t|s_t) ] + c_v E_t[ (R_t - V_w(s_t))^2 ] / 2 - c_e E_t[ H[\pi_\theta(.|s_t)] ]

with RMSprop (as in the paper and Stable-Baselines3) or Adam, and gradients clipped to a global
norm. With ``gae_lambda`` < 1 the advantages are GAE(\gamma, \lambda) instead (SB3's option).
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
from pgzoo.core.networks import ACTIVATIONS, ENCODERS, ActorCritic, choose_encoder
from pgzoo.core.optim import OPTIMIZERS, make_optimizer
from pgzoo.core.returns import bootstrap_truncated, discounted_returns, gae
from pgzoo.core.rollout import episode_metrics, rollout



@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # rl-baselines3-zoo a2c.yml, CartPole-v1
    num_steps: int = 5  # n, SB3 A2C default
    learning_rate: float = 7e-4  # SB3 A2C default
    optimizer: str = "rmsprop"  # Mnih et al. 2016; SB3 A2C default
    rmsprop_decay: float = 0.99  # SB3 A2C default (alpha)
    optimizer_eps: float = 1e-5  # SB3 A2C default
    gamma: float = 0.99  # SB3 A2C default
    gae_lambda: float = 1.0  # SB3 A2C default: 1.0 gives the n-step returns of the paper
    ent_coef: float = 0.0  # rl-baselines3-zoo a2c.yml, CartPole-v1
    vf_coef: float = 0.5  # SB3 A2C default
    max_grad_norm: float = 0.5  # SB3 A2C default
    normalize_advantage: bool = False  # SB3 A2C default
    anneal_lr: bool = False  # SB3 A2C default (constant learning rate)
    hidden_sizes: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy
    activation: str = "tanh"  # SB3 MlpPolicy
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    shared_torso: bool = False  # SB3 MlpPolicy: separate policy and value networks
    policy_dist: str = "gaussian"
    normalize_obs: bool = False  # rl-baselines3-zoo turns this on for Acrobot-v1
    normalize_reward: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "optimizer_eps")
        cfg.non_negative(self, "ent_coef", "vf_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "gae_lambda", "rmsprop_decay")
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)
        cfg.one_of(self, "policy_dist", FAMILIES)


class State(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    model = ActorCritic(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                        config.activation, config.shared_torso, len(env.observation_space.shape),
                        encoder=config.encoder)
    choose_encoder(config.encoder, env.observation_space.shape)  # a one-line error, early
    batch = config.num_envs * config.num_steps
    num_iterations = max(1, total_steps // batch)
    lr = (config.learning_rate if not config.anneal_lr
          else lambda count: config.learning_rate * (1.0 - count / num_iterations))
    tx = make_optimizer(config.optimizer, lr, config.max_grad_norm, config.optimizer_eps,
                        config.rmsprop_decay)

    def init(key):
        params_key, env_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        params = model.init(params_key, ts.obs)
        return State(params, tx.init(params), env_state, ts.obs, state_key, jnp.int32(0))

    def policy(params, obs, key, deterministic=False):
        head = model.apply(params, obs, method=model.policy)
        return select_action(distribution(head), key, deterministic)

    def step(state: State):
        key, rollout_key = jax.random.split(state.key)
        params = state.params

        def act(obs, k):
            return policy(params, obs, k), ()

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        final_values = model.apply(params, traj.final_obs, method=model.value)
        rewards = bootstrap_truncated(traj.reward, traj.truncated, final_values, config.gamma)
        last_value = model.apply(params, obs, method=model.value)

        def loss_fn(params):
            head, values = model.apply(params, traj.obs)
            v_old = jax.lax.stop_gradient(values)
            if config.gae_lambda < 1.0:
                advantage, returns = gae(rewards, v_old, traj.done, last_value, config.gamma,
                                         config.gae_lambda)
            else:
                returns = discounted_returns(rewards, traj.done, last_value, config.gamma)
                advantage = returns - v_old
            if config.normalize_advantage:
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            dist = distribution(head)
            pg_loss = -jnp.mean(advantage * dist.log_prob(traj.action))
            v_loss = 0.5 * jnp.mean((returns - values) ** 2)
            entropy = dist.entropy().mean()
            loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
            return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy}

        grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, state.opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics.update(episode_metrics(traj.info))
        return State(params, opt_state, env_state, obs, key, state.iteration + 1), metrics

    return Agent(init, step, policy, batch)


ALGORITHM = Algorithm(
    name="a2c", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # rl-baselines3-zoo, a2c.yml, CartPole-v1
    hyperparameters=("learning_rate", "ent_coef", "vf_coef"),
)
