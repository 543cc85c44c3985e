r"""D4PG: distributed distributional deterministic policy gradients (Barth-Maron et al. 2018).

DDPG (``ddpg``) with a distributional critic and the extras of the paper. The critic Z_w(s, a)
is a categorical distribution p_w(s, a) over N atoms z_i in [V_min, V_max]
(``pgzoo.core.distributional``), and Q_w(s, a) = \sum_i p_{w,i}(s, a) z_i. K parallel actors
(``num_envs`` environments) feed one prioritised replay of N-step transitions
(``pgzoo.core.replay``). Every update samples a minibatch with P(i) \propto p_i^\alpha and:

    target        Y = \Phi( r^{(n)} + \gamma^{n} Z_{w'}(s'_n, \mu_{\theta'}(s'_n)) )  (projected; no
                  bootstrap after a termination)                  -> ``categorical_projection``
    critic        L(w) = E[ w_i^{IS} \cdot CE(Y, p_w(s, a)) ],  w^{IS} = (N P(i))^{-\beta} / \max w
    priority      p_i = KL(Y || p_w(s, a)) = CE(Y, p_w(s, a)) - H(Y)      -> ``cross_entropy_and_kl``
                  (as Rainbow: the cross-entropy alone never falls below the target's own
                  entropy, so it would keep every sample's priority high)
    actor         \nabla_\theta J = E[ \nabla_a Q_w(s, a)|_{a=\mu_\theta(s)} \nabla_\theta \mu_\theta(s) ]
    targets       \theta' <- \tau \theta + (1 - \tau) \theta',  w' <- \tau w + (1 - \tau) w'

Exploration is Gaussian, N(0, \sigma). \beta is annealed linearly to 1 over the run. Targets move
by soft updates here; the paper copies them every 100 updates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.algos.loops.replay import (check_budget, make_agent, noisy_deterministic_policy,
                                      normalized)
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.distributional import atoms, categorical_projection
from pgzoo.core.networks import ACTIVATIONS, DeterministicActor, DistributionalQNetwork
from pgzoo.core.optim import soft_update
from pgzoo.errors import check



@dataclass(frozen=True)
class Config:
    num_envs: int = 4  # K parallel actors
    buffer_size: int = 1_000_000  # Barth-Maron et al. 2018
    batch_size: int = 256  # Barth-Maron et al. 2018
    learning_starts: int = 400
    learning_rate: float = 1e-3  # as SB3's DDPG / TD3 (the paper: 1e-4)
    gamma: float = 0.99  # Barth-Maron et al. 2018
    n_step: int = 3  # the paper: 5; on Pendulum-v1 5 left 1 run in 6 short of -200 at 20k
    num_atoms: int = 51  # Barth-Maron et al. 2018
    # the support must cover the task's discounted returns: Pendulum-v1's rewards lie in
    # [-16.3, 0], so with gamma 0.99 its returns lie in [-1630, 0] (the paper: +-150, control suite)
    v_min: float = -1630.0
    v_max: float = 0.0
    priority_alpha: float = 0.6  # Barth-Maron et al. 2018 (Schaul et al. 2016)
    priority_beta: float = 0.4  # Barth-Maron et al. 2018 (Schaul et al. 2016), annealed to 1
    priority_eps: float = 1e-6
    tau: float = 0.005
    exploration_noise: float = 0.1  # rl-baselines3-zoo Pendulum-v1 (the paper: 0.3)
    gradient_steps: int = 4  # per step of the K environments: one update per transition
    block_size: int = 25  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (400, 300)  # Barth-Maron et al. 2018
    activation: str = "relu"
    normalize_obs: bool = False

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate", "n_step",
                     "priority_eps", "gradient_steps", "block_size")
        cfg.non_negative(self, "learning_starts", "exploration_noise", "priority_alpha")
        cfg.unit_interval(self, "gamma", "tau", "priority_beta")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        check(self.num_atoms >= 2 and self.v_max > self.v_min,
              f"d4pg needs num_atoms >= 2 and v_max > v_min, got num_atoms={self.num_atoms}, "
              f"v_min={self.v_min}, v_max={self.v_max}")


def cross_entropy_and_kl(target_probs, log_p):
    """CE(Y, p) = -sum_i Y_i log p_i, the critic's loss, and KL(Y || p) = CE(Y, p) - H(Y) =
    sum_i Y_i (log Y_i - log p_i) (0 log 0 = 0), the priority: 0 when p = Y."""
    cross_entropy = -jnp.sum(target_probs * log_p, axis=-1)
    kl = jnp.sum(jax.scipy.special.xlogy(target_probs, target_probs) - target_probs * log_p,
                 axis=-1)
    return cross_entropy, jnp.maximum(kl, 0.0)  # >= 0 up to rounding


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any
    updates: jax.Array


def make(config: Config, env, total_steps: int) -> Agent:
    obs_ndim = len(env.observation_space.shape)
    action_dim = env.action_space.shape[0]
    actor = DeterministicActor(action_dim, config.hidden_sizes, config.activation, obs_ndim)
    critic = DistributionalQNetwork(config.num_atoms, config.hidden_sizes, config.activation,
                                    obs_ndim)
    support = atoms(config.v_min, config.v_max, config.num_atoms)
    tx = optax.adam(config.learning_rate)
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs, config.n_step,
                         prioritised=True, alpha=config.priority_alpha)
    total_updates = total_steps // config.num_envs * config.gradient_steps
    beta = replay.beta_schedule(config.priority_beta, total_updates)

    def init_learner(key, obs, action):
        actor_key, critic_key = jax.random.split(key)
        params = {"actor": actor.init(actor_key, obs),
                  "critic": critic.init(critic_key, obs, action)}
        return params, Learner(params, {k: tx.init(v) for k, v in params.items()}, jnp.int32(0))

    policy = noisy_deterministic_policy(actor, config.exploration_noise)

    def q_value(critic_params, obs, action):
        return jnp.sum(jax.nn.softmax(critic.apply(critic_params, obs, action)) * support, -1)

    def update(params, learner: Learner, buffer_state, key, normalize):
        sample = buffer.sample(buffer_state, key)
        b = normalized(replay.n_step_transition(sample.experience, config.gamma), normalize)
        weights = replay.importance_weights(sample.probabilities, replay.num_stored(buffer_state),
                                            beta(learner.updates))
        targets = learner.target_params
        next_logits = critic.apply(targets["critic"], b.next_obs,
                                   actor.apply(targets["actor"], b.next_obs))
        target_probs = categorical_projection(jax.nn.softmax(next_logits), b.reward, b.discount,
                                              support)

        def critic_loss(w):
            log_p = jax.nn.log_softmax(critic.apply(w, b.obs, b.action))
            cross_entropy, kl = cross_entropy_and_kl(target_probs, log_p)
            return jnp.mean(weights * cross_entropy), (cross_entropy, kl)

        (c_loss, (cross_entropy, kl)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            params["critic"])
        updates, critic_opt = tx.update(grads, learner.opt_state["critic"])
        params = dict(params, critic=optax.apply_updates(params["critic"], updates))

        def actor_loss(theta):
            return -jnp.mean(q_value(params["critic"], b.obs, actor.apply(theta, b.obs)))

        a_loss, grads = jax.value_and_grad(actor_loss)(params["actor"])
        updates, actor_opt = tx.update(grads, learner.opt_state["actor"])
        params = dict(params, actor=optax.apply_updates(params["actor"], updates))

        # items drawn with probability 0 (see ``importance_weights``) keep priority 0
        priorities = jnp.where(sample.probabilities > 0, kl + config.priority_eps, 0.0)
        buffer_state = buffer.set_priorities(buffer_state, sample.indices, priorities)
        learner = Learner(soft_update(targets, params, config.tau),
                          {"actor": actor_opt, "critic": critic_opt}, learner.updates + 1)
        return params, learner, buffer_state, {
            "critic_loss": c_loss, "actor_loss": a_loss, "priority_mean": jnp.mean(kl),
            "cross_entropy": jnp.mean(cross_entropy),
            "target_entropy": jnp.mean(jnp.sum(jax.scipy.special.entr(target_probs), -1)),
            "q_mean": jnp.mean(jnp.sum(target_probs * support, -1))}

    return make_agent(env, config, buffer, init_learner, update, policy)


ALGORITHM = Algorithm(
    name="d4pg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=20_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    hyperparameters=("learning_rate", "tau", "exploration_noise", "priority_beta"),
)
