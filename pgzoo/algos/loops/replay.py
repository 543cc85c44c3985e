"""The training loop shared by the replay-based algorithms (DDPG, TD3, SAC, D4PG; any action
space, so a value-based method needs only its loss and its exploration).

One State step is a block of ``block_size`` environment steps. At each, N environments act with
the algorithm's exploration policy (uniformly random actions while fewer than ``learning_starts``
transitions have been collected: the burn-in), every transition goes into the replay buffer, and
once learning has started the algorithm's ``update`` runs ``gradient_steps`` times (the
update-to-data ratio is gradient_steps / N). Random actions are integers in [0, n) for a
discrete space and uniform in [-1, 1]^d for a box (the environment layer rescales them to the
box's bounds).

Observation normalisation: the buffer stores the observations as the environment gave them, and
a sampled minibatch is normalised with the statistics of the time it is sampled (as
Stable-Baselines3's VecNormalize with its replay buffers), so old and new transitions are seen on
the same scale. The policy acts on observations normalised as the wrapper returns them.

An algorithm supplies:

- ``init_learner(key, obs, action) -> (params, learner)``: ``params`` is what the policy needs
  (checkpointed and evaluated), ``learner`` everything else (targets, optimiser states, counters);
- ``policy(params, obs, key, deterministic)``: the policy (``noisy_deterministic_policy`` or
  ``squashed_gaussian_policy``);
- optionally ``explore(params, obs, noise, key, step) -> (action, noise)``: the behaviour policy
  when it is not ``policy``; ``noise`` is a per-environment state (Ornstein-Uhlenbeck, MADDPG's
  sub-policy of the episode) or ``()``, zeroed where an episode ends; ``step`` counts the
  environment steps taken so far, all environments together (for schedules such as DQN's
  epsilon);
- ``update(params, learner, buffer_state, key, normalize) -> (params, learner, buffer_state,
  stats)``: one gradient step; it samples the buffer itself (uniformly with ``uniform_batch``, or
  prioritised, then ``normalized``) and may write priorities back. ``normalize(obs)`` applies the
  current observation statistics to stored (raw) observations;
- optionally ``train_every``: learn only at every ``train_every``-th step of each environment
  (DQN's train frequency); the update-to-data ratio is then gradient_steps / (N train_every);
- optionally ``random_action(key, N, explored)``, the burn-in actions (``explored``: the
  behaviour policy's, None when only the shape is asked for), and ``env_action(action)``, what
  the environment gets of an action the buffer stores (MADDPG stores a discrete agent's relaxed
  action vector and steps with its argmax). Actions, observations, rewards and done flags may
  be pytrees with an agent axis (the multi-agent tasks of ``pgzoo.envs.multi_agent``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import Agent
from pgzoo.core import replay
from pgzoo.core.distributions import tanh_gaussian_sample
from pgzoo.core.rollout import block_of_steps, episode_metrics
from pgzoo.errors import check


class State(NamedTuple):
    params: Any
    learner: Any
    buffer: Any
    env_state: Any
    obs: jax.Array  # what the policy sees: normalised where the environment normalises
    raw_obs: jax.Array  # the same observations as the environment gave them: what replay stores
    noise: Any
    key: jax.Array
    env_steps: jax.Array  # steps per environment


def raw_observations(ts) -> tuple[jax.Array, jax.Array]:
    """A timestep's (obs, final_obs) before observation normalisation (``NormalizeObservation``
    puts them in ``info``; without it they are the timestep's own)."""
    return ts.info.get("raw_obs", ts.obs), ts.info.get("raw_final_obs", ts.final_obs)


def normalized(batch, normalize: Callable):
    """A sampled batch (``Transition`` or ``NStep``) with ``obs`` and ``next_obs`` normalised."""
    return batch._replace(obs=normalize(batch.obs), next_obs=normalize(batch.next_obs))


def uniform_batch(buffer, buffer_state, key, normalize: Callable) -> replay.Transition:
    """A uniformly sampled minibatch of single transitions, leading axis B, its observations
    normalised with ``normalize``."""
    batch = jax.tree.map(lambda x: x[:, 0], buffer.sample(buffer_state, key).experience)
    return normalized(batch, normalize)


def random_actions(space, key, num_envs: int) -> jax.Array:
    """Burn-in actions: uniform integers in [0, n) (Discrete), uniform in [-1, 1]^d (Box)."""
    if space.kind == "discrete":
        return jax.random.randint(key, (num_envs,), 0, space.n, jnp.int32)
    return jax.random.uniform(key, (num_envs,) + tuple(space.shape), jnp.float32, -1.0, 1.0)


def noisy_deterministic_policy(actor, noise_std: float) -> Callable:
    """mu_theta(s), plus N(0, noise_std) clipped to [-1, 1] unless deterministic."""

    def policy(params, obs, key, deterministic=False):
        action = actor.apply(params["actor"], obs)
        if deterministic:
            return action
        return jnp.clip(action + noise_std * jax.random.normal(key, action.shape), -1.0, 1.0)

    return policy


