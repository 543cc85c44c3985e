"""Functional wrappers over the batched protocol. Each keeps its own state beside the inner one,
so everything a wrapper learns (normalisation statistics) is part of the checkpointed State.

Order used by ``make``: backend -> EpisodeStatistics -> ClipReward (Atari) -> ScaleImage (images)
-> OneHotObservation (discrete observations) -> RescaleAction -> NormalizeObservation ->
NormalizeReward, so episode statistics always report the raw return of the task.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env


class Wrapper(Env):
    def __init__(self, env: Env):
        self.env = env
        self.num_envs = env.num_envs
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.jax_native = env.jax_native
        self.spec = env.spec
        self.max_episode_steps = env.max_episode_steps

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    def host_error(self) -> Exception | None:
        return self.env.host_error()

    def tabular_model(self):
        return self.env.tabular_model()

    # Stateless wrappers keep the inner state as their own; stateful ones override these.
    def reset(self, key):
        return self.env.reset(key)

    def step(self, state, action, key):
        return self.env.step(state, action, key)

    def resume(self, state, key):
        return self.env.resume(state, key)

    def normalize_obs(self, state, obs):
        return self.env.normalize_obs(state, obs)

    def denormalize_obs(self, state, obs):
        return self.env.denormalize_obs(state, obs)


# --- episode statistics ------------------------------------------------------------------------
class EpisodeStatsState(NamedTuple):
    inner: Any
    episode_return: jax.Array  # running return of the current episode, [N]
    episode_length: jax.Array  # [N]


class EpisodeStatistics(Wrapper):
    """Adds ``episode_return``, ``episode_length`` (valid where ``done``) and ``done`` to info."""

    def _zeros(self, inner):
        n = self.num_envs
        return EpisodeStatsState(inner, jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.int32))

    def reset(self, key):
        inner, ts = self.env.reset(key)
        return self._zeros(inner), ts

    def resume(self, state, key):
        inner, ts = self.env.resume(state.inner, key)
        return self._zeros(inner), ts

    def step(self, state, action, key):
        inner, ts = self.env.step(state.inner, action, key)
        ret = state.episode_return + ts.reward
        length = state.episode_length + 1
        done = ts.done
        info = dict(ts.info, episode_return=ret, episode_length=length, episode_done=done)
        new = EpisodeStatsState(inner, jnp.where(done, 0.0, ret), jnp.where(done, 0, length))
        return new, ts._replace(info=info)

    def normalize_obs(self, state, obs):
        return self.env.normalize_obs(state.inner, obs)

    def denormalize_obs(self, state, obs):
        return self.env.denormalize_obs(state.inner, obs)


# --- observations ------------------------------------------------------------------------------
class ObservationWrapper(Wrapper):
    """A fixed function of each observation (``_encode``), the final one included."""

    def _encode(self, obs):
        raise NotImplementedError

    def _out(self, ts):
        return ts._replace(obs=self._encode(ts.obs), final_obs=self._encode(ts.final_obs))

    def reset(self, key):
        state, ts = self.env.reset(key)
        return state, self._out(ts)

    def resume(self, state, key):
        state, ts = self.env.resume(state, key)
        return state, self._out(ts)

    def step(self, state, action, key):
        state, ts = self.env.step(state, action, key)
        return state, self._out(ts)


class OneHotObservation(ObservationWrapper):
    """A discrete observation (a state index) as its one-hot vector, for the deep algorithms."""

    def __init__(self, env: Env):
        super().__init__(env)
        n = env.observation_space.n
        self.observation_space = spaces.Box(np.zeros(n, np.float32), np.ones(n, np.float32))

    def _encode(self, obs):
        return jax.nn.one_hot(obs.astype(jnp.int32), self.env.observation_space.n)


def is_image(space) -> bool:
    """An image observation to scale: [H, W, C] with bounds 0 and more than 1 (Atari's 0..255)."""
    return (isinstance(space, spaces.Box) and len(space.shape) == 3 and space.bounded
            and float(space.low.min()) == 0.0 and float(space.high.max()) > 1.0)


class ScaleImage(ObservationWrapper):
    """Pixels in [0, high] divided by high: the networks see images in [0, 1]."""

    def __init__(self, env: Env):
        super().__init__(env)
        space = env.observation_space
        self.scale = float(space.high.max())
        self.observation_space = spaces.Box(space.low / self.scale, space.high / self.scale)

    def _encode(self, obs):
        return obs / self.scale


def image_scale(env: Env) -> float:
    """What ``ScaleImage`` divides ``env``'s observations by (1 where there is none): a policy
    given a Gymnasium frame in 0..255 divides it as training did."""
    while isinstance(env, Wrapper):
        if isinstance(env, ScaleImage):
            return env.scale
        env = env.env
    return 1.0


# --- rewards -----------------------------------------------------------------------------------
class ClipReward(Wrapper):
    """The reward's sign, -1, 0 or 1 (Mnih et al. 2015, for Atari); placed after
    ``EpisodeStatistics``, which reports the unclipped return."""

    def step(self, state, action, key):
        state, ts = self.env.step(state, action, key)
        return state, ts._replace(reward=jnp.sign(ts.reward))


# --- actions -----------------------------------------------------------------------------------
def rescale_action(action, low, high):
    """Map an action in [-1, 1] (clipped first) to the box [low, high]."""
    action = jnp.clip(action, -1.0, 1.0)
    return low + 0.5 * (action + 1.0) * (high - low)


class RescaleAction(Wrapper):
    """For a bounded Box: the agent acts in [-1, 1]^d, the environment receives [low, high]^d."""

    def __init__(self, env: Env):
        super().__init__(env)
        box = env.action_space
        self._low, self._high = jnp.asarray(box.low), jnp.asarray(box.high)
        self.action_space = spaces.Box(-np.ones(box.shape), np.ones(box.shape))

    def step(self, state, action, key):
        return self.env.step(state, rescale_action(action, self._low, self._high), key)


# --- observation normalisation -----------------------------------------------------------------
class RunningMeanStd(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> RunningMeanStd:
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                   jnp.asarray(1e-4, jnp.float32))

    @classmethod
    def of(cls, batch) -> RunningMeanStd:
        """The statistics of a batch along axis 0 (NumPy or JAX arrays)."""
        xp = jnp if isinstance(batch, jax.Array) else np
        return cls(batch.mean(0), batch.var(0), xp.asarray(batch.shape[0], xp.float32))

    def merge(self, other: RunningMeanStd) -> RunningMeanStd:
        """Chan et al.'s parallel combination: the statistics of both samples together."""
        delta = other.mean - self.mean
        total = self.count + other.count
        mean = self.mean + delta * other.count / total
        m2 = self.var * self.count + other.var * other.count + delta**2 * self.count * other.count / total
        return RunningMeanStd(mean, m2 / total, total)

    def update(self, batch: jax.Array) -> RunningMeanStd:
        """The statistics with a batch along axis 0 added."""
        return self.merge(RunningMeanStd.of(batch))


class NormObsState(NamedTuple):
    inner: Any
    stats: RunningMeanStd


def observation_stats(env_state) -> RunningMeanStd | None:
    """The running statistics a NormalizeObservation keeps in ``env_state``, or None when the
    environment does not normalise its observations."""
    found = [x.stats for x in jax.tree.leaves(env_state, is_leaf=_is_norm_obs)
             if isinstance(x, NormObsState)]
    return found[0] if found else None


def with_observation_stats(env_state, stats: RunningMeanStd | None):
    """``env_state`` normalising with ``stats`` (unchanged when ``stats`` is None): how the
    actors of the Ray driver share one set of statistics."""
    if stats is None:
        return env_state
    return jax.tree.map(lambda x: x._replace(stats=stats) if isinstance(x, NormObsState) else x,
                        env_state, is_leaf=_is_norm_obs)


def _is_norm_obs(x) -> bool:
    return isinstance(x, NormObsState)


class NormalizeObservation(Wrapper):
    """obs <- clip((obs - mean) / sqrt(var + eps), -clip, clip) with running statistics.

    The observations as they came in stay available in ``info["raw_obs"]`` and
    ``info["raw_final_obs"]``: a replay buffer stores those and normalises when it samples."""

    def __init__(self, env: Env, clip: float = 10.0, eps: float = 1e-8):
        super().__init__(env)
        self.clip, self.eps = clip, eps

    def _apply(self, stats, obs):
        return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + self.eps), -self.clip, self.clip)

    def _out(self, stats, ts):
        info = {"raw_obs": ts.obs, "raw_final_obs": ts.final_obs, **ts.info}  # inner ones win
        return ts._replace(obs=self._apply(stats, ts.obs), final_obs=self._apply(stats, ts.final_obs),
                           info=info)

    def reset(self, key):
        inner, ts = self.env.reset(key)
        stats = RunningMeanStd.create(self.observation_space.shape).update(ts.obs)
        return NormObsState(inner, stats), self._out(stats, ts)

    def resume(self, state, key):
        inner, ts = self.env.resume(state.inner, key)
        return NormObsState(inner, state.stats), self._out(state.stats, ts)

    def step(self, state, action, key):
        inner, ts = self.env.step(state.inner, action, key)
        stats = state.stats.update(ts.obs)
        return NormObsState(inner, stats), self._out(stats, ts)

    def normalize_obs(self, state, obs):
        return self._apply(state.stats, self.env.normalize_obs(state.inner, obs))

    def denormalize_obs(self, state, obs):
        raw = obs * jnp.sqrt(state.stats.var + self.eps) + state.stats.mean
        return self.env.denormalize_obs(state.inner, raw)


