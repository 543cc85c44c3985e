r"""REINFORCE: Monte-Carlo policy gradient (Williams 1992; Sutton & Barto 2018, sec. 13.3-13.4).

For every step t of an episode, with the return from t

    G_t = \sum_{k=t+1}^{T} \gamma^{k-t-1} R_k                        -> ``discounted_returns``

the policy parameters move along

    \theta <- \theta + \alpha_\theta \gamma^t (G_t - b(S_t)) \nabla \ln \pi_\theta(A_t|S_t)

where the \gamma^t factor is optional (``discount_gradient``; Sutton & Barto keep it, most
implementations drop it) and the baseline b is 0 or a learned state value (``baseline``),
fitted by

    w <- w + \alpha_w (G_t - V_w(S_t)) \nabla V_w(S_t).                 -> ``value_loss``

N environments run in parallel for T steps per iteration (``num_steps``). G_t is known only once
its episode has ended, and episodes cross iteration boundaries, so each environment's unfinished
episode is carried into the next iteration (``Pending``, part of the State):

    join the carried steps and the new rollout, [carried; new] (time-major, per environment),
    compute G_t backward across both,                                 -> ``monte_carlo_batch``
    use the steps whose episode has ended (G_t complete),
    carry the steps of the episode still running.

Every step is used exactly once, in the iteration in which its episode ends, with its true
Monte-Carlo return. An iteration's update sums over the steps it uses, each weighted 1 / (N T)
(the number of steps collected per iteration), so every collected step weighs the same however
many steps an iteration happens to use (``steps_used`` in the metrics; over a run,
sum(steps_used + steps_dropped) + steps_carried = N T x iterations). Carried steps were sampled
by the policy of an earlier iteration (at most ceil(C / T) iterations old) and are used as if
on-policy, without importance correction.

The carry holds C = min(``max_episode_steps``, the environment's time limit) - 1 steps per
environment, so it is exact for episodes of up to ``max_episode_steps`` steps. Of a longer
episode, the oldest steps that do not fit are dropped unused and counted in ``steps_dropped``;
its later steps are used when it ends. Each iteration computes log-probabilities and values on
the (C + T) x N joined batch.

At a time-limit truncation the return is bootstrapped with \gamma V_w(S_final) when there is a
baseline, and cut otherwise. t counts steps from the start of each episode.
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
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.optim import OPTIMIZERS, make_optimizer
from pgzoo.core.returns import bootstrap_truncated, complete_mask, discounted_returns
from pgzoo.core.rollout import episode_metrics, rollout



@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # N parallel episodes
    num_steps: int = 256  # T steps per environment per iteration
    learning_rate: float = 1e-3  # alpha_theta (Adam); tuned here on CartPole-v1
    value_learning_rate: float = 3e-3  # alpha_w (Adam); tuned here on CartPole-v1
    gamma: float = 0.99
    baseline: bool = True  # learned V_w(s) baseline (Sutton & Barto sec. 13.4)
    discount_gradient: bool = False  # the gamma^t factor of Sutton & Barto's update
    normalize_advantage: bool = False  # not in the original algorithm; off
    ent_coef: float = 0.0  # not in the original algorithm; off
    optimizer: str = "adam"
    max_grad_norm: float = 0.0  # 0: no clipping
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    policy_dist: str = "gaussian"
    normalize_obs: bool = False
    # Episodes up to this long are used whole (the carry holds min(this, time limit) - 1 steps
    # per environment); 1000 covers CartPole-v1's 500 and the usual MuJoCo limit of 1000.
    max_episode_steps: int = 1000

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "learning_rate", "value_learning_rate",
                     "max_episode_steps")
        cfg.non_negative(self, "ent_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma")
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "policy_dist", FAMILIES)


class Pending(NamedTuple):
    """Each environment's unfinished episode: its steps so far, right-aligned in C rows
    (time-major, [C, N, ...]); ``valid`` marks the rows that hold a step."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # R_{t+1}
    t: jax.Array  # steps from the episode's start
    valid: jax.Array


class State(NamedTuple):
    params: Any  # {"policy": theta, "value": w}
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    pending: Pending  # the steps of each environment's unfinished episode


class Batch(NamedTuple):
    """The joined [carried; new] steps, [C + T, N, ...]."""

    obs: jax.Array
    action: jax.Array
    returns: jax.Array  # G_t; meaningful where ``used``
    t: jax.Array
    used: jax.Array  # the step's episode has ended: G_t is complete, use it now


def monte_carlo_batch(pending: Pending, obs, action, reward, done, t, gamma):
    """Join the carried steps and a new rollout (``[T, N, ...]``), compute G_t backward across
    both, and split the steps into those used now (their episode has ended) and those carried on.

    Returns (Batch, the new Pending, the number of carried steps dropped for lack of room). The
    carried steps never include an episode end (done is 0 for them), and the steps carried on are
    the ones after each environment's last episode end: a suffix of the joined rows, so the last
    C rows keep them right-aligned."""
    num_steps = done.shape[0]

    def join(carried, new):
        return jnp.concatenate([carried, new.astype(carried.dtype)], axis=0)

    all_done = join(jnp.zeros_like(pending.valid), done)
    valid = join(pending.valid, jnp.ones_like(done, bool))
    # Rows before an environment's carried steps are invalid: they come first, and G_t of a
    # valid row depends only on later rows, so their contents never matter.
    returns = discounted_returns(join(pending.reward, reward), all_done,
                                 jnp.zeros(done.shape[1:], reward.dtype), gamma)
    ended = complete_mask(all_done)
    carried = valid & ~ended
    keep = slice(num_steps, None)  # the last C rows
    batch = Batch(join(pending.obs, obs), join(pending.action, action), returns,
                  join(pending.t, t), valid & ended)
    new_pending = Pending(batch.obs[keep], batch.action[keep], join(pending.reward, reward)[keep],
                          batch.t[keep], carried[keep])
    dropped = carried[:num_steps].sum()
    return batch, new_pending, dropped


