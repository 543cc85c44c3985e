"""Policies restored from runs, and evaluation on any backend.

A ``Policy`` carries an agent's parameters together with the observation statistics of its
training environment, so it sees observations as it saw them in training. ``policy(obs)`` takes a
raw observation (a Gymnasium frame in 0..255 is scaled to [0, 1] as in training) and returns the action in the environment's own action space (rescaled to the
box's bounds); ``policy.act`` is the pure JAX function that pgzoo's environments call.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import envs
from pgzoo.errors import PgzooError, check


class Policy:
    def __init__(self, algo: str, env_spec: str, config: Any, agent, train_env, params,
                 env_state):
        self.algo, self.env_spec, self.config = algo, env_spec, config
        self._agent, self._train_env = agent, train_env
        self.params = (params, env_state)
        self.action_space = train_env.unwrapped.action_space
        # a tabular method sees the state index; every other a discrete observation one-hot
        self.one_hot = not isinstance(train_env.observation_space, envs.Discrete)
        self.image_scale = envs.image_scale(train_env)  # ``act`` takes make()'s scaled images
        self._jit_act = jax.jit(self.act, static_argnames="deterministic")

    def act(self, params, obs, key, deterministic: bool = True):
        """Pure: (params, batch of raw observations, key) -> actions in the agent's space."""
        agent_params, env_state = params
        obs = self._train_env.normalize_obs(env_state, obs)
        return self._agent.policy(agent_params, obs, key, deterministic)

    def __call__(self, obs, key: jax.Array | None = None, deterministic: bool = True):
        """One observation (or a batch) -> NumPy action(s) for the Gymnasium environment; for
        a multi-agent task {agent: observation} -> {agent: action}, as PettingZoo's parallel
        API takes them."""
        key = jax.random.PRNGKey(0) if key is None else key
        if isinstance(self.action_space, envs.MultiAgent):
            return self._call_agents(obs, key, deterministic)
        shape = tuple(self._train_env.observation_space.shape)
        try:
            obs = jnp.asarray(obs, jnp.float32)
        except (TypeError, ValueError):
            raise PgzooError(f"a policy takes an observation array of shape {shape} or a batch "
                             f"(N, {', '.join(map(str, shape))}), got {type(obs).__name__}"
                             ) from None
        if obs.shape[-len(shape):] != shape or obs.ndim not in (len(shape), len(shape) + 1):
            raise PgzooError(f"a policy of {self.env_spec} takes an observation of shape {shape} "
                             f"or a batch (N, {', '.join(map(str, shape))}), got shape "
                             f"{tuple(obs.shape)}")
        single = obs.ndim == len(shape)
        batch = (obs[None] if single else obs) / self.image_scale
        action = self._jit_act(self.params, batch, key, deterministic=deterministic)
        if isinstance(self.action_space, envs.Box) and self.action_space.bounded:
            action = envs.rescale_action(action, self.action_space.low, self.action_space.high)
        action = np.asarray(action)
        return action[0] if single else action


    def _call_agents(self, obs, key, deterministic: bool):
        from pgzoo.envs.multi_agent import join_agents, split_agents

        obs_space = self._train_env.observation_space
        agents = obs_space.agents
        if not isinstance(obs, dict) or set(obs) != set(agents):
            raise PgzooError(f"a policy of {self.env_spec} takes a dict of observations, one per "
                             f"agent ({', '.join(agents)}), got "
                             f"{sorted(obs) if isinstance(obs, dict) else type(obs).__name__}")
        per_agent = []
        for name, space in zip(agents, obs_space.spaces):
            o = jnp.asarray(obs[name], jnp.float32)
            if o.shape != tuple(space.shape):
                raise PgzooError(f"agent {name!r} of {self.env_spec} observes shape "
                                 f"{tuple(space.shape)}, got {tuple(o.shape)}")
            per_agent.append(o[None])
        action = self._jit_act(self.params, join_agents(per_agent, obs_space), key,
                               deterministic=deterministic)
        out = {}
        for name, a, space in zip(agents, split_agents(action, self.action_space),
                                  self.action_space.spaces):
            if isinstance(space, envs.Box) and space.bounded:
                a = envs.rescale_action(a, space.low, space.high)
            out[name] = np.asarray(a)[0] if isinstance(space, envs.Box) else int(a[0])
        return out


class EvalCarry(NamedTuple):
    env_state: Any
    obs: jax.Array
    key: jax.Array
    finished: jax.Array
    returns: jax.Array
    lengths: jax.Array
    t: jax.Array