# --- reward scaling ----------------------------------------------------------------------------
class NormRewardState(NamedTuple):
    inner: Any
    discounted_return: jax.Array  # [N]
    stats: RunningMeanStd  # statistics of the discounted return


class NormalizeReward(Wrapper):
    """r <- clip(r / sqrt(Var[G] + eps)), G the running discounted return (as in Gymnasium)."""

    def __init__(self, env: Env, gamma: float = 0.99, clip: float = 10.0, eps: float = 1e-8):
        super().__init__(env)
        self.gamma, self.clip, self.eps = gamma, clip, eps

    def reset(self, key):
        inner, ts = self.env.reset(key)
        return NormRewardState(inner, jnp.zeros(self.num_envs, jnp.float32),
                               RunningMeanStd.create(())), ts

    def resume(self, state, key):
        inner, ts = self.env.resume(state.inner, key)
        return state._replace(inner=inner, discounted_return=jnp.zeros_like(state.discounted_return)), ts

    def step(self, state, action, key):
        inner, ts = self.env.step(state.inner, action, key)
        ret = state.discounted_return * self.gamma + ts.reward
        stats = state.stats.update(ret)
        reward = jnp.clip(ts.reward / jnp.sqrt(stats.var + self.eps), -self.clip, self.clip)
        new = NormRewardState(inner, jnp.where(ts.done, 0.0, ret), stats)
        return new, ts._replace(reward=reward)

    def normalize_obs(self, state, obs):
        return self.env.normalize_obs(state.inner, obs)

    def denormalize_obs(self, state, obs):
        return self.env.denormalize_obs(state.inner, obs)
