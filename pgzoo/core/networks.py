"""Network blocks: MLP torsos, policy heads and a value head (Flax linen).

Initialisation follows the PPO implementation details (orthogonal, gain sqrt(2) in the torso,
0.01 on the policy output, 1.0 on the value output), as in CleanRL and PureJaxRL.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "elu": nn.elu, "gelu": nn.gelu}


def dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale),
                    bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Fully connected torso; the trailing ``obs_ndim`` axes of the input are flattened."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        for size in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](dense(size, np.sqrt(2))(x))
        return x


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

    def setup(self):
        self.actor_torso = MLP(self.hidden_sizes, self.activation, self.obs_ndim)
        self.critic_torso = (self.actor_torso if self.shared_torso
                             else MLP(self.hidden_sizes, self.activation, self.obs_ndim))
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

    @nn.compact
    def __call__(self, obs):
        return self.head(MLP(self.hidden_sizes, self.activation, self.obs_ndim)(obs))


class ValueNetwork(nn.Module):
    """V_w(s)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        return ValueHead()(MLP(self.hidden_sizes, self.activation, self.obs_ndim)(obs))


class QNetwork(nn.Module):
    """Q_w(s, a): one output per action for discrete actions (``num_actions`` > 0), otherwise the
    action is concatenated to the observation and the output is a scalar."""

    num_actions: int = 0
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, action):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
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

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        return dense(self.num_actions, 1.0)(MLP(self.hidden_sizes, self.activation)(x))


class DeterministicActor(nn.Module):
    """mu_theta(s) in [-1, 1]^d (tanh output), for deterministic-policy methods."""

    action_dim: int
    hidden_sizes: Sequence[int] = (400, 300)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        return jnp.tanh(dense(self.action_dim, 0.01)(x))


class SquashedGaussianActor(nn.Module):
    """The SAC policy's parameters: mean and log std of u ~ N(mean, std^2), with a = tanh(u)
    (see ``pgzoo.core.distributions.tanh_gaussian_sample``); log std clipped to [-20, 2]."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        mean = dense(self.action_dim, 0.01)(x)
        log_std = jnp.clip(dense(self.action_dim, 0.01)(x), -20.0, 2.0)
        return mean, log_std


class DistributionalQNetwork(nn.Module):
    """Z_w(s, a): logits over ``num_atoms`` fixed return values (a categorical critic)."""

    num_atoms: int = 51
    hidden_sizes: Sequence[int] = (400, 300)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, action):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        x = MLP(self.hidden_sizes, self.activation)(jnp.concatenate([x, action], axis=-1))
        return dense(self.num_atoms, 0.01)(x)
