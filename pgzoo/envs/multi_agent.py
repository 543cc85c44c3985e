"""Multi-agent tasks behind the batched protocol: JaxMARL (compiled) and PettingZoo's parallel API
(the host bridge). MADDPG's environments.

The protocol is the single-agent one (``protocol``) with one value per agent:

    obs, final_obs          [N, A, d]  when every agent's observation space is the same,
                            else a tuple of per-agent arrays [N, d_i]
    action                  likewise, by the action spaces (integers for a Discrete agent)
    reward                  [N, A]
    terminated, truncated   [N, A]  each agent's own flags

``observation_space`` and ``action_space`` are ``spaces.MultiAgent`` (the agents' names and
spaces). A copy resets when every agent is done; its ``final_obs`` are then the true last
observations. A time limit (MPE's 25 steps) is a truncation, not a termination, as for one agent.
``split_agents`` and ``join_agents`` move between the two layouts, so an algorithm can treat
every task as a list of agents.

The episode statistics (``MultiAgentEpisodeStatistics``) report the return summed over the
agents as ``episode_return`` (what the MADDPG code reports as the episode reward) and each
agent's own in ``info["agent_returns"]``.
"""
from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep
from pgzoo.envs.quiet import quiet_stdout
from pgzoo.envs.wrappers import Wrapper, rescale_action
from pgzoo.errors import PgzooError

AGENT_RETURNS = "agent_returns"  # info entry: {agent name: that agent's episode return [N]}
EXAMPLES = ("jaxmarl:MPE_simple_spread_v3", "jaxmarl:MPE_simple_adversary_v3",
            "jaxmarl:MPE_simple_tag_v3", "jaxmarl:MPE_simple_speaker_listener_v4",
            "pettingzoo:mpe2.simple_spread_v3")


def is_multi_agent(env) -> bool:
    return isinstance(env.action_space, spaces.MultiAgent)


def split_agents(x, space: spaces.MultiAgent, axis: int = 1) -> list:
    """The per-agent values of ``x`` (stacked on ``axis``, or already a tuple)."""
    if space.homogeneous:
        return [jnp.take(x, i, axis=axis) for i in range(len(space.agents))]
    return list(x)


def join_agents(xs, space: spaces.MultiAgent, axis: int = 1):
    """The inverse of ``split_agents``."""
    return jnp.stack(xs, axis=axis) if space.homogeneous else tuple(xs)


def _space(convert, space, where: str) -> spaces.Space:
    try:
        return convert(space)
    except TypeError as err:
        raise PgzooError(f"{where} has a {err} space; pgzoo's multi-agent tasks need Box "
                         "observations and Discrete or Box actions") from None


# --- JaxMARL -------------------------------------------------------------------------------------
class JaxMARLState(NamedTuple):
    inner: Any
    t: jax.Array  # steps into the episode, for telling a time limit from a termination


