"""Network blocks: torsos (an observation encoder, then fully connected layers), policy heads and
a value head (Flax linen).

The encoder is chosen from the observation (``encoder="auto"``): an image, [H, W, C], goes through
a convolutional network -- the Nature DQN CNN (Mnih et al. 2015) for frames of 36 pixels or more,
the one-layer CNN of the MinAtar paper (Young & Tian 2019) for smaller ones such as MinAtar's
10x10 -- and anything else is flattened for the MLP. The IMPALA ResNet (Espeholt et al. 2018) is an option.
Images reach the networks scaled to [0, 1] (``pgzoo.envs.wrappers.ScaleImage``).

Initialisation follows the PPO implementation details (orthogonal, gain sqrt(2) in the torso,
0.01 on the policy output, 1.0 on the value output), as in CleanRL and PureJaxRL.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.errors import PgzooError

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "elu": nn.elu, "gelu": nn.gelu}


def dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale),
                    bias_init=nn.initializers.zeros)


ENCODERS = ("auto", "mlp", "nature", "minatar", "impala")


def _patches(x, kernel: int, stride: int):
    """[B, H, W, C] -> [B, H', W', kernel * kernel, C]: each output position's window."""
    out_h, out_w = (x.shape[1] - kernel) // stride + 1, (x.shape[2] - kernel) // stride + 1
    return jnp.stack([x[:, i: i + stride * (out_h - 1) + 1: stride,
                        j: j + stride * (out_w - 1) + 1: stride]
                      for i in range(kernel) for j in range(kernel)], axis=3)


def _pad_same(x, kernel: int, value: float = 0.0):
    low = (kernel - 1) // 2
    return jnp.pad(x, ((0, 0), (low, kernel - 1 - low), (low, kernel - 1 - low), (0, 0)),
                   constant_values=value)


class Conv(nn.Module):
    """A 2-D convolution of [B, H, W, C] images, computed as one matrix product of image patches
    (im2col): the function of ``nn.Conv``, but on the CPU XLA compiles a convolution inside a loop
    (an update's epochs, a rollout's steps) to a slow kernel -- the Nature CNN's gradient took 55x
    longer there than this in a measurement here (docs/benchmarks.md) -- and matrix products
    well."""

    features: int
    kernel: int
    stride: int = 1
    padding: str = "VALID"  # or "SAME" (stride 1)

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", nn.initializers.orthogonal(np.sqrt(2)),
                       (self.kernel, self.kernel, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.padding == "SAME":
            x = _pad_same(x, self.kernel)
        patches = _patches(x, self.kernel, self.stride)
        return patches.reshape(patches.shape[:3] + (-1,)) @ w.reshape(-1, self.features) + b


def max_pool_same(x, window: int = 3, stride: int = 2):
    """Max over ``window`` x ``window`` windows, ``stride`` apart, "SAME" padding (as patches,
    for the reason ``Conv`` gives)."""
    h, w = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
    pad_h, pad_w = max((h - 1) * stride + window - x.shape[1], 0), max(
        (w - 1) * stride + window - x.shape[2], 0)
    x = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2),
                    (0, 0)), constant_values=-jnp.inf)
    return _patches(x, window, stride).max(axis=3)


class NatureCNN(nn.Module):
    """Mnih et al. (2015): 32 8x8 filters stride 4, 64 4x4 stride 2, 64 3x3 stride 1, ReLU."""

    @nn.compact
    def __call__(self, x):
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.relu(Conv(features, kernel, stride)(x))
        return x


class MinAtarCNN(nn.Module):
    """Young & Tian (2019), the MinAtar baselines: 16 3x3 filters stride 1, ReLU."""

    @nn.compact
    def __call__(self, x):
        return nn.relu(Conv(16, 3)(x))


class ImpalaCNN(nn.Module):
    """Espeholt et al. (2018): per stage a 3x3 convolution, 3x3 max-pooling stride 2 and two
    residual blocks (ReLU, conv, ReLU, conv, plus the input); stages of 16, 32, 32 channels."""

    channels: Sequence[int] = (16, 32, 32)

    @nn.compact
    def __call__(self, x):
        for features in self.channels:
            x = max_pool_same(Conv(features, 3, padding="SAME")(x))
            for _ in range(2):
                y = Conv(features, 3, padding="SAME")(nn.relu(x))
                x = x + Conv(features, 3, padding="SAME")(nn.relu(y))
        return nn.relu(x)


CNNS = {"nature": NatureCNN, "minatar": MinAtarCNN, "impala": ImpalaCNN}


def choose_encoder(encoder: str, obs_shape: Sequence[int]) -> str:
    """The encoder ``encoder`` means for observations of ``obs_shape`` (one, without batch axes):
    "auto" is a CNN for an image [H, W, C] -- the Nature CNN from 36 pixels a side, which its
    8x8/4, 4x4/2, 3x3/1 filters need, the MinAtar CNN below that -- and the MLP otherwise."""
    if encoder not in ENCODERS:
        raise PgzooError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    image = len(obs_shape) == 3
    if encoder == "auto":
        return ("nature" if min(obs_shape[:2]) >= 36 else "minatar") if image else "mlp"
    if encoder != "mlp" and not image:
        raise PgzooError(f"encoder {encoder!r} needs image observations [H, W, C]; these have "
                         f"shape {tuple(obs_shape)}")
    return encoder


