r"""Replay buffers that live inside the compiled training loop (on flashbax).

Every environment step of N parallel environments adds one ``Transition`` per environment; the
buffer keeps, for each environment, a ring of the last ``capacity // N`` steps (the oldest are
overwritten) and samples sequences of ``n_step`` consecutive steps of one environment.

- uniform: every stored sequence is equally likely;
- prioritised, proportional (Schaul et al. 2016): P(i) = p_i^\alpha / \sum_k p_k^\alpha, with the
  importance weights  w_i = (N_{stored} P(i))^{-\beta} / \max_j w_j                -> ``importance_weights``
  and \beta annealed linearly to 1 (``beta_schedule``); priorities are set from TD errors with
  ``set_priorities`` (flashbax keeps them in a sum tree);
- n-step: a sampled sequence becomes one transition                              -> ``n_step_transition``

      R^{(n)} = \sum_{i=0}^{k} \gamma^i r_i,   next = s'_k,   discount = \gamma^{k+1} (1 - terminated_k)

  where k is the first step of the sequence at which the episode ended (terminated or truncated),
  or n - 1; at a truncation the target still bootstraps from V(s'_k).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import flashbax
import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array  # the true next observation (final_obs at an auto-reset)
    terminated: jax.Array
    done: jax.Array  # terminated or truncated: the sequence must not look past it


class NStep(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # R^(n)
    next_obs: jax.Array
    discount: jax.Array  # gamma^(k+1), or 0 after a termination


def make(capacity: int, batch_size: int, num_envs: int, n_step: int = 1,
         prioritised: bool = False, alpha: float = 0.6):
    """A flashbax trajectory buffer of ``capacity`` transitions in all (``capacity // num_envs``
    per environment) that samples ``batch_size`` sequences of ``n_step`` steps."""
    kwargs = dict(add_batch_size=num_envs, sample_batch_size=batch_size,
                  sample_sequence_length=n_step, period=1, min_length_time_axis=n_step,
                  max_length_time_axis=max(capacity // num_envs, n_step + 1))
    if prioritised:
        return flashbax.make_prioritised_trajectory_buffer(priority_exponent=alpha, **kwargs)
    return flashbax.make_trajectory_buffer(**kwargs)


def add(buffer, state, transition: Transition):
    """Add one step of every environment (leading axis N) to the buffer."""
    return buffer.add(state, jax.tree.map(lambda x: x[:, None], transition))


def n_step_transition(seq: Transition, gamma: float) -> NStep:
    """Fold sequences [B, n, ...] into n-step transitions (see the module docstring)."""
    n = seq.reward.shape[1]
    done = seq.done.astype(jnp.float32)
    # alive_i = 1 while no episode end happened strictly before step i of the sequence
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:, :1]), 1.0 - done[:, :-1]], 1), 1)
    discounts = gamma ** jnp.arange(n, dtype=jnp.float32)
    reward = jnp.sum(alive * discounts * seq.reward, axis=1)
    # k: the last step that counts (the first end, or n - 1)
    k = jnp.sum(alive, axis=1).astype(jnp.int32) - 1
    pick = lambda x: jnp.take_along_axis(  # noqa: E731
        x, k.reshape((-1,) + (1,) * (x.ndim - 1)), axis=1)[:, 0]
    discount = gamma ** (k + 1).astype(jnp.float32) * (1.0 - pick(seq.terminated).astype(jnp.float32))
    return NStep(seq.obs[:, 0], seq.action[:, 0], reward, pick(seq.next_obs), discount)


def importance_weights(probabilities, num_stored, beta):
    """w_i = (N P(i))^-beta, normalised by the largest weight in the batch.

    A sum-tree draw can land, by rounding, on an item of priority 0 (not yet valid); it gets
    weight 0."""
    valid = probabilities > 0
    w = jnp.where(valid, (num_stored * jnp.where(valid, probabilities, 1.0)) ** (-beta), 0.0)
    return w / jnp.maximum(jnp.max(w), 1e-12)


def beta_schedule(beta0: float, total_updates: int):
    """beta annealed linearly from beta0 to 1 over ``total_updates`` updates."""

    def beta(update: Any):
        frac = jnp.clip(update / max(total_updates, 1), 0.0, 1.0)
        return beta0 + frac * (1.0 - beta0)

    return beta


def num_stored(state) -> jax.Array:
    """Transitions currently held (all environments)."""
    per_env = jnp.where(state.is_full, state.experience.reward.shape[1], state.current_index)
    return per_env * state.experience.reward.shape[0]
