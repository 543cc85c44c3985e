r"""ACKTR: actor-critic using Kronecker-factored trust region (Wu et al. 2017).

The A2C objective (``a2c``), optimised with natural-gradient steps whose Fisher matrix is
approximated by K-FAC, for the actor and the critic alike. N environments step n steps; then

    R_t = \sum_{i=0}^{k-1} \gamma^i r_{t+i} + \gamma^k V_w(s_{t+k})       n-step returns, or GAE
    L   = -E_t[ A_t \ln \pi_\theta(a_t|s_t) ] + c_v E_t[ (R_t - V_w(s_t))^2 ] / 2 - c_e E_t[ H ]

K-FAC (Martens & Grosse 2015): for each dense layer with input a and pre-activation gradient g,
the layer's block of the Fisher F = E[\nabla \ln p \nabla \ln p^T] is approximated as
A \otimes G with A = E[a a^T], G = E[g g^T], where the gradients come from outputs *sampled* from
the model's predictive distributions:

- a softmax policy: the categorical \pi_\theta(.|s);
- a Gaussian policy N(\mu_\theta(s), diag \sigma^2), \sigma = exp(log \sigma) a state-independent
  parameter: its Fisher in (\mu, log \sigma) is diag(1/\sigma^2, 2), registered as N(\mu/\sigma, 1)
  (\sigma held constant) and N(log \sigma, 1/2), so the mean layer's G carries the 1/\sigma^2, and
  log \sigma, in no dense layer, gets kfac-jax's diagonal block E[g^2] (2 per dimension in
  expectation);
- the critic: N(V_w(s), 1) with weight c_v, whose negative log-likelihood c_v (R - V)^2 / 2 is the
  value term of L (G = c_v, that term's Gauss-Newton matrix; OpenAI Baselines likewise samples
  the critic's output as V + N(0, 1)).

A and G are running averages keeping the weight ``stats_decay`` on the old estimate (kfac-jax's
bias-corrected moving average, ``curvature_ema``); F^{-1} \nabla L is applied block by block as
G^{-1} (\nabla_W L) A^{-1}, each factor damped by ``damping``.

The trust region fixes the step size: with \Delta = F^{-1} \nabla L and learning rate \eta_{max},

    \eta = \min(\eta_{max}, \sqrt{2\delta / (\Delta^T F \Delta)}),     \theta <- \theta - \eta \Delta

(plus momentum on the update, as in the paper's implementation). Gradients are not clipped: the
trust region already bounds the step (OpenAI Baselines also clips them to norm 0.5; with a norm
computed from the gradients inside kfac-jax's step, the vmapped ``--seeds`` run never returned on
the CPU, so that extra is left out). K-FAC is kfac-jax's
(``pgzoo.core.kfac``): its ``norm_constraint`` = 2\delta scales the step in exactly this way, and
its automatic registration finds the dense layers of both networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import (GaussianParams, distribution, policy_head,
                                      select_action)
from pgzoo.core.kfac import kfac_jax
from pgzoo.core.networks import ACTIVATIONS, ActorCritic
from pgzoo.core.returns import bootstrap_truncated, discounted_returns, gae
from pgzoo.core.rollout import episode_metrics, rollout



@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # rl-baselines-zoo (SB2) acktr.yml, CartPole-v1
    num_steps: int = 20  # n, SB2 / OpenAI Baselines ACKTR default
    learning_rate: float = 0.25  # eta_max, SB2 / Baselines ACKTR default
    anneal_lr: bool = True  # SB2 / Baselines: linear schedule
    max_kl: float = 0.0005  # delta; 2 delta = 0.001 is Baselines' kfac_clip
    momentum: float = 0.9  # Baselines ACKTR (K-FAC momentum)
    damping: float = 0.01  # Baselines ACKTR epsilon
    # weight of the old Kronecker factors: kfac-jax's and Baselines' KfacOptimizer default.
    # Baselines ACKTR's 0.99 (beside gradient clipping, left out here) collapsed 1 CartPole seed in 5
    stats_decay: float = 0.95
    gamma: float = 0.99  # SB2 ACKTR default
    gae_lambda: float = 1.0  # SB2 ACKTR default (n-step returns)
    ent_coef: float = 0.0  # rl-baselines-zoo (SB2) acktr.yml, CartPole-v1
    vf_coef: float = 0.25  # SB2 ACKTR default
    normalize_advantage: bool = False
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    policy_dist: str = "gaussian"
    normalize_obs: bool = False
    normalize_reward: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "max_kl", "damping")
        cfg.non_negative(self, "ent_coef", "vf_coef")
        cfg.unit_interval(self, "gamma", "gae_lambda", "momentum", "stats_decay")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", ("gaussian",))  # K-FAC registers Gaussian or categorical outputs


class State(NamedTuple):
    params: Any
    kfac_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array


def register_predictive_distribution(head):
    """Tell K-FAC which distribution each network's output parameterises (for sampled Fishers).

    Gaussian N(mu, diag(sigma^2)) with sigma = exp(log_std): its Fisher in (mu, log sigma) is
    diag(1/sigma^2, 2), with no cross term, i.e. the Fisher of two independent Gaussians,
    N(mu/sigma, 1) in the standardised mean (sigma held constant: kfac-jax takes one scalar
    variance, sigma has one per action dimension) and N(log sigma, 1/2) in the log std. The
    first gives the mean layer's Kronecker factor G its 1/sigma^2; the second gives the log-std
    parameter (in no dense layer: kfac-jax's diagonal "generic" block) its curvature 2."""
    if isinstance(head, GaussianParams):
        sigma = jax.lax.stop_gradient(jnp.exp(head.log_std))
        kfac_jax.register_normal_predictive_distribution(head.mean / sigma, variance=1.0)
        kfac_jax.register_normal_predictive_distribution(head.log_std, variance=0.5)
    else:
        kfac_jax.register_categorical_predictive_distribution(head)


def a2c_loss(model: ActorCritic, config: Config):
    """L(params, (obs, action, advantage, return)) with the predictive distributions registered."""

    def loss_fn(params, batch):
        obs, action, advantage, returns = batch
        head, values = model.apply(params, obs)
        register_predictive_distribution(head)
        # critic: Gaussian N(V(s), 1) with weight c_v, whose negative log-likelihood
        # c_v (R - V)^2 / 2 is the value term of the loss below (curvature c_v, its Gauss-Newton)
        kfac_jax.register_normal_predictive_distribution(values[:, None], variance=1.0,
                                                         weight=config.vf_coef)
        dist = distribution(head)
        pg_loss = -jnp.mean(advantage * dist.log_prob(action))
        v_loss = 0.5 * jnp.mean((returns - values) ** 2)
        entropy = dist.entropy().mean()
        loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
        return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy}

    return loss_fn


