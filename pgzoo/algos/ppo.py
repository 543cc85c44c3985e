r"""Proximal Policy Optimisation (Schulman et al. 2017), with its common variants.

Each iteration collects T steps from N parallel environments with the current policy
\pi_{\theta_{old}}, then runs K epochs of minibatch gradient steps on

    L(\theta) = L^{POL}(\theta) - c_1 L^{VF}(\theta) + c_2 S[\pi_\theta]          (maximised)

    r_t(\theta)  = \pi_\theta(a_t|s_t) / \pi_{\theta_{old}}(a_t|s_t)                   -> ``ratio``
    L^{VF}       = E_t[ (V_\theta(s_t) - V_t^{targ})^2 ] / 2, optionally with the value clipped
                   to V_{old} +- \epsilon and the larger of the two errors taken    -> ``value_loss``
    S            = E_t[ entropy of \pi_\theta(.|s_t) ]

and the policy objective L^{POL} one of (``objective``):

    "clip"        L^{CLIP} = E_t[ min(r_t \hat{A}_t, clip(r_t, 1-\epsilon_{low}, 1+\epsilon_{high})
                  \hat{A}_t) ]                                            -> ``clipped_surrogate``
                  with \epsilon_{low} = \epsilon_{high} = \epsilon (PPO), or an asymmetric
                  \epsilon_{high} > \epsilon_{low} ("clip-higher" of DAPO, Yu et al. 2025);
    "kl_penalty"  L^{KLPEN} = E_t[ r_t \hat{A}_t - \beta KL[\pi_{\theta_{old}}(.|s_t), \pi_\theta(.|s_t)] ]
                  and after each iteration, with d = E_t[KL[\pi_{old}, \pi]]:
                  \beta <- \beta / 2 if d < d_{targ} / 1.5;  \beta <- 2 \beta if d > 1.5 d_{targ}
                                                                           -> ``adapt_kl_beta``

Advantages are GAE(\gamma, \lambda) (``pgzoo.core.returns.gae``), normalised per minibatch; the
value target is V_t^{targ} = \hat{A}_t + V_{old}(s_t). At a time-limit truncation the reward is
augmented by \gamma V(s_{final}) so the episode is bootstrapped, not cut. The learning rate is
annealed linearly to 0 over the run's iterations (\alpha_k = \alpha (1 - k / K), the same for
every minibatch step of iteration k), gradients are clipped to a global norm, and with
``target_kl`` the remaining epochs of an iteration are skipped once an epoch's mean approximate
KL, E[(r - 1) - log r], exceeds it. Continuous actions use a diagonal Gaussian with a
state-independent log-std, or a Beta policy on bounded boxes (Hsu et al. 2020, ``policy_dist``).
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
from pgzoo.core.objectives import clipped_surrogate, kl_penalty_surrogate, value_loss
from pgzoo.core.returns import gae
from pgzoo.core.rollout import episode_metrics, rollout

OBJECTIVES = ("clip", "kl_penalty")


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
    objective: str = "clip"  # Schulman et al. 2017 sec. 3 ("clip") or sec. 4 ("kl_penalty")
    clip_coef: float = 0.2  # epsilon (= epsilon_low), Schulman et al. 2017
    clip_coef_high: float | None = None  # DAPO's epsilon_high (0.28 there); None: = clip_coef
    kl_target: float = 0.01  # d_targ for "kl_penalty", Schulman et al. 2017 sec. 4
    kl_beta: float = 1.0  # initial beta for "kl_penalty", Schulman et al. 2017 sec. 4
    target_kl: float | None = None  # early stop of the epochs, CleanRL ppo.py (off by default)
    clip_vloss: bool = True  # CleanRL ppo.py
    ent_coef: float = 0.01  # c_2, CleanRL ppo.py
    vf_coef: float = 0.5  # c_1, CleanRL ppo.py
    max_grad_norm: float = 0.5  # CleanRL ppo.py
    adam_eps: float = 1e-5  # CleanRL ppo.py
    hidden_sizes: tuple[int, ...] = (64, 64)  # CleanRL ppo.py
    activation: str = "tanh"  # CleanRL ppo.py
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    shared_torso: bool = False  # CleanRL ppo.py keeps actor and critic separate
    policy_dist: str = "gaussian"  # continuous actions: "gaussian" or "beta" (Hsu et al. 2020)
    normalize_obs: bool = False  # CleanRL ppo_continuous_action.py turns this on
    normalize_reward: bool = False  # CleanRL ppo_continuous_action.py turns this on

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "num_minibatches",
                     "update_epochs", "clip_coef", "clip_coef_high", "kl_target", "kl_beta",
                     "target_kl", "max_grad_norm", "adam_eps")
        cfg.non_negative(self, "ent_coef", "vf_coef")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)
        cfg.one_of(self, "objective", OBJECTIVES)
        cfg.one_of(self, "policy_dist", FAMILIES)
        cfg.check_divides(self, "num_minibatches", self.num_envs * self.num_steps,
                          "num_envs * num_steps")


class State(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array
    kl_beta: jax.Array  # the adaptive penalty coefficient of "kl_penalty"


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    head: Any  # pi_old's distribution parameters, for KL[pi_old, pi]
    advantage: jax.Array
    target: jax.Array


def adapt_kl_beta(beta, kl, kl_target):
    """Halve beta when the KL is well under target, double it when well over."""
    beta = jnp.where(kl < kl_target / 1.5, beta / 2.0, beta)
    return jnp.where(kl > kl_target * 1.5, beta * 2.0, beta)


def make(config: Config, env, total_steps: int) -> Agent:
    model = ActorCritic(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                        config.activation, config.shared_torso, len(env.observation_space.shape),
                        encoder=config.encoder)
    choose_encoder(config.encoder, env.observation_space.shape)  # a one-line error, early
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches
    num_iterations = max(1, total_steps // batch_size)

    def learning_rate(iteration):
        """Annealed by iteration, not by optimiser updates: epochs skipped by ``target_kl``
        do not stall the schedule."""
        if not config.anneal_lr:
            return jnp.float32(config.learning_rate)
        return config.learning_rate * (1.0 - iteration / num_iterations)

    # Adam's direction; the step is scaled by this iteration's learning rate in ``apply``.
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.scale_by_adam(eps=config.adam_eps))

    def apply(params, updates, lr):
        return jax.tree.map(lambda p, u: p - lr * u, params, updates)

    def init(key):
        params_key, env_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        params = model.init(params_key, ts.obs)
        return State(params, tx.init(params), env_state, ts.obs, state_key, jnp.int32(0),
                     jnp.float32(config.kl_beta))

    def policy(params, obs, key, deterministic=False):
        head = model.apply(params, obs, method=model.policy)
        return select_action(distribution(head), key, deterministic)

    def loss_fn(params, mb: Batch, kl_beta):
        head, value = model.apply(params, mb.obs)
        dist = distribution(head)
        log_prob = dist.log_prob(mb.action)
        log_ratio = log_prob - mb.log_prob
        ratio = jnp.exp(log_ratio)
        adv = mb.advantage
        if config.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        stats = {}
        if config.objective == "clip":
            pg_loss = -clipped_surrogate(ratio, adv, config.clip_coef, config.clip_coef_high)
        else:
            kl = distribution(mb.head).kl_divergence(dist)
            pg_loss = -kl_penalty_surrogate(ratio, adv, kl, kl_beta)
            stats["kl"] = kl.mean()
        v_loss = value_loss(value, mb.value, mb.target, config.clip_coef, config.clip_vloss)
        entropy = dist.entropy().mean()
        loss = pg_loss - config.ent_coef * entropy + config.vf_coef * v_loss
        high = config.clip_coef if config.clip_coef_high is None else config.clip_coef_high
        stats.update(policy_loss=pg_loss, value_loss=v_loss, entropy=entropy,
                     approx_kl=((ratio - 1.0) - log_ratio).mean(),
                     clip_fraction=((ratio < 1.0 - config.clip_coef) | (ratio > 1.0 + high)).mean())
        return loss, stats

    def update_epoch(carry, key):
        params, opt_state, batch, kl_beta, stopped, lr = carry

        def update_minibatch(carry, mb):
            params, opt_state = carry
            grads, stats = jax.grad(loss_fn, has_aux=True)(params, mb, kl_beta)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (apply(params, updates, lr), opt_state), stats

        def run(params, opt_state):
            perm = jax.random.permutation(key, batch_size)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((config.num_minibatches, minibatch_size) + x.shape[1:]),
                batch)
            (params, opt_state), stats = jax.lax.scan(update_minibatch, (params, opt_state),
                                                      shuffled)
            return params, opt_state, jax.tree.map(jnp.mean, stats)

        if config.target_kl is None:
            params, opt_state, stats = run(params, opt_state)
        else:  # skip the epoch once an earlier one went past target_kl
            stats_shape = jax.eval_shape(run, params, opt_state)[2]
            skip = lambda p, o: (p, o, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan),  # noqa: E731
                                                    stats_shape))
            params, opt_state, stats = jax.lax.cond(stopped, skip, run, params, opt_state)
            stopped = stopped | (stats["approx_kl"] > config.target_kl)
        return (params, opt_state, batch, kl_beta, stopped, lr), stats

    def step(state: State):
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        params = state.params

        def act(obs, k):
            head, value = model.apply(params, obs)
            dist = distribution(head)
            action = dist.sample(seed=k)
            return action, (dist.log_prob(action), value, head)

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        log_prob, value, head = traj.extras
        final_value = model.apply(params, traj.final_obs, method=model.value)
        rewards = traj.reward + config.gamma * traj.truncated * final_value
        last_value = model.apply(params, obs, method=model.value)
        advantage, target = gae(rewards, value, traj.done, last_value, config.gamma,
                                config.gae_lambda)
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]),
                            Batch(traj.obs, traj.action, log_prob, value, head, advantage, target))
        lr = learning_rate(state.iteration)
        carry = (params, state.opt_state, flat, state.kl_beta, jnp.bool_(False), lr)
        (params, opt_state, _, _, stopped, _), stats = jax.lax.scan(
            update_epoch, carry, jax.random.split(update_key, config.update_epochs))
        metrics = {k: jnp.nanmean(v) for k, v in stats.items()}
        metrics["epochs"] = jnp.sum(~jnp.isnan(stats["policy_loss"])).astype(jnp.float32)
        kl_beta = state.kl_beta
        if config.objective == "kl_penalty":
            new_head = model.apply(params, flat.obs, method=model.policy)
            kl = distribution(flat.head).kl_divergence(distribution(new_head)).mean()
            kl_beta = adapt_kl_beta(kl_beta, kl, config.kl_target)
            metrics["kl_after_update"], metrics["kl_beta"] = kl, kl_beta
        metrics["learning_rate"] = jnp.asarray(lr, jnp.float32)
        metrics.update(episode_metrics(traj.info))
        new_state = State(params, opt_state, env_state, obs, key, state.iteration + 1, kl_beta)
        return new_state, metrics

    return Agent(init, step, policy, batch_size)


ALGORITHM = Algorithm(
    name="ppo", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # CleanRL ppo.py on CartPole-v1
    hyperparameters=("learning_rate", "gae_lambda", "clip_coef", "ent_coef", "vf_coef",
                     "max_grad_norm"),
)
