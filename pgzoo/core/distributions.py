"""Policy distributions by action-space kind, on distrax.

``policy_head(space, family)`` gives the network head for a space; its output is the logits array
(softmax policy), a ``GaussianParams`` or a ``BetaParams``, and ``distribution(head_output)`` turns
that into a distribution with ``sample``, ``log_prob``, ``entropy``, ``mode`` and
``kl_divergence``. Continuous actions live in the agent's space; bounded boxes are [-1, 1]^d.
"""
from __future__ import annotations

from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from pgzoo.core.networks import CategoricalHead, dense
from pgzoo.envs.spaces import Box, Discrete, Space
from pgzoo.errors import PgzooError

FAMILIES = ("gaussian", "beta")


class GaussianParams(NamedTuple):
    mean: jax.Array
    log_std: jax.Array


class BetaParams(NamedTuple):
    alpha: jax.Array
    beta: jax.Array


class GaussianHead(nn.Module):
    """Mean of a diagonal Gaussian and a state-independent log standard deviation."""

    action_dim: int
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, x):
        mean = dense(self.action_dim, 0.01)(x)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std),
                             (self.action_dim,))
        return GaussianParams(mean, jnp.broadcast_to(log_std, mean.shape))


class BetaHead(nn.Module):
    """Concentrations alpha, beta = 1 + softplus(.) > 1 of a Beta policy (Chou et al. 2017;
    Hsu et al. 2020), so the density is unimodal and finite on [0, 1]."""

    action_dim: int

    @nn.compact
    def __call__(self, x):
        out = dense(2 * self.action_dim, 0.01)(x)
        alpha, beta = jnp.split(1.0 + nn.softplus(out), 2, axis=-1)
        return BetaParams(alpha, beta)


class ScaledBeta:
    """A product of Beta(alpha_i, beta_i) on x in [0, 1], mapped to actions a = 2x - 1."""

    _EPS = 1e-6

    def __init__(self, alpha, beta):
        self.alpha, self.beta = alpha, beta
        self._beta = distrax.Independent(distrax.Beta(alpha, beta), 1)
        self._log_scale = alpha.shape[-1] * jnp.log(2.0)  # |da/dx| = 2 per dimension

    def sample(self, seed):
        return 2.0 * self._beta.sample(seed=seed) - 1.0

    def log_prob(self, action):
        x = jnp.clip((action + 1.0) / 2.0, self._EPS, 1.0 - self._EPS)
        return self._beta.log_prob(x) - self._log_scale

    def entropy(self):
        return self._beta.entropy() + self._log_scale

    def mode(self):
        return 2.0 * (self.alpha - 1.0) / (self.alpha + self.beta - 2.0) - 1.0

    def kl_divergence(self, other: ScaledBeta):
        return self._beta.kl_divergence(other._beta)  # invariant under the affine map


def policy_head(space: Space, family: str = "gaussian") -> nn.Module:
    if isinstance(space, Discrete):
        return CategoricalHead(space.n)
    if isinstance(space, Box) and len(space.shape) == 1:
        if family == "beta":
            if not space.bounded:
                raise PgzooError("a Beta policy needs a bounded action box; this environment's "
                                 "actions are unbounded, use policy_dist=gaussian")
            return BetaHead(space.shape[0])
        return GaussianHead(space.shape[0])
    raise PgzooError(f"no policy head for actions of shape {space.shape}; pgzoo supports "
                     "Discrete and one-dimensional Box actions")


def select_action(dist, key, deterministic: bool):
    """The distribution's mode for evaluation, a sample for acting."""
    return dist.mode() if deterministic else dist.sample(seed=key)


def distribution(head_output):
    if isinstance(head_output, GaussianParams):
        return distrax.MultivariateNormalDiag(head_output.mean, jnp.exp(head_output.log_std))
    if isinstance(head_output, BetaParams):
        return ScaledBeta(head_output.alpha, head_output.beta)
    return distrax.Categorical(logits=head_output)


def tanh_gaussian_sample(mean, log_std, key):
    """a = tanh(u), u = mean + std * eps (reparameterised), and

    log pi(a|s) = sum_d [ log N(u_d; mean_d, std_d) - log(1 - tanh(u_d)^2) ],
    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) for numerical stability."""
    eps = jax.random.normal(key, mean.shape)
    u = mean + jnp.exp(log_std) * eps
    log_normal = -0.5 * eps ** 2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


def gumbel_softmax(logits, key, temperature: float = 1.0, hard: bool = False):
    """The Gumbel-softmax (concrete) relaxation of a categorical sample (Jang et al. 2017;
    Maddison et al. 2017): y = softmax((logits + g) / temperature), g ~ Gumbel(0, 1), a point
    of the simplex that is differentiable in the logits; argmax(y) is an exact sample of
    Categorical(logits) (the Gumbel-max trick). With ``hard`` the value is the one-hot of that
    sample and the gradient is the relaxed one's (straight-through)."""
    g = jax.random.gumbel(key, logits.shape, logits.dtype)
    y = jax.nn.softmax((logits + g) / temperature, axis=-1)
    if not hard:
        return y
    one_hot = jax.nn.one_hot(jnp.argmax(y, axis=-1), logits.shape[-1], dtype=y.dtype)
    return y + jax.lax.stop_gradient(one_hot - y)
