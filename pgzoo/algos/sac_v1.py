r"""Soft actor-critic, first version (Haarnoja et al. 2018a, "Soft actor-critic: off-policy maximum
entropy deep RL with a stochastic actor").

A soft state-value network V_\psi with a target copy V_{\bar\psi}, two soft Q networks Q_{w_1},
Q_{w_2} (no target copies), a reparameterised tanh-Gaussian policy and a *fixed* temperature
\alpha (the paper's reward scale is 1/\alpha). Every update samples a replay minibatch and, with
\tilde{a} ~ \pi_\theta(.|s) reparameterised:

    value      J_V(\psi) = E[ (V_\psi(s) - ( \min_i Q_{w_i}(s, \tilde{a}) - \alpha \log \pi_\theta(\tilde{a}|s) ))^2 / 2 ]
    soft Q     J_Q(w_i) = E[ (Q_{w_i}(s, a) - \hat{Q})^2 / 2 ],
               \hat{Q} = r + \gamma (1 - terminated) V_{\bar\psi}(s')           -> ``soft_value_target``
    policy     J_\pi(\theta) = E[ \alpha \log \pi_\theta(\tilde{a}|s) - \min_i Q_{w_i}(s, \tilde{a}) ]
    target     \bar\psi <- \tau \psi + (1 - \tau) \bar\psi                       -> ``soft_update``

The second version (``sac``) drops V for target Q networks and learns \alpha.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import (check_budget, make_agent, squashed_gaussian_policy,
                                      uniform_batch)
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.networks import ACTIVATIONS, QNetwork, SquashedGaussianActor, ValueNetwork
from pgzoo.core.optim import soft_update



@dataclass(frozen=True)
class Config:
    num_envs: int = 1
    buffer_size: int = 1_000_000  # Haarnoja et al. 2018a
    batch_size: int = 256  # Haarnoja et al. 2018a
    learning_starts: int = 100
    learning_rate: float = 3e-4  # Haarnoja et al. 2018a
    gamma: float = 0.99  # Haarnoja et al. 2018a
    tau: float = 0.005  # Haarnoja et al. 2018a
    alpha: float = 0.2  # reward scale 5 (Haarnoja et al. 2018a, most MuJoCo tasks) = alpha 0.2
    gradient_steps: int = 1  # Haarnoja et al. 2018a
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (256, 256)  # Haarnoja et al. 2018a
    activation: str = "relu"  # Haarnoja et al. 2018a
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate", "alpha",
                     "gradient_steps", "block_size")
        cfg.non_negative(self, "learning_starts")
        cfg.unit_interval(self, "gamma", "tau")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class Learner(NamedTuple):
    target_value: Any  # psi-bar
    opt_state: Any


def soft_value_target(reward, terminated, next_value, gamma):
    """Q-hat = r + gamma (1 - terminated) V_psibar(s')."""
    return reward + gamma * (1.0 - terminated) * next_value


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = SquashedGaussianActor(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    critic = QNetwork(0, config.hidden_sizes, config.activation, obs_ndim)
    value = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = optax.adam(config.learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)
    alpha = config.alpha

    def init_learner(key, obs, action):
        keys = jax.random.split(key, 4)
        params = {"actor": actor.init(keys[0], obs), "value": value.init(keys[1], obs),
                  "critic1": critic.init(keys[2], obs, action),
                  "critic2": critic.init(keys[3], obs, action)}
        return params, Learner(params["value"], {k: tx.init(v) for k, v in params.items()})

    policy, sample = squashed_gaussian_policy(actor)

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample_key, pi_key = jax.random.split(key)
        b = uniform_batch(buffer, buffer_state, sample_key, normalize)
        opt, params, stats = dict(learner.opt_state), dict(params), {}

        def min_q(theta):
            action, log_prob = sample(theta, b.obs, pi_key)
            return jnp.minimum(critic.apply(params["critic1"], b.obs, action),
                               critic.apply(params["critic2"], b.obs, action)), log_prob

        def step(name, loss_fn, has_aux=False):
            out, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params[name])
            updates, opt[name] = tx.update(grads, opt[name], params[name])
            params[name] = optax.apply_updates(params[name], updates)
            return out

        q_new, log_prob = min_q(params["actor"])
        v_target = jax.lax.stop_gradient(q_new - alpha * log_prob)
        stats["value_loss"] = step("value", lambda psi: 0.5 * jnp.mean(
            (value.apply(psi, b.obs) - v_target) ** 2))
        q_hat = soft_value_target(b.reward, b.terminated.astype(jnp.float32),
                                  value.apply(learner.target_value, b.next_obs), config.gamma)
        for name in ("critic1", "critic2"):
            stats[f"{name}_loss"] = step(name, lambda w: 0.5 * jnp.mean(
                (critic.apply(w, b.obs, b.action) - q_hat) ** 2))

        def actor_loss(theta):
            q, log_prob = min_q(theta)
            return jnp.mean(alpha * log_prob - q), log_prob

        stats["actor_loss"], log_prob = step("actor", actor_loss, has_aux=True)
        stats.update(entropy=-jnp.mean(log_prob), q_mean=jnp.mean(q_hat))
        learner = Learner(soft_update(learner.target_value, params["value"], config.tau), opt)
        return params, learner, buffer_state, stats

    return make_agent(env, config, buffer, init_learner, update, policy)


ALGORITHM = Algorithm(
    name="sac_v1", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=50_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("learning_rate", "tau", "alpha"),
)
