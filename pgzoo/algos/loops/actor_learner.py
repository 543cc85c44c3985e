r"""The actor-learner loop (A3C, IMPALA) in one process, as one compiled step.

W actors each hold E environments and the parameters they last received, \theta_w of learner
version v_w. One State step is one round:

1. every actor plays T steps of its environments with its own \theta_w (one batched rollout of
   W x E environments, each slice acting with its actor's parameters) and makes its message
   (``ActorLearner.message``: a trajectory for IMPALA, a gradient for A3C);
2. the learner applies the W messages in order, ``messages_per_update`` B at a time (W / B
   updates); a message made with version v_w and used at learner version u is u - v_w
   versions stale (the metric ``staleness``);
3. every actor receives the learner's new parameters, or, with ``lag``, those it had before the
   round (actors that played while the learner learned). With ``reuse`` = M > 1 (distributed
   PPO) steps 2 and 3 repeat M times on the round's trajectories, each message made with the
   newest parameters.

With B = 1 (A3C) the messages of one round are applied to parameters newer than those they were
computed with, as asynchronous workers' are: actor w's is w versions stale. IMPALA (B = W,
with ``lag``) learns from each round's trajectories as one batch, made one version behind the
learner after the first round. The Ray driver (``pgzoo.distributed``) runs the same ``act``, ``message`` and
``learn`` in separate processes, where the order and the staleness come from real timing;
``unroll`` is the actor's side of both.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pgzoo.algos.base import ActorLearner, Agent
from pgzoo.core.rollout import episode_metrics, rollout
from pgzoo.errors import check

STALENESS = "staleness"  # policy versions a message's parameters were behind the learner


class State(NamedTuple):
    learner: Any
    actor_params: Any  # [W, ...] the parameters each actor last received
    actor_versions: jax.Array  # [W] the learner version of those parameters
    version: jax.Array  # the learner's update count
    env_state: Any  # W x E environments, actor w's are the slice [w E, (w + 1) E)
    obs: jax.Array
    key: jax.Array

    @property
    def params(self):
        return self.learner.params


def unroll(al: ActorLearner, env, params, env_state, obs, key):
    """One actor's part: ``unroll_length`` steps of its environments acting with ``params``.
    Returns (env_state, obs, the trajectory, its episode sums); ``al.message(params, trajectory,
    obs)`` makes the message (``al.reuse`` times from one trajectory)."""
    env_state, last_obs, traj = rollout(env, env_state, obs, key,
                                        lambda o, k: al.act(params, o, k), al.unroll_length)
    return env_state, last_obs, traj, episode_metrics(traj.info)


def make_actor_learner(al: ActorLearner, env, lag: bool = False) -> Agent:
    """The compiled single-process Agent of an actor-learner algorithm (module docstring);
    with ``lag`` the actors receive the parameters the learner had before the round's updates,
    as actors that played while the learner was learning do."""
    W, E, T, B = al.num_actors, al.envs_per_actor, al.unroll_length, al.messages_per_update
    check(W % B == 0, f"num_actors ({W}) must be a multiple of the messages per update ({B})")
    # a synchronous learner drops the stragglers' gradients, which one compiled round has none of
    check(al.max_staleness != 0 or B == W, f"the compiled form of a synchronous algorithm uses "
          f"every actor's message (messages_per_update = num_actors = {W}); waiting for the "
          f"first {B} of them needs the ray driver")

    def by_actor(x):
        """[W E, ...] -> [W, E, ...]"""
        return x.reshape((W, E) + x.shape[1:])

    def init(key):
        env_key, learner_key, key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        learner = al.learner_init(learner_key)
        params = learner.params
        actor_params = jax.tree.map(lambda x: jnp.stack([x] * W), params)
        return State(learner, actor_params, jnp.zeros(W, jnp.int32), jnp.int32(0), env_state,
                     ts.obs, key)

    def policy(params, obs, key, deterministic=False):
        return al.act(params, obs, key, deterministic)[0]

    def act_all(actor_params, obs, key):
        """Each actor's slice of the environments acts with that actor's parameters."""
        keys = jax.random.split(key, W)
        action, extras = jax.vmap(al.act)(actor_params, by_actor(obs), keys)
        return jax.tree.map(lambda x: x.reshape((W * E,) + x.shape[2:]), (action, extras))

    def step(state: State):
        key, rollout_key = jax.random.split(state.key)
        env_state, last_obs, traj = rollout(
            env, state.env_state, state.obs, rollout_key,
            lambda o, k: act_all(state.actor_params, o, k), T)
        # [T, W E, ...] -> [W, T, E, ...]: each actor's trajectory
        per_actor = jax.tree.map(lambda x: jnp.swapaxes(x.reshape((T, W, E) + x.shape[2:]), 0, 1),
                                 traj)
        def update(carry, group):
            learner, version = carry
            batch, made_with = group
            learner, metrics = al.learn(learner, batch)
            metrics[STALENESS] = jnp.mean(version - made_with).astype(jnp.float32)
            return (learner, version + 1), metrics

        def one_use(carry, _):
            """Every actor's message from the round's trajectories, with the parameters it
            holds; the learner's W / B updates; the actors receive the new parameters."""
            learner, version, actor_params, actor_versions = carry
            messages = jax.vmap(al.message)(actor_params, per_actor, by_actor(last_obs))
            groups = jax.tree.map(lambda x: x.reshape((W // B, B) + x.shape[1:]),
                                  (messages, actor_versions))
            (learner, version), metrics = jax.lax.scan(update, (learner, version), groups)
            actor_params = jax.tree.map(lambda x: jnp.stack([x] * W), learner.params)
            return (learner, version, actor_params, jnp.full(W, version)), metrics

        (learner, version, _, _), metrics = jax.lax.scan(
            one_use, (state.learner, state.version, state.actor_params, state.actor_versions),
            None, length=al.reuse)
        metrics = {k: jnp.mean(v) for k, v in metrics.items()}
        metrics.update(episode_metrics(traj.info))
        sent, sent_version = ((state.learner.params, state.version) if lag
                              else (learner.params, version))
        actor_params = jax.tree.map(lambda x: jnp.stack([x] * W), sent)
        return State(learner, actor_params, jnp.full(W, sent_version), version, env_state,
                     last_obs, key), metrics

    def with_params(state: State, params):
        learner = state.learner._replace(params=params)
        return state._replace(learner=learner,
                              actor_params=jax.tree.map(lambda x: jnp.stack([x] * W), params))

    return Agent(init, step, policy, W * E * T, with_params=with_params, actor_learner=al)
