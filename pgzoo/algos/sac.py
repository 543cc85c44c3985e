r"""Soft actor-critic, second version (Haarnoja et al. 2018b, "SAC: algorithms and applications").

Maximum-entropy RL: maximise E[\sum_t r_t + \alpha H(\pi(.|s_t))]. A tanh-Gaussian policy
a = tanh(u), u ~ N(\mu_\theta(s), \sigma_\theta(s)^2), two soft Q networks Q_{w_1}, Q_{w_2} with
target copies, no state-value network, and a learned temperature \alpha. Every update samples a
replay minibatch and, with a' ~ \pi_\theta(.|s') and \tilde{a} ~ \pi_\theta(.|s) reparameterised:

    soft target    y = r + \gamma (1 - terminated) ( \min_i Q_{w_i'}(s', a') - \alpha \log \pi_\theta(a'|s') )
                                                                             -> ``soft_q_target``
    critics        J_Q(w_i) = E[ (Q_{w_i}(s, a) - y)^2 / 2 ]
    policy         J_\pi(\theta) = E[ \alpha \log \pi_\theta(\tilde{a}|s) - \min_i Q_{w_i}(s, \tilde{a}) ]
    temperature    J(\alpha) = E[ -\alpha \log \pi_\theta(\tilde{a}|s) - \alpha H_0 ],   H_0 = -dim(A)
                   (optimised in \log \alpha)
    targets        w_i' <- \tau w_i + (1 - \tau) w_i'                             -> ``soft_update``

With ``autotune=False`` the temperature stays at ``init_alpha``. Replay, burn-in and the
update-to-data ratio are those of ``pgzoo.algos.loops.replay``. The deterministic policy used for
evaluation is tanh(\mu_\theta(s)).
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
from pgzoo.core.networks import ACTIVATIONS, QNetwork, SquashedGaussianActor
from pgzoo.core.optim import soft_update



@dataclass(frozen=True)
class Config:
    num_envs: int = 1  # SB3 SAC
    buffer_size: int = 1_000_000  # SB3 SAC
    batch_size: int = 256  # SB3 SAC
    learning_starts: int = 100  # SB3 SAC
    learning_rate: float = 3e-4  # SB3 SAC; Haarnoja et al. 2018b
    gamma: float = 0.99  # SB3 SAC
    tau: float = 0.005  # SB3 SAC
    autotune: bool = True  # SB3 SAC ent_coef="auto"
    init_alpha: float = 1.0  # SB3 SAC ("auto" starts at 1.0)
    target_entropy_scale: float = 1.0  # H_0 = -scale * dim(A); Haarnoja et al. 2018b: 1
    gradient_steps: int = 1  # SB3 SAC
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (256, 256)  # SB3 SAC
    activation: str = "relu"  # SB3 SAC
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate", "init_alpha",
                     "gradient_steps", "block_size")
        cfg.non_negative(self, "learning_starts", "target_entropy_scale")
        cfg.unit_interval(self, "gamma", "tau")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class Learner(NamedTuple):
    target_params: Any  # {"critic1", "critic2"}
    opt_state: Any
    log_alpha: jax.Array


def soft_q_target(reward, terminated, next_q1, next_q2, next_log_prob, alpha, gamma):
    """y = r + gamma (1 - terminated) (min(Q1', Q2') - alpha log pi(a'|s'))."""
    return reward + gamma * (1.0 - terminated) * (jnp.minimum(next_q1, next_q2)
                                                  - alpha * next_log_prob)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = SquashedGaussianActor(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    critic = QNetwork(0, config.hidden_sizes, config.activation, obs_ndim)
    tx = optax.adam(config.learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)
    target_entropy = -config.target_entropy_scale * action_dim

    def init_learner(key, obs, action):
        keys = jax.random.split(key, 3)
        params = {"actor": actor.init(keys[0], obs),
                  "critic1": critic.init(keys[1], obs, action),
                  "critic2": critic.init(keys[2], obs, action)}
        log_alpha = jnp.log(jnp.float32(config.init_alpha))
        opt_state = {**{k: tx.init(v) for k, v in params.items()}, "alpha": tx.init(log_alpha)}
        targets = {"critic1": params["critic1"], "critic2": params["critic2"]}
        return params, Learner(targets, opt_state, log_alpha)

    policy, sample = squashed_gaussian_policy(actor)

    def apply_grads(params, opt_state, grads):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample_key, next_key, pi_key = jax.random.split(key, 3)
        b = uniform_batch(buffer, buffer_state, sample_key, normalize)
        alpha = jnp.exp(learner.log_alpha)
        targets, opt = learner.target_params, dict(learner.opt_state)
        next_action, next_log_prob = sample(params["actor"], b.next_obs, next_key)
        y = soft_q_target(b.reward, b.terminated.astype(jnp.float32),
                          critic.apply(targets["critic1"], b.next_obs, next_action),
                          critic.apply(targets["critic2"], b.next_obs, next_action),
                          next_log_prob, alpha, config.gamma)

        def critic_loss(w):
            return 0.5 * jnp.mean((critic.apply(w, b.obs, b.action) - y) ** 2)

        params, stats = dict(params), {}
        for name in ("critic1", "critic2"):
            stats[f"{name}_loss"], grads = jax.value_and_grad(critic_loss)(params[name])
            params[name], opt[name] = apply_grads(params[name], opt[name], grads)

        def actor_loss(theta):
            action, log_prob = sample(theta, b.obs, pi_key)
            q = jnp.minimum(critic.apply(params["critic1"], b.obs, action),
                            critic.apply(params["critic2"], b.obs, action))
            return jnp.mean(alpha * log_prob - q), log_prob

        (stats["actor_loss"], log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params["actor"])
        params["actor"], opt["actor"] = apply_grads(params["actor"], opt["actor"], grads)

        log_alpha = learner.log_alpha
        if config.autotune:
            def alpha_loss(log_alpha):
                return -jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(log_prob
                                                                             + target_entropy))

            grads = jax.grad(alpha_loss)(log_alpha)
            log_alpha, opt["alpha"] = apply_grads(log_alpha, opt["alpha"], grads)

        targets = soft_update(targets, {"critic1": params["critic1"],
                                        "critic2": params["critic2"]}, config.tau)
        stats.update(alpha=jnp.exp(log_alpha), entropy=-jnp.mean(log_prob), q_mean=jnp.mean(y))
        return params, Learner(targets, opt, log_alpha), buffer_state, stats

    return make_agent(env, config, buffer, init_learner, update, policy)


ALGORITHM = Algorithm(
    name="sac", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=20_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("learning_rate", "tau", "target_entropy_scale"),
)
