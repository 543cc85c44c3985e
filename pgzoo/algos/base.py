"""The interface every algorithm module provides (see DESIGN.md).

A module in ``pgzoo/algos`` defines:

- ``Config``: a frozen dataclass, each default naming its source;
- ``ACTION_SPACES``: the action-space kinds it supports ("discrete", "continuous");
- ``DEFAULT_TOTAL_STEPS``: the budget of ``pgzoo train`` when none is given;
- optionally ``DEFAULT_ENV``: the environment of ``pgzoo train`` when none is given
  (CartPole-v1 otherwise);
- optionally ``VMAP_SEEDS = False``: ``--seeds`` then compiles one call per seed instead of
  vmapping the seeds (for algorithms whose libraries do not survive vmap);
- ``make(config, env, total_steps) -> Agent``.

Its State is one pytree with at least ``params``, ``env_state`` and ``obs`` fields: the run layer
checkpoints it whole, and on host-bridged environments restarts episodes in it on resume.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax


class Agent(NamedTuple):
    init: Callable[[jax.Array], Any]  # key -> State
    step: Callable[[Any], tuple[Any, dict[str, jax.Array]]]  # State -> (State, scalar metrics)
    policy: Callable[..., jax.Array]  # (params, obs, key, deterministic) -> action
    steps_per_iteration: int  # environment steps consumed by one ``step``
