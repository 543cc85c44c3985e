r"""Phasic Policy Gradient (Cobbe et al. 2020).

Separate networks: a policy network \pi_\theta with an auxiliary value head V^{aux}_\theta on its
torso, and a value network V_\phi. Training alternates two phases.

Policy phase, for each of N_\pi iterations: collect T steps from N environments, compute GAE
advantages \hat{A}_t and value targets \hat{V}^{targ}_t = \hat{A}_t + V_\phi(s_t), then

    E_\pi epochs on  L^{clip}(\theta) + c_e S[\pi_\theta]   (PPO's clipped surrogate, maximised)
    E_V   epochs on  L^{value}(\phi) = E_t[ (V_\phi(s_t) - \hat{V}^{targ}_t)^2 ] / 2

and keep every (s_t, \hat{V}^{targ}_t) in a buffer B.

Auxiliary phase: \pi_{old} <- \pi_\theta on all s in B; then E_aux epochs over B on

    L^{joint}(\theta) = L^{aux} + \beta_{clone} E_t[ KL[\pi_{old}(.|s_t), \pi_\theta(.|s_t)] ],
    L^{aux} = E_t[ (V^{aux}_\theta(s_t) - \hat{V}^{targ}_t)^2 ] / 2              -> ``joint_loss``

together with more L^{value}(\phi) steps. The auxiliary phase distils value information into the
policy's torso while the cloning term keeps the policy where it was.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (FAMILIES, distribution, policy_head,
                                      select_action)
from pgzoo.core.networks import ACTIVATIONS, Torso, ValueHead, ValueNetwork
from pgzoo.core.objectives import clipped_surrogate
from pgzoo.core.returns import bootstrap_truncated, gae
from pgzoo.core.rollout import episode_metrics, rollout



@dataclass(frozen=True)
class Config:
    num_envs: int = 4  # as pgzoo's PPO, for side-by-side comparisons
    num_steps: int = 128  # as pgzoo's PPO
    n_pi: int = 32  # N_pi, policy iterations per phase, Cobbe et al. 2020
    e_pi: int = 1  # E_pi, policy epochs, Cobbe et al. 2020
    e_v: int = 1  # E_V, value epochs, Cobbe et al. 2020
    e_aux: int = 6  # E_aux, auxiliary epochs, Cobbe et al. 2020
    beta_clone: float = 1.0  # Cobbe et al. 2020
    num_minibatches: int = 4  # per policy-phase epoch, as pgzoo's PPO
    aux_num_minibatches: int = 16  # per auxiliary epoch over the whole buffer
    learning_rate: float = 5e-4  # Cobbe et al. 2020 (Adam)
    gamma: float = 0.99
    gae_lambda: float = 0.95  # Cobbe et al. 2020
    clip_coef: float = 0.2  # Cobbe et al. 2020
    ent_coef: float = 0.01  # Cobbe et al. 2020
    max_grad_norm: float = 0.5
    hidden_sizes: tuple[int, ...] = (64, 64)  # as pgzoo's PPO
    activation: str = "tanh"
    policy_dist: str = "gaussian"
    normalize_obs: bool = False
    normalize_reward: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "n_pi", "e_pi", "e_v", "e_aux",
                     "num_minibatches", "aux_num_minibatches", "learning_rate", "clip_coef",
                     "max_grad_norm")
        cfg.non_negative(self, "beta_clone", "ent_coef")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)
        batch = self.num_envs * self.num_steps
        cfg.check_divides(self, "num_minibatches", batch, "num_envs * num_steps")
        cfg.check_divides(self, "aux_num_minibatches", batch * self.n_pi,
                          "num_envs * num_steps * n_pi")


class PolicyWithAuxValue(nn.Module):
    """pi_theta and the auxiliary value head V^aux_theta, on one torso."""

    head: nn.Module
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        return self.head(x), ValueHead(name="aux_value")(x)


class State(NamedTuple):
    params: Any  # {"policy": theta (with the aux head), "value": phi}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def joint_loss(aux_value, target, old_dist, new_dist, beta_clone):
    """L^aux + beta_clone KL[pi_old, pi]."""
    aux = 0.5 * jnp.mean((aux_value - target) ** 2)
    kl = jnp.mean(old_dist.kl_divergence(new_dist))
    return aux + beta_clone * kl, (aux, kl)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyWithAuxValue(policy_head(env.action_space, config.policy_dist),
                            config.hidden_sizes, config.activation, obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)

    def optimizer():
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                           optax.adam(config.learning_rate, eps=1e-5))

    tx = {"policy": optimizer(), "value": optimizer()}
    batch = config.num_envs * config.num_steps

    def init(key):
        pi_key, vf_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "value": vf.init(vf_key, ts.obs)}
        return State(params, {k: tx[k].init(params[k]) for k in tx}, env_state, ts.obs,
                     state_key)

    def policy(params, obs, key, deterministic=False):
        head = pi.apply(params["policy"], obs)[0]
        return select_action(distribution(head), key, deterministic)

    def sgd(name, loss_fn, params, opt_state, data, key, epochs, num_minibatches):
        """``epochs`` passes of minibatch Adam steps on ``loss_fn(params, minibatch)``."""
        size = jax.tree.leaves(data)[0].shape[0]

        def minibatch(carry, mb):
            params, opt_state = carry
            (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
            updates, opt_state = tx[name].update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), stats

        def epoch(carry, k):
            perm = jax.random.permutation(k, size)
            mbs = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]),
                               data)
            return jax.lax.scan(minibatch, carry, mbs)

        (params, opt_state), stats = jax.lax.scan(epoch, (params, opt_state),
                                                  jax.random.split(key, epochs))
        return params, opt_state, jax.tree.map(jnp.mean, stats)

    def policy_loss(theta, mb):
        obs, action, old_log_prob, advantage = mb
        dist = distribution(pi.apply(theta, obs)[0])
        ratio = jnp.exp(dist.log_prob(action) - old_log_prob)
        adv = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        entropy = dist.entropy().mean()
        surrogate = clipped_surrogate(ratio, adv, config.clip_coef)
        return -(surrogate + config.ent_coef * entropy), {"policy_loss": -surrogate,
                                                          "entropy": entropy}

    def value_loss(phi, mb):
        obs, target = mb
        loss = 0.5 * jnp.mean((vf.apply(phi, obs) - target) ** 2)
        return loss, {"value_loss": loss}

    def auxiliary_phase(params, opt_state, obs, targets, key):
        old_heads = pi.apply(params["policy"], obs)[0]

        def aux_loss(theta, mb):
            obs, target, old_head = mb
            head, aux_value = pi.apply(theta, obs)
            loss, (aux, kl) = joint_loss(aux_value, target, distribution(old_head),
                                         distribution(head), config.beta_clone)
            return loss, {"aux_value_loss": aux, "aux_kl": kl}

        pi_key, vf_key = jax.random.split(key)
        theta, pi_opt, stats = sgd("policy", aux_loss, params["policy"], opt_state["policy"],
                                   (obs, targets, old_heads), pi_key, config.e_aux,
                                   config.aux_num_minibatches)
        phi, vf_opt, _ = sgd("value", value_loss, params["value"], opt_state["value"],
                             (obs, targets), vf_key, config.e_aux, config.aux_num_minibatches)
        return {"policy": theta, "value": phi}, {"policy": pi_opt, "value": vf_opt}, stats

    def policy_iteration(carry, key):
        """One iteration of the policy phase; returns the data the auxiliary phase keeps."""
        params, opt_state, env_state, obs = carry
        rollout_key, pi_key, vf_key = jax.random.split(key, 3)

        def act(obs, k):
            dist = distribution(pi.apply(params["policy"], obs)[0])
            action = dist.sample(seed=k)
            return action, dist.log_prob(action)

        env_state, obs, traj = rollout(env, env_state, obs, rollout_key, act, config.num_steps)
        values = vf.apply(params["value"], traj.obs)
        rewards = bootstrap_truncated(traj.reward, traj.truncated,
                                      vf.apply(params["value"], traj.final_obs), config.gamma)
        advantage, targets = gae(rewards, values, traj.done, vf.apply(params["value"], obs),
                                 config.gamma, config.gae_lambda)
        b_obs, b_action, b_log_prob, b_adv, b_targets = jax.tree.map(
            lambda x: x.reshape((batch,) + x.shape[2:]),
            (traj.obs, traj.action, traj.extras, advantage, targets))
        theta, pi_opt, pi_stats = sgd("policy", policy_loss, params["policy"],
                                      opt_state["policy"], (b_obs, b_action, b_log_prob, b_adv),
                                      pi_key, config.e_pi, config.num_minibatches)
        phi, vf_opt, vf_stats = sgd("value", value_loss, params["value"], opt_state["value"],
                                    (b_obs, b_targets), vf_key, config.e_v, config.num_minibatches)
        carry = ({"policy": theta, "value": phi}, {"policy": pi_opt, "value": vf_opt}, env_state,
                 obs)
        return carry, ((b_obs, b_targets), {**pi_stats, **vf_stats, **episode_metrics(traj.info)})

    def step(state: State):
        """One phase: N_pi policy iterations, then the auxiliary phase on all their data."""
        key, phase_key, aux_key = jax.random.split(state.key, 3)
        carry = (state.params, state.opt_state, state.env_state, state.obs)
        (params, opt_state, env_state, obs), ((buf_obs, buf_targets), stats) = jax.lax.scan(
            policy_iteration, carry, jax.random.split(phase_key, config.n_pi))
        params, opt_state, aux_stats = auxiliary_phase(
            params, opt_state, buf_obs.reshape((-1,) + buf_obs.shape[2:]), buf_targets.reshape(-1),
            aux_key)
        sums = ("episodes", "episode_return_sum", "episode_length_sum")
        metrics = {k: (v.sum() if k in sums else v.mean()) for k, v in stats.items()}
        metrics.update(aux_stats)
        return State(params, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, batch * config.n_pi)


ALGORITHM = Algorithm(
    name="ppg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("learning_rate", "beta_clone", "gae_lambda", "clip_coef", "ent_coef"),
)
