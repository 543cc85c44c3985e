"""Why pgzoo's convolutions are matrix products of image patches: the Nature CNN's gradient on a
minibatch of 256 Atari frames, inside a ``lax.scan`` (as in an update's epochs) and outside one,
with Flax's ``nn.Conv`` (XLA's convolution) and with ``pgzoo.core.networks.Conv``.

    python benchmarks/conv_speed.py

Results go to docs/benchmarks/conv_speed.json.
"""
from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from common import machine, save_results

from pgzoo.core.networks import Conv

LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))  # Mnih et al. 2015


class Nature(nn.Module):
    patches: bool

    @nn.compact
    def __call__(self, x):
        for features, kernel, stride in LAYERS:
            layer = (Conv(features, kernel, stride) if self.patches
                     else nn.Conv(features, (kernel, kernel), (stride, stride), padding="VALID"))
            x = nn.relu(layer(x))
        return x.sum()


def milliseconds_per_gradient(patches: bool, in_scan: bool, steps: int = 4) -> float:
    net = Nature(patches)
    x = jnp.asarray(np.random.default_rng(0).random((256, 84, 84, 4), np.float32))
    params = net.init(jax.random.key(0), x)
    grad = jax.grad(lambda p: net.apply(p, x))

    def sgd(p, _):
        return jax.tree.map(lambda a, g: a - 1e-4 * g, p, grad(p)), None

    if in_scan:
        fn = jax.jit(lambda p: jax.lax.scan(sgd, p, None, steps)[0])
    else:
        step = jax.jit(lambda p: sgd(p, None)[0])

        def fn(p):
            for _ in range(steps):
                p = step(p)
            return p
    jax.block_until_ready(fn(params))  # compile
    t0 = time.time()
    jax.block_until_ready(fn(params))
    return (time.time() - t0) / steps * 1000


def main() -> None:
    results = {"machine": machine(), "jax": jax.__version__, "batch": 256,
               "command": "python benchmarks/conv_speed.py"}
    for patches in (False, True):
        for in_scan in (False, True):
            key = f"{'patches' if patches else 'xla_conv'}_{'in_scan' if in_scan else 'jit'}_ms"
            results[key] = round(milliseconds_per_gradient(patches, in_scan), 1)
            print(key, results[key], flush=True)
    save_results("conv_speed", results)


if __name__ == "__main__":
    main()