class JaxMARLEnv(Env):
    """A JaxMARL environment (``jaxmarl.make(name, **options)``), vmapped over ``num_envs``
    copies; runs inside jit like gymnax."""

    jax_native = True

    def __init__(self, name: str, num_envs: int, options: dict):
        try:
            with quiet_stdout():  # it prints about its optional submodules
                import jaxmarl
                import jaxmarl.environments  # noqa: F401
        except ImportError:
            raise PgzooError("jaxmarl environments need jaxmarl: pip install 'pgzoo[marl]'"
                             ) from None
        if name not in jaxmarl.registered_envs:
            mpe = ", ".join(e for e in jaxmarl.registered_envs if e.startswith("MPE"))
            raise PgzooError(f"unknown jaxmarl environment {name!r}; valid: {mpe}, ...")
        try:
            with quiet_stdout():
                self._env = jaxmarl.make(name, **options)
        except TypeError as err:
            raise PgzooError(f"jaxmarl environment {name!r} does not take the options "
                             f"{options}: {err}") from None
        self.spec = f"jaxmarl:{name}" + (
            "@" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
        self.num_envs = num_envs
        agents = tuple(self._env.agents)
        self.observation_space = spaces.MultiAgent(agents, tuple(
            _space(spaces.from_gymnax, self._env.observation_space(a), self.spec) for a in agents))
        self.action_space = spaces.MultiAgent(agents, tuple(
            _space(spaces.from_gymnax, self._env.action_space(a), self.spec) for a in agents))
        if not all(isinstance(s, spaces.Box) for s in self.observation_space.spaces):
            raise PgzooError(f"{self.spec} has Discrete observations; pgzoo's multi-agent tasks "
                             "need Box observations")
        self.max_episode_steps = int(getattr(self._env, "max_steps", 0)) or None

    def _obs(self, obs: dict):
        per_agent = [jnp.asarray(obs[a], jnp.float32) for a in self.observation_space.agents]
        return join_agents(per_agent, self.observation_space, axis=0)

    def _reset_one(self, key):
        obs, state = self._env.reset(key)
        return JaxMARLState(state, jnp.int32(0)), self._obs(obs)

    def reset(self, key):
        state, obs = jax.vmap(self._reset_one)(jax.random.split(key, self.num_envs))
        a = len(self.observation_space.agents)
        false = jnp.zeros((self.num_envs, a), bool)
        return state, TimeStep(obs, jnp.zeros((self.num_envs, a), jnp.float32), false, false,
                               obs, {})

    def _step_one(self, state: JaxMARLState, action, key):
        key_step, key_reset = jax.random.split(key)
        agents = self.action_space.agents
        per_agent = split_agents(action, self.action_space, axis=0)
        actions = {a: (x.astype(jnp.int32) if s.kind == "discrete" else x)
                   for a, x, s in zip(agents, per_agent, self.action_space.spaces)}
        obs, inner, rewards, dones, _ = self._env.step_env(key_step, state.inner, actions)
        obs = self._obs(obs)
        t = state.t + 1
        done = jnp.stack([jnp.asarray(dones[a], bool) for a in agents])
        limit = self.max_episode_steps is not None and t >= self.max_episode_steps
        truncated = done & limit
        terminated = done & ~truncated
        reward = jnp.stack([jnp.asarray(rewards[a], jnp.float32) for a in agents])
        ended = jnp.asarray(dones["__all__"], bool)
        reset_state, reset_obs = self._reset_one(key_reset)
        next_state = jax.tree.map(lambda r, s: jnp.where(ended, r, s), reset_state,
                                  JaxMARLState(inner, t))
        next_obs = jax.tree.map(lambda r, o: jnp.where(ended, r, o), reset_obs, obs)
        return next_state, TimeStep(next_obs, reward, terminated, truncated, obs, {})

    def step(self, state, action, key):
        return jax.vmap(self._step_one)(state, action, jax.random.split(key, self.num_envs))


# --- PettingZoo (host bridge) ----------------------------------------------------------------------
class PettingZooEnv(Env):
    """``num_envs`` copies of a PettingZoo parallel environment (``module.parallel_env(**options)``,
    e.g. ``mpe2.simple_spread_v3``) stepped on the host through ``io_callback``, as the Gymnasium
    bridge does. An agent that leaves before the others gets zero reward and its last observation
    until the episode ends."""

    jax_native = False

    def __init__(self, target: str, num_envs: int, options: dict):
        module_name = target
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise PgzooError(f"cannot import {module_name!r} for pettingzoo:{target}: {err}; "
                             "expected pettingzoo:package.module with a parallel_env(), e.g. "
                             "pettingzoo:mpe2.simple_spread_v3 (pip install 'pgzoo[marl]')"
                             ) from None
        if not callable(getattr(module, "parallel_env", None)):
            raise PgzooError(f"{module_name!r} has no parallel_env(); expected a PettingZoo "
                             "environment module such as mpe2.simple_spread_v3")
        self.spec = f"pettingzoo:{target}" + (
            "@" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
        self.num_envs = num_envs
        self._error: Exception | None = None
        try:
            self._envs = [module.parallel_env(**options) for _ in range(num_envs)]
        except TypeError as err:
            raise PgzooError(f"{self.spec} does not take the options {options}: {err}") from None
        first = self._envs[0]
        first.reset(seed=0)
        agents = tuple(first.possible_agents)
        self._agents = agents
        self.observation_space = spaces.MultiAgent(agents, tuple(
            _space(spaces.from_gymnasium, first.observation_space(a), self.spec)
            for a in agents))
        self.action_space = spaces.MultiAgent(agents, tuple(
            _space(spaces.from_gymnasium, first.action_space(a), self.spec)
            for a in agents))
        self.max_episode_steps = getattr(first.unwrapped, "max_cycles", None)
        n, a = num_envs, len(agents)
        if self.observation_space.homogeneous:
            self._obs_struct = jax.ShapeDtypeStruct((n, *self.observation_space.shape),
                                                    jnp.float32)
        else:
            self._obs_struct = tuple(jax.ShapeDtypeStruct((n, *s.shape), jnp.float32)
                                     for s in self.observation_space.spaces)
        flags = jax.ShapeDtypeStruct((n, a), jnp.bool_)
        self._step_struct = (self._obs_struct, jax.ShapeDtypeStruct((n, a), jnp.float32),
                             flags, flags, self._obs_struct)
        self._last = [dict() for _ in range(num_envs)]

    def host_error(self) -> Exception | None:
        return self._error

    def _guard(self, fn, *args, empty):
        if self._error is None:
            try:
                return fn(*args)
            except Exception as err:
                line = (str(err).strip().splitlines() or [""])[0]
                self._error = PgzooError(f"environment {self.spec!r} raised "
                                         f"{type(err).__name__}: {line}")
        return empty()

    def _layout(self, per_env: list[dict]):
        """Observations of every copy, {agent: obs} each, as the protocol lays them out."""
        per_agent = [np.asarray([obs[a] for obs in per_env], np.float32) for a in self._agents]
        if self.observation_space.homogeneous:
            return np.stack(per_agent, axis=1)
        return tuple(per_agent)

    def _zeros_obs(self):
        return jax.tree.map(lambda s: np.zeros(s.shape, np.float32), self._obs_struct)

    def _reset_all(self, seed):
        for i, env in enumerate(self._envs):
            obs, _ = env.reset(seed=int(seed) + i)
            self._last[i] = {a: np.asarray(obs[a], np.float32) for a in self._agents}
        return self._layout(self._last)

    def _step_all(self, actions):
        per_agent = [np.asarray(x) for x in (
            np.moveaxis(np.asarray(actions), 1, 0) if self.action_space.homogeneous else actions)]
        n, a = self.num_envs, len(self._agents)
        rewards = np.zeros((n, a), np.float32)
        terminated, truncated = np.zeros((n, a), bool), np.zeros((n, a), bool)
        finals, nexts = [], []
        for i, env in enumerate(self._envs):
            live = list(env.agents)
            act = {name: (int(per_agent[j][i]) if s.kind == "discrete" else per_agent[j][i])
                   for j, (name, s) in enumerate(zip(self._agents, self.action_space.spaces))
                   if name in live}
            obs, rew, term, trunc, _ = env.step(act)
            for j, name in enumerate(self._agents):
                if name in obs:
                    self._last[i][name] = np.asarray(obs[name], np.float32)
                rewards[i, j] = float(rew.get(name, 0.0))
                gone = name not in live
                terminated[i, j] = bool(term.get(name, False)) or (gone and not trunc.get(name))
                truncated[i, j] = bool(trunc.get(name, False)) and not terminated[i, j]
            finals.append(dict(self._last[i]))
            if not env.agents or (terminated[i] | truncated[i]).all():
                obs, _ = env.reset()
                self._last[i] = {name: np.asarray(obs[name], np.float32) for name in self._agents}
            nexts.append(dict(self._last[i]))
        if not np.isfinite(rewards).all():
            raise PgzooError("step() returned a non-finite reward; pgzoo needs finite rewards")
        return self._layout(nexts), rewards, terminated, truncated, self._layout(finals)

    def _empty_step(self):
        n, a = self.num_envs, len(self._agents)
        flags = np.zeros((n, a), bool)
        return self._zeros_obs(), np.zeros((n, a), np.float32), flags, flags, self._zeros_obs()

    def reset(self, key):
        seed = jax.random.randint(key, (), 0, 2**30)
        obs = io_callback(lambda s: self._guard(self._reset_all, s, empty=self._zeros_obs),
                          self._obs_struct, seed, ordered=True)
        a = len(self._agents)
        false = jnp.zeros((self.num_envs, a), bool)
        return jnp.zeros((), jnp.int32), TimeStep(obs, jnp.zeros((self.num_envs, a)), false,
                                                  false, obs, {})

    def step(self, state, action, key):
        obs, reward, terminated, truncated, final = io_callback(
            lambda x: self._guard(self._step_all, x, empty=self._empty_step),
            self._step_struct, action, ordered=True)
        return state + 1, TimeStep(obs, reward, terminated, truncated, final, {})

    def close(self) -> None:
        for env in self._envs:
            env.close()


# --- wrappers ----------------------------------------------------------------------------------
class MAEpisodeStatsState(NamedTuple):
    inner: Any
    episode_return: jax.Array  # [N, A]
    episode_length: jax.Array  # [N]


class MultiAgentEpisodeStatistics(Wrapper):
    """``episode_return`` (summed over the agents), ``episode_length`` and ``episode_done`` (every
    agent done) in info, as ``EpisodeStatistics`` gives them for one agent, and each agent's
    return in ``info["agent_returns"]``."""

    def _zeros(self, inner):
        n, a = self.num_envs, len(self.action_space.agents)
        return MAEpisodeStatsState(inner, jnp.zeros((n, a), jnp.float32), jnp.zeros(n, jnp.int32))

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
        done = jnp.all(ts.done, axis=1)
        agent_returns = {a: ret[:, i] for i, a in enumerate(self.action_space.agents)}
        info = dict(ts.info, episode_return=ret.sum(1), episode_length=length,
                    episode_done=done, **{AGENT_RETURNS: agent_returns})
        new = MAEpisodeStatsState(inner, jnp.where(done[:, None], 0.0, ret),
                                  jnp.where(done, 0, length))
        return new, ts._replace(info=info)


class MultiAgentRescaleAction(Wrapper):
    """Every agent with a bounded Box acts in [-1, 1]^d; the environment receives its bounds."""

    def __init__(self, env: Env):
        super().__init__(env)
        space = env.action_space
        unit = [spaces.Box(-np.ones(s.shape), np.ones(s.shape))
                if isinstance(s, spaces.Box) and s.bounded else s for s in space.spaces]
        self.action_space = spaces.MultiAgent(space.agents, tuple(unit))

    def step(self, state, action, key):
        per_agent = split_agents(action, self.env.action_space)
        scaled = [rescale_action(x, jnp.asarray(s.low), jnp.asarray(s.high))
                  if isinstance(s, spaces.Box) and s.bounded else x
                  for x, s in zip(per_agent, self.env.action_space.spaces)]
        return self.env.step(state, join_agents(scaled, self.env.action_space), key)


def render_factory(backend: str, target: str, options: dict):
    """A factory for the PettingZoo parallel twin of a task in rgb_array mode, for videos: the
    module itself (pettingzoo:), or mpe2's version of a JaxMARL MPE task (JaxMARL ported the
    same tasks; its episodes last one step longer)."""
    if backend == "jaxmarl":
        if not target.startswith("MPE_"):
            raise PgzooError(f"jaxmarl:{target} has no PettingZoo twin to render a video with; "
                             "videos work for the MPE tasks")
        options = dict(options)
        continuous = options.pop("action_type", "Discrete") == "Continuous"
        target = "mpe2." + target[len("MPE_"):]
        options = {"continuous_actions": continuous} if continuous else {}
    try:
        module = importlib.import_module(target)
    except ImportError as err:
        raise PgzooError(f"cannot import {target!r} to render a video: {err}") from None

    def factory():
        return module.parallel_env(render_mode="rgb_array", **options)
    return factory


def make_base(backend: str, target: str, num_envs: int, options: dict) -> Env:
    if backend == "jaxmarl":
        return JaxMARLEnv(target, num_envs, options)
    return PettingZooEnv(target, num_envs, options)


def make(backend: str, target: str, num_envs: int, options: dict) -> Env:
    """A batch of a multi-agent task with episode statistics and [-1, 1] actions for bounded
    boxes."""
    env: Env = MultiAgentEpisodeStatistics(make_base(backend, target, num_envs, options))
    if any(isinstance(s, spaces.Box) and s.bounded for s in env.action_space.spaces):
        env = MultiAgentRescaleAction(env)
    return env