class Encoder(nn.Module):
    """Features of an observation with ``obs_ndim`` trailing axes: a CNN's flattened output for an
    image (see ``choose_encoder``), the flattened observation otherwise."""

    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, x):
        batch, obs_shape = x.shape[: x.ndim - self.obs_ndim], x.shape[x.ndim - self.obs_ndim:]
        kind = choose_encoder(self.encoder, obs_shape)
        if kind != "mlp":
            x = CNNS[kind]()(x.reshape((-1, *obs_shape)))
        return x.reshape(batch + (-1,))


def _hidden_layers(x, hidden_sizes: Sequence[int], activation: str):
    for size in hidden_sizes:
        x = ACTIVATIONS[activation](dense(size, np.sqrt(2))(x))
    return x


class MLP(nn.Module):
    """Fully connected layers on the last axis."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        return _hidden_layers(x, self.hidden_sizes, self.activation)


class Torso(nn.Module):
    """The observation's encoder, then the fully connected ``hidden_sizes``."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Encoder(self.obs_ndim, self.encoder)(obs)
        return _hidden_layers(x, self.hidden_sizes, self.activation)


class CategoricalHead(nn.Module):
    """Logits of a softmax policy over ``num_actions``."""

    num_actions: int

    @nn.compact
    def __call__(self, x):
        return dense(self.num_actions, 0.01)(x)


class ValueHead(nn.Module):
    @nn.compact
    def __call__(self, x):
        return dense(1, 1.0)(x).squeeze(-1)


class ActorCritic(nn.Module):
    """Policy head and value head on separate torsos (default) or one shared torso."""

    policy_head: nn.Module
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False
    obs_ndim: int = 1
    encoder: str = "auto"

    def setup(self):
        self.actor_torso = Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder)
        self.critic_torso = (self.actor_torso if self.shared_torso
                             else Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder))
        self.actor_head = self.policy_head
        self.value_head = ValueHead()

    def __call__(self, obs):
        return self.actor_head(self.actor_torso(obs)), self.value_head(self.critic_torso(obs))

    def policy(self, obs):
        return self.actor_head(self.actor_torso(obs))

    def value(self, obs):
        return self.value_head(self.critic_torso(obs))


def count_params(params) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


class PolicyNetwork(nn.Module):
    """pi_theta(.|s): a torso and a policy head, with parameters of its own."""

    head: nn.Module
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder)(obs)
        return self.head(x)


class ValueNetwork(nn.Module):
    """V_w(s)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder)(obs)
        return ValueHead()(x)


class QNetwork(nn.Module):
    """Q_w(s, a): one output per action for discrete actions (``num_actions`` > 0), otherwise the
    action is concatenated to the observation and the output is a scalar."""

    num_actions: int = 0
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs, action):
        x = Encoder(self.obs_ndim, self.encoder)(obs)
        if self.num_actions:
            q = dense(self.num_actions, 1.0)(MLP(self.hidden_sizes, self.activation)(x))
            return jnp.take_along_axis(q, action[..., None].astype(jnp.int32), -1)[..., 0]
        x = jnp.concatenate([x, action], axis=-1)
        return ValueHead()(MLP(self.hidden_sizes, self.activation)(x))


class QValues(nn.Module):
    """Q_theta(s, .): one output per action."""

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Encoder(self.obs_ndim, self.encoder)(obs)
        return dense(self.num_actions, 1.0)(MLP(self.hidden_sizes, self.activation)(x))


class DeterministicActor(nn.Module):
    """mu_theta(s) in [-1, 1]^d (tanh output), for deterministic-policy methods."""

    action_dim: int
    hidden_sizes: Sequence[int] = (400, 300)
    activation: str = "relu"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder)(obs)
        return jnp.tanh(dense(self.action_dim, 0.01)(x))


class SquashedGaussianActor(nn.Module):
    """The SAC policy's parameters: mean and log std of u ~ N(mean, std^2), with a = tanh(u)
    (see ``pgzoo.core.distributions.tanh_gaussian_sample``); log std clipped to [-20, 2]."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim, self.encoder)(obs)
        mean = dense(self.action_dim, 0.01)(x)
        log_std = jnp.clip(dense(self.action_dim, 0.01)(x), -20.0, 2.0)
        return mean, log_std


class DistributionalQNetwork(nn.Module):
    """Z_w(s, a): logits over ``num_atoms`` fixed return values (a categorical critic)."""

    num_atoms: int = 51
    hidden_sizes: Sequence[int] = (400, 300)
    activation: str = "relu"
    obs_ndim: int = 1
    encoder: str = "auto"

    @nn.compact
    def __call__(self, obs, action):
        x = Encoder(self.obs_ndim, self.encoder)(obs)
        x = MLP(self.hidden_sizes, self.activation)(jnp.concatenate([x, action], axis=-1))
        return dense(self.num_atoms, 0.01)(x)