def value_loss(values, returns, mask, n):
    return 0.5 * jnp.sum(mask * (returns - values) ** 2) / n


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    pi = PolicyNetwork(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                       config.activation, obs_ndim)
    vf = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    tx = {"policy": make_optimizer(config.optimizer, config.learning_rate, config.max_grad_norm),
          "value": make_optimizer(config.optimizer, config.value_learning_rate,
                                  config.max_grad_norm)}

    limit = env.max_episode_steps or config.max_episode_steps
    capacity = max(min(config.max_episode_steps, limit) - 1, 0)  # C
    batch_size = config.num_envs * config.num_steps  # N T

    def policy(params, obs, key, deterministic=False):
        head = pi.apply(params["policy"], obs)
        return select_action(distribution(head), key, deterministic)

    def no_pending(params, obs, key):
        action = policy(params, obs, key)
        rows = lambda x: jnp.zeros((capacity,) + x.shape, x.dtype)  # noqa: E731
        n = config.num_envs
        return Pending(rows(obs), rows(action), jnp.zeros((capacity, n), jnp.float32),
                       jnp.zeros((capacity, n), jnp.int32), jnp.zeros((capacity, n), bool))

    def init(key):
        pi_key, vf_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = {"policy": pi.init(pi_key, ts.obs), "value": vf.init(vf_key, ts.obs)}
        opt_state = {k: tx[k].init(params[k]) for k in tx}
        return State(params, opt_state, env_state, ts.obs, state_key,
                     no_pending(params, ts.obs, state_key))

    def with_env(state: State, env_state, obs):
        # Fresh episodes (a resumed host-bridged run): the carried ones will never end.
        return state._replace(env_state=env_state, obs=obs,
                              pending=no_pending(state.params, obs, state.key))

    def step(state: State):
        key, rollout_key = jax.random.split(state.key)
        params = state.params

        def act(obs, k):
            return policy(params, obs, k), ()

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        rewards = traj.reward
        if config.baseline:
            final_values = vf.apply(params["value"], traj.final_obs)
            rewards = bootstrap_truncated(rewards, traj.truncated, final_values, config.gamma)
        episode_t = traj.info["episode_length"] - 1  # t, counted from the episode's start
        batch, pending, dropped = monte_carlo_batch(state.pending, traj.obs, traj.action, rewards,
                                                    traj.done, episode_t, config.gamma)
        returns = batch.returns
        mask = batch.used.astype(jnp.float32)
        weight = mask * (config.gamma ** batch.t if config.discount_gradient else 1.0)
        used = mask.sum()
        n = batch_size  # each step weighs 1 / (N T), in the iteration that uses it

        def vf_loss(w):
            return value_loss(vf.apply(w, batch.obs), returns, mask, n)

        if config.baseline:
            v_loss, v_grads = jax.value_and_grad(vf_loss)(params["value"])
            baseline = vf.apply(params["value"], batch.obs)
        else:
            v_loss, v_grads, baseline = jnp.float32(0.0), None, 0.0
        advantage = returns - baseline
        if config.normalize_advantage:
            mean = jnp.sum(mask * advantage) / jnp.maximum(used, 1.0)
            std = jnp.sqrt(jnp.sum(mask * (advantage - mean) ** 2) / jnp.maximum(used, 1.0))
            advantage = (advantage - mean) / (std + 1e-8)

        def pi_loss(theta):
            dist = distribution(pi.apply(theta, batch.obs))
            log_prob = dist.log_prob(batch.action)
            objective = jnp.sum(weight * advantage * log_prob) / n
            entropy = jnp.sum(mask * dist.entropy()) / jnp.maximum(used, 1.0)
            return -(objective + config.ent_coef * entropy * used / n), entropy

        (p_loss, entropy), p_grads = jax.value_and_grad(pi_loss, has_aux=True)(params["policy"])
        grads = {"policy": p_grads, "value": v_grads}
        new_params, opt_state = dict(params), dict(state.opt_state)
        for k in tx if config.baseline else ("policy",):
            updates, opt_state[k] = tx[k].update(grads[k], state.opt_state[k], params[k])
            new_params[k] = optax.apply_updates(params[k], updates)
        metrics = {"policy_loss": p_loss, "value_loss": v_loss, "entropy": entropy,
                   "steps_used": used, "steps_carried": pending.valid.sum().astype(jnp.float32),
                   "steps_dropped": dropped.astype(jnp.float32)}
        metrics.update(episode_metrics(traj.info))
        return State(new_params, opt_state, env_state, obs, key, pending), metrics

    return Agent(init, step, policy, batch_size, with_env=with_env)


ALGORITHM = Algorithm(
    name="reinforce", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=1_000_000,  # the CartPole-v1 budget of the benchmark
    hyperparameters=("learning_rate", "value_learning_rate", "ent_coef"),
)
