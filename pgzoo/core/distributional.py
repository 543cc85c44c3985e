r"""Categorical return distributions (Bellemare et al. 2017; used by D4PG).

A distribution is a probability vector p over fixed atoms z_1 < ... < z_N spaced \Delta z apart.
The Bellman target r + \gamma^n z_j falls between atoms, so it is projected back (\Phi):

    (\Phi \hat{T} p)_i = \sum_j [ 1 - |clip(r + d z_j, z_1, z_N) - z_i| / \Delta z ]_0^1  p_j

i.e. each target atom's mass goes to its two neighbours in proportion to closeness (all of it to
one atom when it lands on it, and to the end atoms when it falls outside the support).
"""
from __future__ import annotations

import jax.numpy as jnp


def atoms(v_min: float, v_max: float, num_atoms: int):
    return jnp.linspace(v_min, v_max, num_atoms)


def categorical_projection(probs, reward, discount, support):
    """Project p over r + discount * z onto ``support``. probs [B, N], reward/discount [B]."""
    delta = support[1] - support[0]
    target = jnp.clip(reward[:, None] + discount[:, None] * support[None, :],
                      support[0], support[-1])  # [B, N_j]
    weight = jnp.clip(1.0 - jnp.abs(target[:, None, :] - support[None, :, None]) / delta, 0, 1)
    return jnp.sum(weight * probs[:, None, :], axis=-1)  # [B, N_i]
