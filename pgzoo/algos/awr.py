r"""AWR: advantage-weighted regression (Peng, Kumar, Zhang & Levine 2019).

"Advantage-weighted regression: simple and scalable off-policy reinforcement learning".

Each iteration the current policy \pi_k collects ``num_envs`` x ``num_steps`` transitions into
a first-in first-out replay buffer D of the last ``buffer_size`` samples (in the order they
happened, one column per environment), and then takes two supervised steps on the whole of D
(algorithm 1):

1. value: with the current V, the TD(\lambda) return of every stored step along its trajectory

       R_t = r_t + \gamma (1 - d_t) [ (1 - \lambda) V(s_{t+1}) + \lambda R_{t+1} ]       -> ``gae`` + V

   (bootstrapped from V(s_final) at a time limit and from V of the current observation at the
   newest step), then ``critic_steps`` minibatch steps of
   L(w) = E_D[ (R_t - V_w(s_t))^2 ] / 2 with the targets held fixed (eq. 10, 12);
2. policy: with the new V, the advantages A_t = R_t - V(s_t), normalised over D (the authors'
   code), the weights

       w_t = min(exp(\hat A_t / \beta), w_max)                                          (eq. 13)

   and ``actor_steps`` minibatch steps of the weighted maximum likelihood
   L(\theta) = -E_D[ w_t \ln \pi_\theta(a_t|s_t) ] (eq. 11, 13).

The defaults are the authors' (their code, awr_configs.py): 128-64 ReLU networks, 2048 samples
per iteration, a 50k buffer, 200 value and 1000 policy steps of 256 samples with SGD and
momentum 0.9 (value 0.01, policy 5e-5), \beta = 1 on normalised advantages, w_max = 20,
\lambda = 0.95, \gamma = 0.99; a Gaussian policy with a fixed standard deviation
``action_std`` on actions scaled to [-1, 1], and their penalty 10 x 0.5 E[ sum_j max(|\mu_j| - 1,
0)^2 ] on a mean outside the bounds. As in their code the value network predicts V(s) (1 - \gamma) (a
return on the scale of one reward). Where it differs: the authors always normalise states, with
statistics frozen after 300k samples, at the networks' input; here ``normalize_obs`` (off by
default, on in the Hopper preset) normalises them in the environment layer with running
statistics, so the buffer holds observations normalised by the statistics of their time. The
minibatches are drawn uniformly with replacement from D (the authors shuffle), and the number of
value and policy steps per iteration is fixed (the authors scale it with the new samples).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import GaussianParams, distribution, policy_head, select_action
from pgzoo.core.networks import ACTIVATIONS, PolicyNetwork, ValueNetwork
from pgzoo.core.returns import bootstrap_truncated, gae
from pgzoo.core.rollout import episode_metrics, rollout
from pgzoo.errors import check


@dataclass(frozen=True)
class Config:
    num_envs: int = 16
    num_steps: int = 128  # per environment per iteration: 16 x 128 = 2048 samples (authors)
    buffer_size: int = 50_000  # samples kept (rounded down to whole iterations)
    gamma: float = 0.99
    td_lambda: float = 0.95
    temperature: float = 1.0  # beta, on normalised advantages
    max_weight: float = 20.0  # w_max
    critic_steps: int = 200
    actor_steps: int = 1000
    batch_size: int = 256
    critic_learning_rate: float = 0.01
    actor_learning_rate: float = 5e-5
    momentum: float = 0.9
    action_std: float = 0.2  # fixed standard deviation of a Gaussian policy (Ant; 0.4 Hopper)
    bound_penalty: float = 10.0  # x 0.5 E[sum_j max(|mu_j| - 1, 0)^2] (the authors' weight)
    hidden_sizes: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "buffer_size", "temperature", "max_weight",
                     "critic_steps", "actor_steps", "batch_size", "critic_learning_rate",
                     "actor_learning_rate", "action_std")
        cfg.non_negative(self, "bound_penalty")
        cfg.unit_interval(self, "gamma", "td_lambda", "momentum")
        check(self.gamma < 1.0, "gamma must be below 1 (the value network predicts "
              "V(s) (1 - gamma))")
        check(self.buffer_size >= self.num_envs * self.num_steps,
              f"buffer_size ({self.buffer_size}) must hold at least one iteration's samples, "
              f"num_envs x num_steps = {self.num_envs * self.num_steps}")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class Steps(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # the true next observation where an episode was cut by a time limit


class Buffer(NamedTuple):
    """The last L steps of every environment, oldest overwritten first: [L, N, ...]."""

    steps: Steps
    position: jax.Array  # the row the next iteration writes
    rows: jax.Array  # rows filled so far (at most L)


class Params(NamedTuple):
    actor: Any
    critic: Any


class State(NamedTuple):
    params: Params
    actor_opt: Any
    critic_opt: Any
    buffer: Buffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    iteration: jax.Array


def advantage_weights(advantages, valid, temperature, max_weight):
    """w = min(exp(\\hat A / beta), w_max), \\hat A the advantages normalised over the valid
    entries (the authors' code: mean and standard deviation of the buffer's)."""
    count = jnp.maximum(valid.sum(), 1.0)
    mean = jnp.sum(advantages * valid) / count
    std = jnp.sqrt(jnp.sum((advantages - mean) ** 2 * valid) / count)
    normalised = (advantages - mean) / (std + 1e-5)
    return jnp.minimum(jnp.exp(normalised / temperature), max_weight)


def td_lambda_targets(values, final_values, last_value, steps: Steps, gamma, lam):
    """TD(lambda) returns of steps [T, N] in the order they happened."""
    rewards = bootstrap_truncated(steps.reward, steps.truncated, final_values, gamma)
    dones = jnp.logical_or(steps.terminated, steps.truncated)
    return gae(rewards, values, dones, last_value, gamma, lam)[1]


def make(config: Config, env, total_steps: int) -> Agent:
    discrete = env.action_space.kind == "discrete"
    obs_ndim = len(env.observation_space.shape)
    actor = PolicyNetwork(policy_head(env.action_space), config.hidden_sizes, config.activation,
                          obs_ndim)
    critic = ValueNetwork(config.hidden_sizes, config.activation, obs_ndim)
    batch = config.num_envs * config.num_steps
    rows = (config.buffer_size // batch) * config.num_steps  # L
    actor_tx = optax.sgd(config.actor_learning_rate, momentum=config.momentum)
    critic_tx = optax.sgd(config.critic_learning_rate, momentum=config.momentum)
    scale = 1.0 / (1.0 - config.gamma)  # V = scale x the network's output

    def head(actor_params, obs):
        out = actor.apply(actor_params, obs)
        if isinstance(out, GaussianParams):  # a fixed standard deviation, not learned
            out = out._replace(log_std=jnp.full_like(out.log_std, jnp.log(config.action_std)))
        return out

    def value(critic_params, obs):
        return scale * critic.apply(critic_params, obs)

    def policy(params: Params, obs, key, deterministic=False):
        return select_action(distribution(head(params.actor, obs)), key, deterministic)

    def init(key):
        actor_key, critic_key, env_key, state_key = jax.random.split(key, 4)
        env_state, ts = env.reset(env_key)
        params = Params(actor.init(actor_key, ts.obs), critic.init(critic_key, ts.obs))
        action = policy(params, ts.obs, actor_key)
        empty = lambda x, dtype=None: jnp.zeros((rows,) + x.shape, dtype or x.dtype)
        steps = Steps(empty(ts.obs), empty(action), empty(ts.reward), empty(ts.terminated, bool),
                      empty(ts.terminated, bool), empty(ts.obs))
        buffer = Buffer(steps, jnp.int32(0), jnp.int32(0))
        return State(params, actor_tx.init(params.actor), critic_tx.init(params.critic), buffer,
                     env_state, ts.obs, state_key, jnp.int32(0))

    def store(buffer: Buffer, traj) -> Buffer:
        new = Steps(traj.obs, traj.action, traj.reward, traj.terminated, traj.truncated,
                    traj.final_obs)
        steps = jax.tree.map(lambda store, x: jax.lax.dynamic_update_slice_in_dim(
            store, x.astype(store.dtype), buffer.position, axis=0), buffer.steps, new)
        return Buffer(steps, (buffer.position + config.num_steps) % rows,
                      jnp.minimum(buffer.rows + config.num_steps, rows))

    def chronological(buffer: Buffer):
        """The buffer's steps oldest first, and which of them hold data (unfilled rows come
        first, so the backward TD(lambda) recursion never reads them into a filled one)."""
        order = (buffer.position + jnp.arange(rows)) % rows
        ordered = jax.tree.map(lambda x: x[order], buffer.steps)
        valid = (jnp.arange(rows) >= rows - buffer.rows).astype(jnp.float32)
        return ordered, jnp.broadcast_to(valid[:, None], (rows, config.num_envs))

    def targets_and_values(critic_params, ordered: Steps, last_obs):
        values = value(critic_params, ordered.obs)
        final_values = value(critic_params, ordered.final_obs)
        last_value = value(critic_params, last_obs)
        targets = td_lambda_targets(values, final_values, last_value, ordered, config.gamma,
                                    config.td_lambda)
        return targets, values

    def sample(key, valid_count):
        """``batch_size`` flat indices among the newest ``valid_count`` entries."""
        u = jax.random.randint(key, (config.batch_size,), 0, jnp.maximum(valid_count, 1))
        return rows * config.num_envs - 1 - u

    def critic_update(carry, key, flat_obs, flat_targets, valid_count):
        params, opt_state = carry
        idx = sample(key, valid_count)

        def loss_fn(p):
            predicted = critic.apply(p, flat_obs[idx])
            return 0.5 * jnp.mean((flat_targets[idx] / scale - predicted) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = critic_tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def actor_update(carry, key, flat_obs, flat_actions, flat_weights, valid_count):
        params, opt_state = carry
        idx = sample(key, valid_count)

        def loss_fn(p):
            out = head(p, flat_obs[idx])
            log_prob = distribution(out).log_prob(flat_actions[idx])
            loss = -jnp.mean(flat_weights[idx] * log_prob)
            if not discrete:  # the authors' penalty on a mean outside the action bounds
                excess = jnp.maximum(jnp.abs(out.mean) - 1.0, 0.0)
                loss = loss + config.bound_penalty * 0.5 * jnp.mean(jnp.sum(excess ** 2, axis=-1))
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = actor_tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def step(state: State):
        key, rollout_key, critic_key, actor_key = jax.random.split(state.key, 4)
        params = state.params

        def act(obs, k):
            return policy(params, obs, k), ()

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act,
                                       config.num_steps)
        buffer = store(state.buffer, traj)
        ordered, valid = chronological(buffer)
        flat = lambda x: x.reshape((rows * config.num_envs,) + x.shape[2:])
        flat_obs = flat(ordered.obs)
        valid_count = buffer.rows * config.num_envs

        # 1. value: TD(lambda) targets with the current V, held fixed over the critic steps
        targets, _ = targets_and_values(params.critic, ordered, obs)
        (critic_params, critic_opt), critic_losses = jax.lax.scan(
            lambda c, k: critic_update(c, k, flat_obs, flat(targets), valid_count),
            (params.critic, state.critic_opt), jax.random.split(critic_key, config.critic_steps))

        # 2. policy: advantages under the new V, weighted regression
        targets, values = targets_and_values(critic_params, ordered, obs)
        advantages = targets - values
        weights = advantage_weights(advantages, valid, config.temperature, config.max_weight)
        (actor_params, actor_opt), actor_losses = jax.lax.scan(
            lambda c, k: actor_update(c, k, flat_obs, flat(ordered.action), flat(weights),
                                      valid_count),
            (params.actor, state.actor_opt), jax.random.split(actor_key, config.actor_steps))

        count = jnp.maximum(valid.sum(), 1.0)
        metrics = {
            "value_loss": jnp.mean(critic_losses), "policy_loss": jnp.mean(actor_losses),
            "advantage_std": jnp.sqrt(jnp.sum(valid * (advantages - jnp.sum(
                valid * advantages) / count) ** 2) / count),
            "weight_mean": jnp.sum(valid * weights) / count,
            "weight_clipped": jnp.sum(valid * (weights >= config.max_weight)) / count,
            "buffer_samples": valid_count.astype(jnp.float32)}
        metrics.update(episode_metrics(traj.info))
        return State(Params(actor_params, critic_params), actor_opt, critic_opt, buffer,
                     env_state, obs, key, state.iteration + 1), metrics

    return Agent(init, step, policy, batch)


ALGORITHM = Algorithm(
    name="awr", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),
    default_budget=500_000,
    hyperparameters=("temperature", "max_weight", "critic_learning_rate",
                     "actor_learning_rate", "action_std"),
)
