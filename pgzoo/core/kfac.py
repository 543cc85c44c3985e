"""kfac-jax, made to run on the JAX pgzoo installs.

kfac-jax 0.0.8 (the newest release) evaluates jaxpr equations with
``subfuns, params = primitive.get_bind_params(params)``; from JAX 0.9 on ``get_bind_params``
returns the parameters alone (call primitives put their sub-functions in them under
``subfuns``), and the unpacking fails inside kfac-jax's graph matcher. ``eval_jaxpr_eqn`` below is
the same function written against the new convention, installed only when the installed JAX uses
it; nothing else of kfac-jax is changed.

The Kronecker factors are inverted by Cholesky (they are symmetric and, damped, positive
definite). kfac-jax's default LU inversion guards against NaNs with ``lax.cond``, which ``vmap``
turns into running both branches, and with ``--seeds`` (a vmapped training run) the batched LU
never returned on the CPU.
"""
from __future__ import annotations

import jax
import kfac_jax
from kfac_jax._src import tag_graph_matcher

_jax_version = tuple(int(p) for p in jax.__version__.split(".")[:2])


def _eval_jaxpr_eqn(eqn, in_values):
    bind_params = eqn.primitive.get_bind_params(eqn.params)
    with jax.extend.source_info_util.user_context(eqn.source_info.traceback):
        output = eqn.primitive.bind(*in_values, **bind_params)
    return output if isinstance(output, list) else [output]


if _jax_version >= (0, 9):
    tag_graph_matcher.eval_jaxpr_eqn = _eval_jaxpr_eqn
kfac_jax.utils.set_use_cholesky_inversion(True)

__all__ = ["kfac_jax"]