def squashed_gaussian_policy(actor) -> tuple[Callable, Callable]:
    """The SAC policy: ``sample(actor_params, obs, key) -> (action, log_prob)`` and
    ``policy(params, obs, key, deterministic)``, deterministic meaning tanh(mean)."""

    def sample(actor_params, obs, key):
        mean, log_std = actor.apply(actor_params, obs)
        return tanh_gaussian_sample(mean, log_std, key)

    def policy(params, obs, key, deterministic=False):
        if deterministic:
            return jnp.tanh(actor.apply(params["actor"], obs)[0])
        return sample(params["actor"], obs, key)[0]

    return policy, sample


def check_budget(config, total_steps: int) -> None:
    """A batch comes from the buffer, and a replay run must last long enough to learn: past
    ``learning_starts`` and past one batch."""
    check(config.batch_size <= config.buffer_size, f"batch_size ({config.batch_size}) must not "
          f"exceed buffer_size ({config.buffer_size}): a batch is drawn from the buffer")
    check(config.learning_starts < total_steps and config.batch_size <= total_steps,
          f"total_steps ({total_steps}) must exceed learning_starts ({config.learning_starts}) "
          f"and batch_size ({config.batch_size}), or the run never learns")


def make_agent(env, config, buffer, init_learner: Callable, update: Callable, policy: Callable,
               explore: Callable | None = None,
               init_noise: Callable[[int], Any] = lambda n: (), train_every: int = 1,
               random_action: Callable | None = None,
               env_action: Callable = lambda action: action) -> Agent:
    num_envs = config.num_envs
    if explore is None:
        def explore(params, obs, noise, key, step):
            return policy(params, obs, key), noise

    if random_action is None:
        def random_action(key, num_envs, explored=None):
            return random_actions(env.action_space, key, num_envs)

    def init(key):
        env_key, learner_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        raw_obs = raw_observations(ts)[0]
        action = jax.tree.map(jnp.zeros_like, random_action(key, num_envs))  # dtype, shape
        params, learner = init_learner(learner_key, ts.obs, action)
        first = jax.tree.map(lambda x: x[0], (raw_obs, action, ts.reward, ts.terminated))
        example = replay.Transition(first[0], first[1], jnp.zeros_like(first[2]), first[0],
                                    jnp.zeros_like(first[3]), jnp.zeros_like(first[3]))
        return State(params, learner, buffer.init(example), env_state, ts.obs, raw_obs,
                     init_noise(num_envs), state_key, jnp.int32(0))

    def with_env(state: State, env_state, obs):
        """Fresh episodes (a resumed host-bridged run): ``obs`` comes normalised."""
        return state._replace(env_state=env_state, obs=obs,
                              raw_obs=env.denormalize_obs(env_state, obs))

    def learn(state: State, key):
        # the statistics of now, after this step's observations entered them
        def normalize(obs):
            return env.normalize_obs(state.env_state, obs)

        def one(carry, k):
            params, learner, buffer_state = carry
            params, learner, buffer_state, stats = update(params, learner, buffer_state, k,
                                                          normalize)
            return (params, learner, buffer_state), stats

        (params, learner, buffer_state), stats = jax.lax.scan(
            one, (state.params, state.learner, state.buffer),
            jax.random.split(key, config.gradient_steps))
        state = state._replace(params=params, learner=learner, buffer=buffer_state)
        return state, jax.tree.map(jnp.nanmean, stats)

    def env_step(state: State, key):
        act_key, random_key, env_key, learn_key = jax.random.split(key, 4)
        burn_in = state.env_steps * num_envs < config.learning_starts
        action, noise = explore(state.params, state.obs, state.noise, act_key,
                                state.env_steps * num_envs)
        random = random_action(random_key, num_envs, action)
        action = jax.tree.map(lambda r, a: jnp.where(burn_in, r, a).astype(r.dtype), random,
                              action)
        env_state, ts = env.step(state.env_state, env_action(action), env_key)
        ended = ts.info.get("episode_done", ts.done)  # [N]: every agent's episode over
        noise = jax.tree.map(lambda n: jnp.where(
            ended.reshape((-1,) + (1,) * (n.ndim - 1)), jnp.zeros_like(n), n), noise)
        raw_obs, raw_final_obs = raw_observations(ts)
        buffer_state = replay.add(buffer, state.buffer, replay.Transition(
            state.raw_obs, action, ts.reward, raw_final_obs, ts.terminated, ts.done))
        state = state._replace(buffer=buffer_state, env_state=env_state, obs=ts.obs,
                               raw_obs=raw_obs, noise=noise, env_steps=state.env_steps + 1)
        can_learn = ((state.env_steps * num_envs >= config.learning_starts)
                     & buffer.can_sample(buffer_state) & (state.env_steps % train_every == 0))
        stats_shape = jax.eval_shape(lambda s: learn(s, learn_key)[1], state)

        def wait(state, key):
            return state, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), stats_shape)

        state, stats = jax.lax.cond(can_learn, learn, wait, state, learn_key)
        return state, {**stats, **episode_metrics(ts.info)}

    step = block_of_steps(env_step, config.block_size)
    return Agent(init, step, policy, config.block_size * num_envs, with_env=with_env)
