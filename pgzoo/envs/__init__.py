"""Environments: one functional, batched protocol for every backend (see ``protocol``)."""
from pgzoo.envs.protocol import Env, TimeStep
from pgzoo.envs.registry import (
                                 BACKENDS,
                                 OWN,
                                 check_known,
                                 imports_code,
                                 jax_native_ids,
                                 make,
                                 make_base,
                                 render_factory,
                                 resolve,
)
from pgzoo.envs.spaces import Box, Discrete
from pgzoo.envs.wrappers import rescale_action

__all__ = ["BACKENDS", "OWN", "Box", "Discrete", "Env", "TimeStep", "check_known", "imports_code",
           "jax_native_ids",
           "make", "make_base", "render_factory", "rescale_action", "resolve"]
