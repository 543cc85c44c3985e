"""Optimisers by name, with optional global-norm gradient clipping."""
from __future__ import annotations

import optax

OPTIMIZERS = ("adam", "rmsprop", "sgd")


def make_optimizer(name: str, learning_rate, max_grad_norm: float | None = None,
                   eps: float = 1e-5, rmsprop_decay: float = 0.99) -> optax.GradientTransformation:
    """``adam``; ``rmsprop`` as PyTorch defines it (eps outside the square root, as SB3's A2C
    uses it); ``sgd`` (plain gradient steps, as Sutton & Barto write the updates)."""
    if name == "adam":
        opt = optax.adam(learning_rate, eps=eps)
    elif name == "rmsprop":
        opt = optax.rmsprop(learning_rate, decay=rmsprop_decay, eps=eps, eps_in_sqrt=False)
    elif name == "sgd":
        opt = optax.sgd(learning_rate)
    else:
        raise ValueError(name)
    if max_grad_norm:
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)
    return opt


def soft_update(target, online, tau: float):
    """Polyak averaging of target-network parameters: theta' <- tau theta + (1 - tau) theta'."""
    import jax

    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def periodic_target_update(target, online, updates, every: int, tau: float):
    """theta' <- tau theta + (1 - tau) theta' after every ``every``-th update (``updates`` counts
    them, this one included); tau = 1 copies the online network (DQN's target network)."""
    import jax

    return jax.lax.cond(updates % every == 0, lambda: soft_update(target, online, tau),
                        lambda: target)


def apply_each(tx: dict, grads: dict, opt_state: dict, params: dict) -> tuple[dict, dict]:
    """One optimiser step for each part of ``params`` (e.g. {"policy": ..., "critic": ...}),
    each with its own optimiser in ``tx``: returns (new params, new optimiser states)."""
    new_params, new_opt = {}, {}
    for k in tx:
        updates, new_opt[k] = tx[k].update(grads[k], opt_state[k], params[k])
        new_params[k] = optax.apply_updates(params[k], updates)
    return new_params, new_opt
