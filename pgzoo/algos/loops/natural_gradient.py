r"""The batch on-policy loop that the natural-gradient methods share (NPG, TRPO).

Each iteration collects T steps from N environments with \pi_{\theta_k}, estimates advantages
\hat{A}_t with GAE(\gamma, \lambda) (time-limit truncations bootstrapped with V_\phi; normalised
over the batch when ``normalize_advantage``), and hands the batch of N T steps to the
algorithm's policy step:

    policy_step(pi, theta_k, batch) -> (theta_{k+1}, stats)

``batch`` is a ``Batch``: observations, actions, and \ln \pi_{\theta_k}(a_t|s_t) and the
distribution parameters of \pi_{\theta_k}(.|s_t) for the surrogate and the mean KL; ``pi`` is
the policy network (``pi.apply(theta, obs)`` gives distribution parameters). Then the value
function V_\phi is fitted by regression on the GAE value targets \hat{A}_t + V_{\phi_k}(s_t)
(``value_epochs`` epochs of Adam minibatch steps)                              -> ``fit_value``.
"""
from __future__ import annotations

from collections.abc import Callable
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
from pgzoo.core.returns import bootstrap_truncated, gae
from pgzoo.core.rollout import episode_metrics, rollout


@dataclass(frozen=True)
class Config:
    """The settings every natural-gradient method has; an algorithm's Config extends it."""

    num_envs: int = 4
    num_steps: int = 512  # N x T = 2048 per iteration, SB3 TRPO's n_steps
    max_kl: float = 0.01  # delta, SB3 TRPO target_kl; Schulman et al. 2015 use 0.01
    cg_iters: int = 15  # SB3 TRPO cg_max_steps
    cg_damping: float = 0.1  # SB3 TRPO cg_damping
    gamma: float = 0.99  # SB3 TRPO
    gae_lambda: float = 0.95  # SB3 TRPO
    normalize_advantage: bool = True  # SB3 TRPO
    value_learning_rate: float = 1e-3  # SB3 TRPO learning_rate (critic only)
    value_epochs: int = 10  # SB3 TRPO n_critic_updates
    value_minibatch_size: int = 128  # SB3 TRPO batch_size
    hidden_sizes: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy
    activation: str = "tanh"  # SB3 MlpPolicy
    policy_dist: str = "gaussian"
    normalize_obs: bool = False
    normalize_reward: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "max_kl", "cg_iters",
                     "value_learning_rate", "value_epochs", "value_minibatch_size")
        cfg.non_negative(self, "cg_damping")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)
        cfg.check_divides(self, "value_minibatch_size", self.num_envs * self.num_steps,
                          "num_envs * num_steps")


class State(NamedTuple):
    params: Any  # {"policy": theta, "value": phi}
    opt_state: Any  # the value function's optimiser
    env_state: Any
    obs: jax.Array
    key: jax.Array


class Batch(NamedTuple):
    """N T steps, flattened to a leading axis of size N T."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array  # ln pi_{theta_k}(a_t|s_t)
    head: Any  # the distribution parameters of pi_{theta_k}(.|s_t)
    advantage: jax.Array  # \hat{A}_t, normalised when ``normalize_advantage``


PolicyStep = Callable[[PolicyNetwork, Any, Batch], tuple[Any, dict]]


def make_agent(config: Config, env, policy_step: PolicyStep) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                       config.activation, obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = optax.adam(config.value_learning_rate)
    batch_size = config.num_envs * config.num_steps
    num_minibatches = batch_size // config.value_minibatch_size

    def init(key):
        pi_key, vf_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "value": vf.init(vf_key, ts.obs)}
        return State(params, tx.init(params["value"]), env_state, ts.obs, state_key)

    def policy(params, obs, key, deterministic=False):
        head = pi.apply(params["policy"], obs)
        return select_action(distribution(head), key, deterministic)

    def fit_value(phi, opt_state, obs, targets, key):
        def loss(phi, mb):
            return 0.5 * jnp.mean((vf.apply(phi, mb[0]) - mb[1]) ** 2)

        def minibatch(carry, mb):
            phi, opt_state = carry
            value, grads = jax.value_and_grad(loss)(phi, mb)
            updates, opt_state = tx.update(grads, opt_state, phi)
            return (optax.apply_updates(phi, updates), opt_state), value

        def epoch(carry, k):
            perm = jax.random.permutation(k, batch_size)
            mbs = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]),
                               (obs, targets))
            return jax.lax.scan(minibatch, carry, mbs)

        (phi, opt_state), losses = jax.lax.scan(epoch, (phi, opt_state),
                                                jax.random.split(key, config.value_epochs))
        return phi, opt_state, losses[-1].mean()

    def step(state: State):
        key, rollout_key, value_key = jax.random.split(state.key, 3)
        params = state.params

        def act(obs, k):
            head = pi.apply(params["policy"], obs)
            dist = distribution(head)
            action = dist.sample(seed=k)
            return action, (dist.log_prob(action), head)

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        log_prob, head = traj.extras
        values = vf.apply(params["value"], traj.obs)
        rewards = bootstrap_truncated(traj.reward, traj.truncated,
                                      vf.apply(params["value"], traj.final_obs), config.gamma)
        advantage, targets = gae(rewards, values, traj.done, vf.apply(params["value"], obs),
                                 config.gamma, config.gae_lambda)
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]),
                            (traj.obs, traj.action, log_prob, head, advantage, targets))
        b_obs, b_action, b_log_prob, b_head, b_adv, b_targets = flat
        if config.normalize_advantage:
            b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        theta, stats = policy_step(pi, params["policy"],
                                   Batch(b_obs, b_action, b_log_prob, b_head, b_adv))
        phi, opt_state, v_loss = fit_value(params["value"], state.opt_state, b_obs, b_targets,
                                           value_key)
        entropy = distribution(b_head).entropy().mean()
        metrics = {**stats, "value_loss": v_loss, "entropy": entropy,
                   **episode_metrics(traj.info)}
        return State({"policy": theta, "value": phi}, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, batch_size)
