r"""IMPALA: importance-weighted actor-learner architecture (Espeholt et al. 2018).

Actors play trajectories of n = ``unroll_length`` steps with the behaviour policy \mu, the
parameters they last received, and send them with \log\mu(a_t|x_t) and the version of those
parameters. The learner, whose policy \pi = \pi_\theta has moved on since, corrects the lag with
V-trace (``pgzoo.core.returns.vtrace``):

    \rho_t = min(\bar\rho, \pi(a_t|x_t) / \mu(a_t|x_t)),   c_t = min(\bar c, \pi(a_t|x_t) / \mu(a_t|x_t))
    v_s = V(x_s) + \sum_{t=s}^{s+n-1} \gamma^{t-s} (\prod_{i=s}^{t-1} c_i) \rho_t (r_t + \gamma V(x_{t+1}) - V(x_t))   (eq. 1)

and descends, over a batch of ``messages_per_update`` trajectories,

    L = -E_s[ \rho_s \ln\pi_\theta(a_s|x_s) (r_s + \gamma v_{s+1} - V_w(x_s)) ]        (eq. 4, ``pg_loss``)
        + c_v E_s[ (v_s - V_w(x_s))^2 ] / 2                                          (``value_loss``)
        - c_e E_s[ H[\pi_\theta(.|x_s)] ]                                            (``entropy``)

with RMSProp (as in the paper) or Adam and a global gradient-norm clip. Where an episode ended
inside a trajectory the recursion is cut (no bootstrapping across it); at a time-limit
truncation the reward is bootstrapped from V(true final observation).

``pgzoo train impala`` runs the actors as Ray processes (``pgzoo.distributed``); ``--driver
compiled`` runs them as slices of one compiled batch, each acting with the parameters of the
learner's previous update (``algos/loops/actor_learner.py``).
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
from pgzoo.core.returns import bootstrap_truncated, vtrace


@dataclass(frozen=True)
class Config:
    num_actors: int = 2  # the 2 actors on a two-core machine
    envs_per_actor: int = 8  # vectorised environments per actor (RLlib's env runners do too)
    unroll_length: int = 20  # n, Espeholt et al. 2018 (Atari)
    messages_per_update: int = 2  # trajectories per learner batch (one from each actor)
    learning_rate: float = 6e-4  # Espeholt et al. 2018 (Table G.1: 6e-4 for the single task)
    optimizer: str = "rmsprop"  # Espeholt et al. 2018
    rmsprop_decay: float = 0.99  # Espeholt et al. 2018
    optimizer_eps: float = 0.01  # Espeholt et al. 2018 (RMSProp epsilon 0.01)
    gamma: float = 0.99  # Espeholt et al. 2018
    ent_coef: float = 0.01  # Espeholt et al. 2018 (0.01 for the DMLab tasks is 0.0033-0.01)
    vf_coef: float = 0.5  # Espeholt et al. 2018 (baseline loss scaling 0.5)
    max_grad_norm: float = 40.0  # Espeholt et al. 2018
    rho_bar: float = 1.0  # \bar\rho, Espeholt et al. 2018
    c_bar: float = 1.0  # \bar c, Espeholt et al. 2018
    hidden_sizes: tuple[int, ...] = (64, 64)  # SB3 MlpPolicy, as the other actor-critics here
    activation: str = "tanh"  # SB3 MlpPolicy
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    shared_torso: bool = False
    policy_dist: str = "gaussian"

    def __post_init__(self):
        cfg.positive(self, "num_actors", "envs_per_actor", "unroll_length",
                     "messages_per_update", "learning_rate", "optimizer_eps", "rho_bar",
                     "c_bar")
        cfg.non_negative(self, "ent_coef", "vf_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "rmsprop_decay")
        cfg.one_of(self, "optimizer", OPTIMIZERS)
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)
        cfg.one_of(self, "policy_dist", FAMILIES)


class Learner(NamedTuple):
    params: Any
    opt_state: Any


class Message(NamedTuple):
    """One actor's trajectory, time-major [T, E, ...], and the behaviour policy's log-probs."""

    obs: jax.Array
    action: jax.Array
    behaviour_log_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    last_obs: jax.Array  # [E] the observation after the last step (bootstrap)


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
        action = select_action(dist, key, deterministic)
        return action, dist.log_prob(action)

    def message(params, traj, last_obs):
        return Message(traj.obs, traj.action, traj.extras, traj.reward, traj.terminated,
                       traj.truncated, traj.final_obs, last_obs)

    def loss_fn(params, m: Message):
        """V-trace loss of one trajectory [T, E]."""
        head, values = model.apply(params, m.obs)
        dist = distribution(head)
        log_prob = dist.log_prob(m.action)
        v = jax.lax.stop_gradient(values)
        final_values = model.apply(params, m.final_obs, method=model.value)
        last_value = model.apply(params, m.last_obs, method=model.value)
        rewards = bootstrap_truncated(m.reward, m.truncated, jax.lax.stop_gradient(final_values),
                                      config.gamma)
        log_rhos = jax.lax.stop_gradient(log_prob) - m.behaviour_log_prob
        vs, pg_adv = vtrace(rewards, m.terminated | m.truncated, v,
                            jax.lax.stop_gradient(last_value), log_rhos, config.gamma,
                            config.rho_bar, config.c_bar)
        pg_loss = -jnp.mean(pg_adv * log_prob)
        v_loss = 0.5 * jnp.mean((vs - values) ** 2)
        entropy = dist.entropy().mean()
        loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
        return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy,
                      "mean_rho": jnp.mean(jnp.exp(log_rhos))}

    def learn(learner: Learner, messages: Message):
        def batch_loss(params):
            losses, metrics = jax.vmap(loss_fn, in_axes=(None, 0))(params, messages)
            return losses.mean(), jax.tree.map(jnp.mean, metrics)

        grads, metrics = jax.grad(batch_loss, has_aux=True)(learner.params)
        updates, opt_state = tx.update(grads, learner.opt_state, learner.params)
        return Learner(optax.apply_updates(learner.params, updates), opt_state), metrics

    al = ActorLearner(learner_init, act, message, learn, config.num_actors,
                      config.envs_per_actor, config.unroll_length, config.messages_per_update)
    return make_actor_learner(al, env, lag=True)


def env_needs(config: Config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_actors * config.envs_per_actor, gamma=config.gamma)


ALGORITHM = Algorithm(
    name="impala", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),  # continuous: not yet shown to learn
    default_budget=2_000_000,  # the CartPole budget (RLlib's tuned example: 450 in 2M)
    driver="ray",
    env_needs=env_needs,
    hyperparameters=("learning_rate", "ent_coef", "vf_coef"),
)