def run_episodes(env, act, params, key, max_steps: int, deterministic: bool = True):
    """Play one episode in each of ``env.num_envs`` environments; returns (returns, lengths)."""
    reset_key, key = jax.random.split(key)
    env_state, ts = env.reset(reset_key)
    n = env.num_envs

    def cond(c: EvalCarry):
        return jnp.logical_and(~jnp.all(c.finished), c.t < max_steps)

    def body(c: EvalCarry):
        key, act_key, env_key = jax.random.split(c.key, 3)
        action = act(params, c.obs, act_key, deterministic)
        env_state, ts = env.step(c.env_state, action, env_key)
        ended = jnp.logical_and(ts.info["episode_done"], ~c.finished)
        return EvalCarry(env_state, ts.obs, key, c.finished | ended,
                         jnp.where(ended, ts.info["episode_return"], c.returns),
                         jnp.where(ended, ts.info["episode_length"], c.lengths), c.t + 1)

    start = EvalCarry(env_state, ts.obs, key, jnp.zeros(n, bool), jnp.zeros(n, jnp.float32),
                      jnp.zeros(n, jnp.int32), jnp.int32(0))
    out = jax.lax.while_loop(cond, body, start)
    return out.returns, out.lengths


def _summary(returns: np.ndarray, lengths: np.ndarray) -> dict[str, Any]:
    return {"episodes": int(returns.size), "mean_return": float(returns.mean()),
            "std_return": float(returns.std()), "mean_length": float(lengths.mean()),
            "returns": [float(r) for r in returns]}


def evaluate(policy: Policy, env: str | None = None, episodes: int = 10, seed: int = 0,
             deterministic: bool = True) -> dict[str, Any]:
    """Mean and spread of the return of ``episodes`` episodes, one per parallel environment."""
    check(isinstance(episodes, int) and not isinstance(episodes, bool)
          and 1 <= episodes <= 100_000, f"episodes must be an integer in [1, 100000], got "
          f"{episodes!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**31,
          f"seed must be an integer in [0, {2**31 - 1}], got {seed!r}")
    eval_env = envs.make(env or policy.env_spec, num_envs=episodes, one_hot=policy.one_hot)
    _check_compatible(policy, eval_env)
    max_steps = (eval_env.max_episode_steps or 10_000) + 1
    run = jax.jit(run_episodes, static_argnums=(0, 1, 4, 5))
    returns, lengths = jax.device_get(run(eval_env, policy.act, policy.params,
                                          jax.random.PRNGKey(seed), max_steps, deterministic))
    if eval_env.host_error() is not None:
        raise PgzooError(f"evaluation failed: {eval_env.host_error()}")
    return _summary(np.asarray(returns), np.asarray(lengths))


def evaluate_members(policy: Policy, stacked_params, episodes: int,
                     seeds: list[int]) -> list[dict]:
    """Evaluate the policies of several members on a JAX-native environment, member m with
    ``PRNGKey(seeds[m])``, one member at a time inside one compiled call (``lax.map``), so that a
    member's result does not depend on the others."""
    return MemberEvaluator(policy, episodes)(stacked_params, seeds)


class MemberEvaluator:
    """``evaluate_members``, compiled once for repeated use (evaluation during training): a
    separate batch of ``episodes`` environments, deterministic actions. With ``salt``, member m
    plays from ``fold_in(PRNGKey(seeds[m]), salt)``, so each evaluation sees other episodes."""

    def __init__(self, policy: Policy, episodes: int):
        self.env = envs.make(policy.env_spec, num_envs=episodes, one_hot=policy.one_hot)
        max_steps = (self.env.max_episode_steps or 10_000) + 1

        def one(args):
            params, seed, salt = args
            key = jax.random.PRNGKey(seed)
            key = jax.lax.cond(salt >= 0, lambda: jax.random.fold_in(key, salt), lambda: key)
            return run_episodes(self.env, policy.act, params, key, max_steps)

        self._run = jax.jit(lambda p, s, t: jax.lax.map(one, (p, s, t)))

    def __call__(self, stacked_params, seeds: list[int], salt: int = -1) -> list[dict]:
        seeds_ = jnp.asarray(seeds, jnp.uint32)
        salts = jnp.full(len(seeds), salt, jnp.int32)
        returns, lengths = jax.device_get(self._run(stacked_params, seeds_, salts))
        if self.env.host_error() is not None:
            raise PgzooError(f"evaluation failed: {self.env.host_error()}")
        return [_summary(r, l) for r, l in zip(np.asarray(returns), np.asarray(lengths))]


def _check_compatible(policy: Policy, env) -> None:
    def observations(space):
        return f"{space.n} states" if space.kind == "discrete" else str(space.shape)

    space, want = env.observation_space, policy._train_env.observation_space
    actions, want_actions = env.unwrapped.action_space, policy.action_space
    if (observations(space) != observations(want) or actions.kind != want_actions.kind
            or (actions.kind == "discrete" and actions.n != want_actions.n)):
        raise PgzooError(f"environment {env.spec!r} (observations {observations(space)}, "
                         f"{actions.kind} actions) does not match the policy's "
                         f"{policy.env_spec!r} (observations {observations(want)}, "
                         f"{want_actions.kind} actions)")
