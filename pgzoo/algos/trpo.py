r"""Trust Region Policy Optimization (Schulman et al. 2015), and the natural policy gradient.

Each iteration collects T steps from N environments with \pi_{\theta_k}, estimates advantages
\hat{A}_t with GAE(\gamma, \lambda) (normalised), and maximises the surrogate

    L(\theta) = E_t[ \pi_\theta(a_t|s_t) / \pi_{\theta_k}(a_t|s_t) \hat{A}_t ]      -> ``surrogate``

subject to \bar{D}_{KL}(\theta_k \| \theta) = E_t[ KL[\pi_{\theta_k}(.|s_t), \pi_\theta(.|s_t)] ] <= \delta:

    g = \nabla_\theta L(\theta_k),   H = \nabla^2_\theta \bar{D}_{KL}(\theta_k \| \theta)|_{\theta_k}
    x = H^{-1} g                    by conjugate gradient on Fisher-vector products
                                    (``pgzoo.core.trust_region``), never forming H
    TRPO:  \theta_{k+1} = \theta_k + \alpha^j \sqrt{2\delta / x^T H x} x, with the smallest j
           whose sample KL is <= \delta and whose surrogate improves      -> ``backtracking_line_search``
    NPG (Kakade 2002; ``line_search=False``, module ``npg``):
           \theta_{k+1} = \theta_k + \sqrt{2\delta / g^T H^{-1} g} H^{-1} g

The value function V_\phi is fitted by regression on the GAE value targets \hat{A}_t + V_{\phi_k}(s_t)
(``value_epochs`` epochs of Adam minibatch steps). Time-limit truncations are bootstrapped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgzoo.algos.base import Agent
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (FAMILIES, distribution, policy_head,
                                      select_action)
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.returns import bootstrap_truncated, gae
from pgzoo.core.rollout import episode_metrics, rollout
from pgzoo.core.trust_region import (backtracking_line_search, conjugate_gradient,
                                     fisher_vector_product)

ACTION_SPACES = ("discrete", "continuous")
DEFAULT_TOTAL_STEPS = 200_000  # the CartPole-v1 budget of the benchmark


@dataclass(frozen=True)
class Config:
    num_envs: int = 4
    num_steps: int = 512  # N x T = 2048 per iteration, SB3 TRPO's n_steps
    max_kl: float = 0.01  # delta, SB3 TRPO target_kl; Schulman et al. 2015 use 0.01
    cg_iters: int = 15  # SB3 TRPO cg_max_steps
    cg_damping: float = 0.1  # SB3 TRPO cg_damping
    line_search_shrink: float = 0.8  # alpha, SB3 TRPO line_search_shrinking_factor
    line_search_steps: int = 10  # SB3 TRPO line_search_max_iter
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
        cfg.positive(self, "num_envs", "num_steps", "max_kl", "cg_iters", "line_search_steps",
                     "value_learning_rate", "value_epochs", "value_minibatch_size")
        cfg.non_negative(self, "cg_damping")
        cfg.unit_interval(self, "gamma", "gae_lambda", "line_search_shrink")
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


def make(config: Config, env, total_steps: int, line_search: bool = True) -> Agent:
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

    def policy_step(theta, obs, actions, old_log_prob, old_head, advantage):
        flat, unravel = ravel_pytree(theta)
        old_dist = distribution(old_head)

        def surrogate(flat_theta):
            log_prob = distribution(pi.apply(unravel(flat_theta), obs)).log_prob(actions)
            return jnp.mean(jnp.exp(log_prob - old_log_prob) * advantage)

        def mean_kl(flat_theta):
            return old_dist.kl_divergence(distribution(pi.apply(unravel(flat_theta), obs))).mean()

        g = jax.grad(surrogate)(flat)
        fvp = fisher_vector_product(mean_kl, flat, config.cg_damping)
        x = conjugate_gradient(fvp, g, config.cg_iters)
        if line_search:
            full_step = jnp.sqrt(2.0 * config.max_kl / (x @ fvp(x) + 1e-12)) * x
            new, j, accepted = backtracking_line_search(
                flat, full_step, surrogate, mean_kl, config.max_kl, config.line_search_shrink,
                config.line_search_steps)
            stats = {"line_search_steps": j.astype(jnp.float32),
                     "accepted": accepted.astype(jnp.float32)}
        else:
            new = flat + jnp.sqrt(2.0 * config.max_kl / (g @ x + 1e-12)) * x
            stats = {}
        stats.update(kl=mean_kl(new), surrogate_gain=surrogate(new) - surrogate(flat))
        return unravel(new), stats

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
        theta, stats = policy_step(params["policy"], b_obs, b_action, b_log_prob, b_head, b_adv)
        phi, opt_state, v_loss = fit_value(params["value"], state.opt_state, b_obs, b_targets,
                                           value_key)
        entropy = distribution(b_head).entropy().mean()
        metrics = {**stats, "value_loss": v_loss, "entropy": entropy,
                   **episode_metrics(traj.info)}
        return State({"policy": theta, "value": phi}, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, batch_size)