def kfac_optimizer(loss_fn, config: Config) -> kfac_jax.Optimizer:
    """K-FAC with the trust-region step size: ``norm_constraint`` = 2 delta (see the docstring).
    Its ``step`` takes ``learning_rate``, ``momentum`` and ``damping`` and ``global_step_int=1``.

    ``curvature_ema`` is the weight of the *old* estimate: kfac-jax's ``WeightedMovingAverage``
    (``utils/accumulators.py``) updates weight <- ema * weight + 1 and
    value <- (1 - 1/weight) value + (1/weight) batch_stats, a bias-corrected running average
    that keeps ``stats_decay`` of the old factors."""
    return kfac_jax.Optimizer(
        value_and_grad_func=jax.value_and_grad(loss_fn, has_aux=True), value_func_has_aux=True,
        l2_reg=0.0, norm_constraint=2.0 * config.max_kl, curvature_ema=config.stats_decay,
        curvature_update_period=1, inverse_update_period=1, num_burnin_steps=0,
        estimation_mode="fisher_gradients", multi_device=False)


def make(config: Config, env, total_steps: int) -> Agent:
    model = ActorCritic(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                        config.activation, False, len(env.observation_space.shape))
    batch_size = config.num_envs * config.num_steps
    num_iterations = max(1, total_steps // batch_size)

    optimizer = kfac_optimizer(a2c_loss(model, config), config)

    def flat(x):
        return x.reshape((-1,) + x.shape[2:])

    def init(key):
        params_key, env_key, state_key, kfac_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = model.init(params_key, ts.obs)
        action = policy(params, ts.obs, params_key)
        n = batch_size
        example = (jnp.zeros((n,) + ts.obs.shape[1:], ts.obs.dtype),
                   jnp.zeros((n,) + action.shape[1:], action.dtype), jnp.zeros(n), jnp.zeros(n))
        kfac_state = optimizer.init(params, kfac_key, example)
        return State(params, kfac_state, env_state, ts.obs, state_key, jnp.int32(0))

    def policy(params, obs, key, deterministic=False):
        head = model.apply(params, obs, method=model.policy)
        return select_action(distribution(head), key, deterministic)

    def step(state: State):
        key, rollout_key, kfac_key = jax.random.split(state.key, 3)
        params = state.params

        def act(obs, k):
            return policy(params, obs, k), ()

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        final_values = model.apply(params, traj.final_obs, method=model.value)
        rewards = bootstrap_truncated(traj.reward, traj.truncated, final_values, config.gamma)
        last_value = model.apply(params, obs, method=model.value)
        values = model.apply(params, traj.obs, method=model.value)
        if config.gae_lambda < 1.0:
            advantage, returns = gae(rewards, values, traj.done, last_value, config.gamma,
                                     config.gae_lambda)
        else:
            returns = discounted_returns(rewards, traj.done, last_value, config.gamma)
            advantage = returns - values
        if config.normalize_advantage:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)

        fraction = state.iteration / num_iterations
        lr = config.learning_rate * (1.0 - fraction if config.anneal_lr else 1.0)
        batch = (flat(traj.obs), flat(traj.action), flat(advantage), flat(returns))
        params, kfac_state, stats = optimizer.step(
            params, state.kfac_state, kfac_key, batch=batch, learning_rate=jnp.asarray(lr),
            momentum=jnp.asarray(config.momentum), damping=jnp.asarray(config.damping),
            global_step_int=1)  # periods are 1: nothing depends on the host-side step count
        metrics = dict(stats["aux"])
        metrics["loss"] = stats["loss"]
        metrics.update(episode_metrics(traj.info))
        return State(params, kfac_state, env_state, obs, key, state.iteration + 1), metrics

    return Agent(init, step, policy, batch_size)


ALGORITHM = Algorithm(
    name="acktr", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,  # the CartPole-v1 budget of the benchmark
    # ``--seeds``: one compiled call per seed. With kfac-jax's step vmapped over seeds inside the
    # training loop, XLA's CPU runtime never returned (every thread idle), so seeds are not batched.
    vmap_seeds=False,
    hyperparameters=("learning_rate", "max_kl", "damping", "ent_coef", "vf_coef"),
)
