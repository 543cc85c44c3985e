r"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016).

Each worker holds its own environments and a copy \theta' of the parameters it last received.
It plays t_max = ``unroll_length`` steps, and computes from them, with \theta' alone, the
n-step actor-critic gradient (Algorithm S3)

    R_t = \sum_{i=0}^{k-1} \gamma^i r_{t+i} + \gamma^k V(s_{t+k}; \theta'_v),   k = t_max - t   -> ``discounted_returns``
    d\theta = \sum_t \nabla_{\theta'} [ -\log\pi(a_t|s_t; \theta') (R_t - V(s_t; \theta'_v)) - \beta H(\pi(.|s_t; \theta')) ]
            + c_v \nabla_{\theta'} (R_t - V(s_t; \theta'_v))^2 / 2                -> ``message``

(cut at terminations, bootstrapped from V(s_final) at time-limit truncations). The learner
applies each gradient as it arrives, with RMSProp whose statistics g are shared by all workers
(the paper's "shared RMSProp"), \theta <- \theta - \eta d\theta / (\sqrt{g} + \epsilon) (PyTorch's and
SB3's placement of \epsilon; the paper's TF form has it inside the root), and sends
the new parameters back to that worker alone (``learn``). A gradient is thus applied to
parameters newer than those it was computed with: the metric ``staleness`` counts by how many
updates.

``pgzoo train a3c`` runs the workers as Ray processes (``pgzoo.distributed``); ``--driver
compiled`` runs them as slices of one compiled batch whose W gradients are applied one after
another, worker w's being w updates stale (``algos/loops/actor_learner.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import ActorLearner, Agent, Algorithm, EnvNeeds
from pgzoo.algos.loops.actor_learner import make_actor_learner
from pgzoo.core import config as cfg
from pgzoo.core.distributions import FAMILIES, distribution, policy_head, select_action
from pgzoo.core.networks import ACTIVATIONS, ENCODERS, ActorCritic, choose_encoder
from pgzoo.core.optim import OPTIMIZERS, make_optimizer
from pgzoo.core.returns import bootstrap_truncated, discounted_returns


@dataclass(frozen=True)
class Config:
    num_actors: int = 2  # workers: the 2 actors on a two-core machine (the paper: 16)
    envs_per_actor: int = 8  # environments per worker (the paper: 1; A2C's 8 here)
    unroll_length: int = 5  # t_max, Mnih et al. 2016
    learning_rate: float = 7e-4  # SB3 A2C default (the paper samples it log-uniformly)
    optimizer: str = "rmsprop"  # Mnih et al. 2016: RMSProp with statistics shared by workers
    rmsprop_decay: float = 0.99  # Mnih et al. 2016 (alpha)
    optimizer_eps: float = 1e-5  # SB3 A2C default
    gamma: float = 0.99  # Mnih et al. 2016
    ent_coef: float = 0.0  # rl-baselines3-zoo a2c.yml, CartPole-v1 (the paper: 0.01, Atari)
    vf_coef: float = 0.5  # SB3 A2C default
    max_grad_norm: float = 0.5  # SB3 A2C default
    hidden_sizes: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy
    activation: str = "tanh"  # SB3 MlpPolicy
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    shared_torso: bool = False  # SB3 MlpPolicy
    policy_dist: str = "gaussian"

    def __post_init__(self):
        cfg.positive(self, "num_actors", "envs_per_actor", "unroll_length", "learning_rate",
                     "optimizer_eps")
        cfg.non_negative(self, "ent_coef", "vf_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "rmsprop_decay")
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)
        cfg.one_of(self, "policy_dist", FAMILIES)


class Learner(NamedTuple):
    params: Any
    opt_state: Any  # the shared RMSProp statistics


def make(config: Config, env, total_steps: int) -> Agent:
    model = ActorCritic(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                        config.activation, config.shared_torso, len(env.observation_space.shape),
                        encoder=config.encoder)
    choose_encoder(config.encoder, env.observation_space.shape)  # a one-line error, early
    tx = make_optimizer(config.optimizer, config.learning_rate, config.max_grad_norm,
                        config.optimizer_eps, config.rmsprop_decay)

    def learner_init(key):
        params = model.init(key, jnp.zeros((1,) + tuple(env.observation_space.shape)))
        return Learner(params, tx.init(params))

    def act(params, obs, key, deterministic=False):
        dist = distribution(model.apply(params, obs, method=model.policy))
        return select_action(dist, key, deterministic), ()

    def message(params, traj, last_obs):
        """The worker's gradient d\\theta and its loss terms, computed with its own params."""
        final_values = model.apply(params, traj.final_obs, method=model.value)
        rewards = bootstrap_truncated(traj.reward, traj.truncated, final_values, config.gamma)
        last_value = model.apply(params, last_obs, method=model.value)
        returns = discounted_returns(rewards, traj.done, last_value, config.gamma)

        def loss_fn(params):
            head, values = model.apply(params, traj.obs)
            dist = distribution(head)
            advantage = returns - jax.lax.stop_gradient(values)
            pg_loss = -jnp.mean(advantage * dist.log_prob(traj.action))
            v_loss = 0.5 * jnp.mean((returns - values) ** 2)
            entropy = dist.entropy().mean()
            loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
            return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy}

        grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
        return grads, metrics

    def learn(learner: Learner, messages):
        """Apply the gradient of each message in turn (one per update in A3C)."""
        grads, metrics = jax.tree.map(lambda x: jnp.mean(x, axis=0), messages)
        updates, opt_state = tx.update(grads, learner.opt_state, learner.params)
        return Learner(optax.apply_updates(learner.params, updates), opt_state), metrics

    al = ActorLearner(learner_init, act, message, learn, config.num_actors,
                      config.envs_per_actor, config.unroll_length, 1)
    return make_actor_learner(al, env)


def env_needs(config: Config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_actors * config.envs_per_actor, gamma=config.gamma)


ALGORITHM = Algorithm(
    name="a3c", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),  # continuous: not yet shown to learn
    default_budget=2_000_000,  # the CartPole budget
    driver="ray",
    env_needs=env_needs,
    hyperparameters=("learning_rate", "ent_coef", "vf_coef"),
)
