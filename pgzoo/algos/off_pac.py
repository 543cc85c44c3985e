r"""Off-PAC: off-policy actor-critic (Degris, White & Sutton 2012), neural critic.

A behaviour policy \beta chooses the actions; the target policy \pi_\theta learns from them.
After every environment step (S, A, R, S'), A ~ \beta(.|S), with the importance weight

    \rho = \pi_\theta(A|S) / \beta(A|S),      \bar\rho = min(\rho, ``max_importance_weight``)

and the TD error of the target policy's value

    \delta = R + \gamma V_w(S') - V_w(S)     (V_w(S') = 0 at termination; S' the true final
                                               observation at a time-limit truncation)

both are updated at once (Degris et al.'s algorithm with \lambda = 0):

    w      <- w + \alpha_w \bar\rho \delta \nabla V_w(S)      (importance-corrected TD(0))
    \theta <- \theta + \alpha_\theta \rho \delta \nabla \ln \pi_\theta(A|S)

The actor's step is a sample of the off-policy policy gradient
\nabla J_\beta \approx E_{s ~ d_\beta, a ~ \beta}[ \rho(s, a) \nabla \ln \pi(a|s) Q^\pi(s, a) ], with the TD
error standing in for Q^\pi(s, a) - V^\pi(s) (the baseline V keeps it unbiased). The paper
learns a linear critic with GTD(\lambda) and eligibility traces; here the critic is a neural
network trained by the one-step importance-weighted TD update above, with the weights
truncated at ``max_importance_weight`` (10 by default, as ACER's c; a uniform behaviour over
n <= 10 actions never reaches it, since \rho <= n).

``behaviour`` chooses \beta: ``uniform`` (uniformly random actions, the paper's setting),
``mixture`` (\epsilon uniform + (1 - \epsilon) \pi_\theta, a slowly changing behaviour), or
``target`` (\beta = \pi_\theta: then \rho = 1 and this is the one-step actor-critic of
``actor_critic``, step for step). N environments run in parallel and their updates are averaged;
one iteration is T steps inside one compiled ``scan``. Evaluation runs the target policy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import distrax
import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import distribution, policy_head, select_action
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.optim import OPTIMIZERS, apply_each, make_optimizer
from pgzoo.core.rollout import episode_metrics

BEHAVIOURS = ("uniform", "mixture", "target")


@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # parallel environments; each step's update averages over them
    num_steps: int = 128  # T updates per iteration (only sets the iteration's length)
    behaviour: str = "uniform"  # beta
    epsilon: float = 0.5  # the uniform share of the ``mixture`` behaviour
    max_importance_weight: float = 10.0  # the truncation of rho in the critic's update
    learning_rate: float = 3e-4  # alpha_theta (Adam)
    value_learning_rate: float = 1e-3  # alpha_w (Adam)
    gamma: float = 0.99
    ent_coef: float = 0.0
    optimizer: str = "adam"
    max_grad_norm: float = 0.0  # 0: no clipping
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "value_learning_rate",
                     "max_importance_weight")
        cfg.non_negative(self, "ent_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "epsilon")
        cfg.one_of(self, "behaviour", BEHAVIOURS)
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class State(NamedTuple):
    params: Any  # {"policy": theta, "critic": w}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array


def behaviour_distribution(behaviour: str, target_logits, epsilon):
    """beta(.|s) beside the target policy's logits: uniform, the epsilon-mixture, or pi."""
    target = jax.nn.softmax(target_logits)
    uniform = jnp.full_like(target, 1.0 / target.shape[-1])
    probs = {"uniform": uniform, "target": target,
             "mixture": epsilon * uniform + (1.0 - epsilon) * target}[behaviour]
    return distrax.Categorical(probs=probs)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space), config.hidden_sizes, config.activation,
                       obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = {"policy": make_optimizer(config.optimizer, config.learning_rate, config.max_grad_norm),
          "critic": make_optimizer(config.optimizer, config.value_learning_rate,
                                   config.max_grad_norm)}

    def policy(params, obs, key, deterministic=False):
        return select_action(distribution(pi.apply(params["policy"], obs)), key, deterministic)

    def behave(params, obs, key):
        """A ~ beta(.|S) and the log-probability ln beta(A|S)."""
        logits = pi.apply(params["policy"], obs)
        if config.behaviour == "target":  # the same draw as the on-policy actor-critic
            action = policy(params, obs, key)
            return action, distribution(logits).log_prob(action)
        beta = behaviour_distribution(config.behaviour, logits, config.epsilon)
        action = beta.sample(seed=key)
        return action, beta.log_prob(action)

    def init(key):
        pi_key, critic_key, env_key, state_key, act_key = jax.random.split(key, 5)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "critic": vf.init(critic_key, ts.obs)}
        return State(params, {k: tx[k].init(params[k]) for k in tx}, env_state, ts.obs, state_key)

    def one_step(carry, key):
        params, opt_state, env_state, obs = carry
        act_key, env_key, _ = jax.random.split(key, 3)
        action, log_beta = behave(params, obs, act_key)
        env_state, ts = env.step(env_state, action, env_key)
        next_value = vf.apply(params["critic"], ts.final_obs)
        log_pi = distribution(pi.apply(params["policy"], obs)).log_prob(action)
        rho = jax.lax.stop_gradient(jnp.exp(log_pi - log_beta))
        rho_bar = jnp.minimum(rho, config.max_importance_weight)

        def critic_loss(w):
            value = vf.apply(w, obs)
            delta = (ts.reward + config.gamma * (1.0 - ts.terminated)
                     * jax.lax.stop_gradient(next_value) - value)
            # gradient -rho_bar delta grad V: the importance-corrected TD(0) step
            return 0.5 * jnp.mean(rho_bar * delta ** 2), delta

        (c_loss, delta), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            params["critic"])
        signal = jax.lax.stop_gradient(rho * delta)

        def actor_loss(theta):
            dist = distribution(pi.apply(theta, obs))
            objective = jnp.mean(signal * dist.log_prob(action))
            entropy = dist.entropy().mean()
            return -(objective + config.ent_coef * entropy), entropy

        (a_loss, entropy), a_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            params["policy"])
        new_params, new_opt = apply_each(tx, {"policy": a_grads, "critic": c_grads}, opt_state,
                                         params)
        metrics = {"actor_loss": a_loss, "critic_loss": c_loss, "entropy": entropy,
                   "td_error": jnp.abs(delta).mean(), "importance_weight": rho.mean(),
                   "importance_weight_max": rho.max(), **episode_metrics(ts.info)}
        return (new_params, new_opt, env_state, ts.obs), metrics

    def step(state: State):
        key, scan_key = jax.random.split(state.key)
        carry = (state.params, state.opt_state, state.env_state, state.obs)
        (params, opt_state, env_state, obs), m = jax.lax.scan(
            one_step, carry, jax.random.split(scan_key, config.num_steps))
        sums = ("episodes", "episode_return_sum", "episode_length_sum")
        metrics = {k: (v.sum() if k in sums else v.max() if k.endswith("_max") else v.mean())
                   for k, v in m.items()}
        return State(params, opt_state, env_state, obs, key), metrics

    return Agent(init, step, policy, config.num_envs * config.num_steps)


ALGORITHM = Algorithm(
    name="off_pac", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=1_000_000,
    hyperparameters=("learning_rate", "value_learning_rate", "ent_coef", "epsilon",
                     "max_importance_weight"),
)
