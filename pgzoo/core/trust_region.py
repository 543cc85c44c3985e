"""Natural-gradient machinery: conjugate gradient, Fisher-vector products, backtracking line search.

The Fisher matrix is never formed. With the mean KL divergence D(theta) = E_s[KL[pi_old(.|s),
pi_theta(.|s)]], whose Hessian at theta_old is the Fisher information matrix H,

    H x = grad_theta( grad_theta D(theta)^T x )      -> ``fisher_vector_product``

is computed by forward-over-reverse differentiation (``jax.jvp`` of ``jax.grad``), plus damping
``lambda x``; ``conjugate_gradient`` solves H x = g with those products only.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def fisher_vector_product(kl_fn: Callable, params, damping: float = 0.0) -> Callable:
    """x -> (H + damping I) x, where H is the Hessian of ``kl_fn`` at ``params`` (a flat
    function of the flat parameter vector)."""

    def fvp(x):
        return jax.jvp(jax.grad(kl_fn), (params,), (x,))[1] + damping * x

    return fvp


def conjugate_gradient(matvec: Callable, b, iters: int = 10, residual_tol: float = 1e-10):
    """Solve A x = b for symmetric positive-definite A given only x -> A x (Hestenes-Stiefel)."""

    def body(_, carry):
        x, r, p, rr = carry
        active = rr > residual_tol
        Ap = matvec(p)
        alpha = rr / (p @ Ap + 1e-12)
        x_new = x + alpha * p
        r_new = r - alpha * Ap
        rr_new = r_new @ r_new
        p_new = r_new + (rr_new / (rr + 1e-12)) * p
        keep = lambda new, old: jnp.where(active, new, old)  # noqa: E731
        return keep(x_new, x), keep(r_new, r), keep(p_new, p), keep(rr_new, rr)

    x0 = jnp.zeros_like(b)
    x, *_ = jax.lax.fori_loop(0, iters, body, (x0, b, b, b @ b))
    return x


def backtracking_line_search(params, full_step, surrogate_fn: Callable, kl_fn: Callable,
                             max_kl: float, shrink: float = 0.8, max_backtracks: int = 10):
    """theta + shrink^j full_step for the smallest j whose KL is <= max_kl and whose surrogate
    improves on theta's; theta itself when no j qualifies. Returns (params, j, accepted)."""
    base = surrogate_fn(params)
    fractions = shrink ** jnp.arange(max_backtracks, dtype=params.dtype)
    candidates = params[None] + fractions[:, None] * full_step[None]
    improvement = jax.vmap(surrogate_fn)(candidates) - base
    kls = jax.vmap(kl_fn)(candidates)
    ok = (kls <= max_kl) & (improvement > 0) & jnp.isfinite(kls)
    j = jnp.argmax(ok)  # the first acceptable candidate
    accepted = ok.any()
    return jnp.where(accepted, candidates[j], params), j, accepted
