r"""Proximal Policy Optimisation, clipped-surrogate version (Schulman et al. 2017).

Each iteration collects T steps from N parallel environments with the current policy
\pi_{\theta_{old}}, then runs K epochs of minibatch gradient steps on

    L(\theta) = L^{CLIP}(\theta) - c_1 L^{VF}(\theta) + c_2 S[\pi_\theta]          (maximised)

    r_t(\theta)  = \pi_\theta(a_t|s_t) / \pi_{\theta_{old}}(a_t|s_t)                   -> ``ratio``
    L^{CLIP}     = E_t[ min(r_t \hat{A}_t, clip(r_t, 1-\epsilon, 1+\epsilon) \hat{A}_t) ]
                                                                        -> ``clipped_surrogate``
    L^{VF}       = E_t[ (V_\theta(s_t) - V_t^{targ})^2 ] / 2, optionally with the value clipped
                   to V_{old} +- \epsilon and the larger of the two errors taken    -> ``value_loss``
    S            = E_t[ entropy of \pi_\theta(.|s_t) ]

Advantages are GAE(\gamma, \lambda) (``pgzoo.core.returns.gae``), normalised per minibatch; the
value target is V_t^{targ} = \hat{A}_t + V_{old}(s_t). At a time-limit truncation the reward is
augmented by \gamma V(s_{final}) so the episode is bootstrapped, not cut. The learning rate is
annealed linearly to 0 over the run and gradients are clipped to a global norm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent
from pgzoo.core import config as cfg
from pgzoo.core.distributions import distribution, policy_head
from pgzoo.core.networks import ACTIVATIONS, ActorCritic
from pgzoo.core.returns import gae
from pgzoo.core.rollout import episode_metrics, rollout

ACTION_SPACES = ("discrete", "continuous")
DEFAULT_TOTAL_STEPS = 500_000  # CleanRL ppo.py on CartPole-v1


@dataclass(frozen=True)
class Config:
    num_envs: int = 4  # N, CleanRL ppo.py
    num_steps: int = 128  # T per environment per rollout, CleanRL ppo.py
    learning_rate: float = 2.5e-4  # CleanRL ppo.py
    anneal_lr: bool = True  # CleanRL ppo.py
    gamma: float = 0.99  # CleanRL ppo.py
    gae_lambda: float = 0.95  # CleanRL ppo.py
    num_minibatches: int = 4  # CleanRL ppo.py
    update_epochs: int = 4  # K, CleanRL ppo.py
    norm_adv: bool = True  # CleanRL ppo.py
    clip_coef: float = 0.2  # epsilon, Schulman et al. 2017
    clip_vloss: bool = True  # CleanRL ppo.py
    ent_coef: float = 0.01  # c_2, CleanRL ppo.py
    vf_coef: float = 0.5  # c_1, CleanRL ppo.py
    max_grad_norm: float = 0.5  # CleanRL ppo.py
    adam_eps: float = 1e-5  # CleanRL ppo.py
    hidden_sizes: tuple[int, ...] = (64, 64)  # CleanRL ppo.py
    activation: str = "tanh"  # CleanRL ppo.py
    shared_torso: bool = False  # CleanRL ppo.py keeps actor and critic separate
    normalize_obs: bool = False  # CleanRL ppo_continuous_action.py turns this on
    normalize_reward: bool = False  # CleanRL ppo_continuous_action.py turns this on

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "num_minibatches",
                     "update_epochs", "clip_coef", "max_grad_norm", "adam_eps")
        cfg.non_negative(self, "ent_coef", "vf_coef")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.check_divides(self, "num_minibatches", self.num_envs * self.num_steps,
                          "num_envs * num_steps")


class State(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


def clipped_surrogate(ratio, advantage, clip_coef):
    """E[min(r A, clip(r, 1 - eps, 1 + eps) A)], to be maximised."""
    return jnp.minimum(ratio * advantage,
                       jnp.clip(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantage).mean()


def value_loss(value, old_value, target, clip_coef, clip):
    unclipped = (value - target) ** 2
    if not clip:
        return 0.5 * unclipped.mean()
    clipped = (old_value + jnp.clip(value - old_value, -clip_coef, clip_coef) - target) ** 2
    return 0.5 * jnp.maximum(unclipped, clipped).mean()


def make(config: Config, env, total_steps: int) -> Agent:
    space = env.action_space
    model = ActorCritic(policy_head(space), config.hidden_sizes, config.activation,
                        config.shared_torso, len(env.observation_space.shape))
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches
    updates_per_iteration = config.update_epochs * config.num_minibatches
    num_iterations = max(1, total_steps // batch_size)

    def learning_rate(count):
        if not config.anneal_lr:
            return config.learning_rate
        return config.learning_rate * (1.0 - (count // updates_per_iteration) / num_iterations)

    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.adam(learning_rate, eps=config.adam_eps))

    def init(key):
        params_key, env_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        params = model.init(params_key, ts.obs)
        return State(params, tx.init(params), env_state, ts.obs, state_key, jnp.int32(0))

    def policy(params, obs, key, deterministic=False):
        dist = distribution(space, model.apply(params, obs, method=model.policy))
        return dist.mode() if deterministic else dist.sample(seed=key)

    def loss_fn(params, mb: Batch):
        head, value = model.apply(params, mb.obs)
        dist = distribution(space, head)
        log_prob = dist.log_prob(mb.action)
        log_ratio = log_prob - mb.log_prob
        ratio = jnp.exp(log_ratio)
        adv = mb.advantage
        if config.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -clipped_surrogate(ratio, adv, config.clip_coef)
        v_loss = value_loss(value, mb.value, mb.target, config.clip_coef, config.clip_vloss)
        entropy = dist.entropy().mean()
        loss = pg_loss - config.ent_coef * entropy + config.vf_coef * v_loss
        stats = {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy,
                 "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
                 "clip_fraction": (jnp.abs(ratio - 1.0) > config.clip_coef).mean()}
        return loss, stats

    def update_minibatch(carry, mb):
        params, opt_state = carry
        grads, stats = jax.grad(loss_fn, has_aux=True)(params, mb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), stats

    def update_epoch(carry, key):
        perm = jax.random.permutation(key, batch_size)
        shuffled = jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, minibatch_size)
                                                          + x.shape[1:]), carry[2])
        (params, opt_state), stats = jax.lax.scan(update_minibatch, carry[:2], shuffled)
        return (params, opt_state, carry[2]), stats

    def step(state: State):
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        params = state.params

        def act(obs, k):
            head, value = model.apply(params, obs)
            dist = distribution(space, head)
            action = dist.sample(seed=k)
            return action, (dist.log_prob(action), value)

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        log_prob, value = traj.extras
        final_value = model.apply(params, traj.final_obs, method=model.value)
        rewards = traj.reward + config.gamma * traj.truncated * final_value
        last_value = model.apply(params, obs, method=model.value)
        advantage, target = gae(rewards, value, traj.done, last_value, config.gamma,
                                config.gae_lambda)
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]),
                            Batch(traj.obs, traj.action, log_prob, value, advantage, target))
        (params, opt_state, _), stats = jax.lax.scan(
            update_epoch, (params, state.opt_state, flat),
            jax.random.split(update_key, config.update_epochs))
        metrics = {k: v.mean() for k, v in stats.items()}
        metrics["learning_rate"] = jnp.asarray(
            learning_rate(state.iteration * updates_per_iteration), jnp.float32)
        metrics.update(episode_metrics(traj.info))
        new_state = State(params, opt_state, env_state, obs, key, state.iteration + 1)
        return new_state, metrics

    return Agent(init, step, policy, batch_size)
