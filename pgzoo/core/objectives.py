"""Objectives that several algorithms share, named as in their papers."""
from __future__ import annotations

import jax.numpy as jnp


def clipped_surrogate(ratio, advantage, clip_low, clip_high=None):
    """E[min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)], to be maximised."""
    clip_high = clip_low if clip_high is None else clip_high
    return jnp.minimum(ratio * advantage,
                       jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantage).mean()


def kl_penalty_surrogate(ratio, advantage, kl, beta):
    """E[r A - beta KL[pi_old, pi]], to be maximised."""
    return (ratio * advantage - beta * kl).mean()


def value_loss(value, old_value, target, clip_coef, clip):
    """E[(V - V_targ)^2] / 2; with ``clip``, the larger of that error and the error of V clipped
    to V_old +- clip_coef (PPO as implemented by OpenAI Baselines and CleanRL)."""
    unclipped = (value - target) ** 2
    if not clip:
        return 0.5 * unclipped.mean()
    clipped = (old_value + jnp.clip(value - old_value, -clip_coef, clip_coef) - target) ** 2
    return 0.5 * jnp.maximum(unclipped, clipped).mean()
