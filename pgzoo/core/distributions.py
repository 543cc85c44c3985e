"""Policy distributions by action-space kind, on distrax.

``policy_head(space)`` gives the network head for a space; ``distribution(space, head_output)``
turns that head's output into a distrax distribution with ``sample``, ``log_prob``, ``entropy``,
``mode`` and ``kl_divergence``.
"""
from __future__ import annotations

import distrax
import flax.linen as nn
import jax.numpy as jnp

from pgzoo.core.networks import CategoricalHead, GaussianHead
from pgzoo.envs.spaces import Box, Discrete, Space


def policy_head(space: Space) -> nn.Module:
    if isinstance(space, Discrete):
        return CategoricalHead(space.n)
    if isinstance(space, Box) and len(space.shape) == 1:
        return GaussianHead(space.shape[0])
    raise TypeError(f"no policy head for {space}")


def distribution(space: Space, head_output) -> distrax.Distribution:
    if isinstance(space, Discrete):
        return distrax.Categorical(logits=head_output)
    mean, log_std = head_output
    return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))
