"""Environments: one functional, batched protocol for every backend (see ``protocol``)."""
from pgzoo.envs.protocol import Env, TimeStep
from pgzoo.envs.multi_agent import EXAMPLES as MULTI_AGENT_EXAMPLES
from pgzoo.envs.registry import (
                                 BACKENDS,
                                 MULTI_AGENT_BACKENDS,
                                 OWN,
                                 check_known,
                                 imports_code,
                                 jax_native_ids,
                                 make,
                                 make_base,
                                 render_factory,
                                 resolve,
)
from pgzoo.envs.spaces import Box, Discrete, MultiAgent
from pgzoo.envs.wrappers import image_scale, rescale_action

__all__ = ["BACKENDS", "MULTI_AGENT_BACKENDS", "MULTI_AGENT_EXAMPLES", "MultiAgent", "OWN",
           "Box", "Discrete", "Env", "TimeStep", "check_known", "imports_code",
           "image_scale", "jax_native_ids",
           "make", "make_base", "render_factory", "rescale_action", "resolve"]
