r"""TD3: twin delayed deep deterministic policy gradient (Fujimoto et al. 2018).

A deterministic actor \mu_\theta and two critics Q_{w_1}, Q_{w_2}, each with a target copy, learn
off-policy from a replay buffer filled by \mu_\theta(s) + N(0, \sigma) (uniform random actions
during the first ``learning_starts`` steps). Every update samples a minibatch and:

    target policy smoothing   \tilde{a} = clip(\mu_{\theta'}(s') + clip(N(0, \tilde\sigma), -c, c), -1, 1)
    clipped double-Q target   y = r + \gamma (1 - terminated) \min_{i=1,2} Q_{w_i'}(s', \tilde{a})
                                                                             -> ``td3_target``
    critics                   w_i <- argmin E[(Q_{w_i}(s, a) - y)^2]
    every d updates (delayed):
      actor (deterministic policy gradient)  \nabla_\theta E[Q_{w_1}(s, \mu_\theta(s))]
      targets                 \theta' <- \tau \theta + (1 - \tau) \theta',  w_i' <- \tau w_i + (1 - \tau) w_i'
                                                                             -> ``soft_update``

At a time-limit truncation s' is the true final observation and the target bootstraps. One State
step is a block of ``block_size`` environment steps, each followed by ``gradient_steps`` updates.
Actions live in [-1, 1]^d and are rescaled to the environment's box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

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



@dataclass(frozen=True)
class Config:
    num_envs: int = 1  # SB3 TD3
    buffer_size: int = 1_000_000  # SB3 TD3
    batch_size: int = 256  # SB3 TD3
    learning_starts: int = 100  # SB3 TD3 (random actions before this many steps)
    learning_rate: float = 1e-3  # SB3 TD3
    gamma: float = 0.99  # SB3 TD3
    tau: float = 0.005  # SB3 TD3
    policy_delay: int = 2  # d, Fujimoto et al. 2018
    exploration_noise: float = 0.1  # sigma, Fujimoto et al. 2018
    target_policy_noise: float = 0.2  # sigma~, Fujimoto et al. 2018
    target_noise_clip: float = 0.5  # c, Fujimoto et al. 2018
    gradient_steps: int = 1  # updates per environment step (update-to-data ratio), SB3 TD3
    block_size: int = 50  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (400, 300)  # SB3 TD3 / Fujimoto et al. 2018
    activation: str = "relu"  # Fujimoto et al. 2018
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate",
                     "policy_delay", "gradient_steps", "block_size")
        cfg.non_negative(self, "learning_starts", "exploration_noise", "target_policy_noise",
                         "target_noise_clip")
        cfg.unit_interval(self, "gamma", "tau")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


def td3_target(reward, terminated, next_q1, next_q2, gamma):
    """y = r + gamma (1 - terminated) min(Q1', Q2')."""
    return reward + gamma * (1.0 - terminated) * jnp.minimum(next_q1, next_q2)


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any
    updates: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = DeterministicActor(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    critic = QNetwork(0, config.hidden_sizes, config.activation, obs_ndim)
    tx = optax.adam(config.learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)

    def init_learner(key, obs, action):
        keys = jax.random.split(key, 3)
        params = {"actor": actor.init(keys[0], obs),
                  "critic1": critic.init(keys[1], obs, action),
                  "critic2": critic.init(keys[2], obs, action)}
        return params, Learner(params, {k: tx.init(v) for k, v in params.items()}, jnp.int32(0))

    policy = noisy_deterministic_policy(actor, config.exploration_noise)

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample_key, noise_key = jax.random.split(key)
        b = uniform_batch(buffer, buffer_state, sample_key, normalize)
        target_params, opt_state = learner.target_params, learner.opt_state
        noise = jnp.clip(config.target_policy_noise * jax.random.normal(noise_key, b.action.shape),
                         -config.target_noise_clip, config.target_noise_clip)
        next_action = jnp.clip(actor.apply(target_params["actor"], b.next_obs) + noise, -1.0, 1.0)
        y = td3_target(b.reward, b.terminated.astype(jnp.float32),
                       critic.apply(target_params["critic1"], b.next_obs, next_action),
                       critic.apply(target_params["critic2"], b.next_obs, next_action),
                       config.gamma)

        def critic_loss(w):
            return jnp.mean((critic.apply(w, b.obs, b.action) - y) ** 2)

        new_params, new_opt, stats = dict(params), dict(opt_state), {}
        for name in ("critic1", "critic2"):
            loss, grads = jax.value_and_grad(critic_loss)(params[name])
            upd, new_opt[name] = tx.update(grads, opt_state[name], params[name])
            new_params[name] = optax.apply_updates(params[name], upd)
            stats[f"{name}_loss"] = loss

        def actor_loss(theta):
            return -jnp.mean(critic.apply(new_params["critic1"], b.obs, actor.apply(theta, b.obs)))

        def delayed(args):
            new_params, new_opt, target_params = args
            loss, grads = jax.value_and_grad(actor_loss)(new_params["actor"])
            upd, opt = tx.update(grads, new_opt["actor"], new_params["actor"])
            new_params = dict(new_params, actor=optax.apply_updates(new_params["actor"], upd))
            return (new_params, dict(new_opt, actor=opt),
                    soft_update(target_params, new_params, config.tau), loss)

        def skip(args):
            return (*args, jnp.float32(jnp.nan))

        new_params, new_opt, target_params, a_loss = jax.lax.cond(
            (learner.updates + 1) % config.policy_delay == 0, delayed, skip,
            (new_params, new_opt, target_params))
        stats.update(actor_loss=a_loss, q_mean=jnp.mean(y))
        return (new_params, Learner(target_params, new_opt, learner.updates + 1), buffer_state,
                stats)

    return make_agent(env, config, buffer, init_learner, update, policy)


ALGORITHM = Algorithm(
    name="td3", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=20_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("learning_rate", "tau", "exploration_noise", "target_policy_noise",
                     "target_noise_clip"),
)
