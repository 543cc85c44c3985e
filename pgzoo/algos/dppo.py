r"""DPPO: distributed PPO (Heess et al. 2017), synchronous KL-penalised gradients of W workers.

Heess et al. 2017, "Emergence of locomotion behaviours in rich environments", Algorithm 1 and
the supplement's DPPO.

W workers each play T = ``unroll_length`` steps with \pi_{old} = \pi_\theta, estimate advantages
with GAE(\gamma, \lambda) and the value V_\phi at collection, and then for M = ``update_iterations``
iterations compute, with the parameters they last received, the gradients of

    J_{PPO}(\theta) = E_t[ \pi_\theta(a_t|s_t) / \pi_{old}(a_t|s_t) \hat A_t ] - \lambda E_t[ KL[\pi_{old}(.|s_t) | \pi_\theta(.|s_t)] ]
    L_{BL}(\phi) = E_t[ (\hat R_t - V_\phi(s_t))^2 ] / 2                              (the baseline)

sent as two parts, g_J of the surrogate and baseline and g_KL of the KL term (``message``). The
learner waits for the first W - D = ``messages_per_update`` gradients made with its current
parameters (older ones are dropped: the update is synchronous), averages them and steps with Adam
along g_J + \lambda g_KL (``learn``), so the adaptive \lambda lives with the learner alone. After
each M iterations it adapts \lambda from the KL d of the last ones:

    \lambda <- \alpha \lambda  if d > \beta_{high} KL_{target};   \lambda <- \lambda / \alpha  if d < \beta_{low} KL_{target}

with \alpha = 1.5, \beta_{high} = 2, \beta_{low} = 0.5 (Heess et al.). Policy and baseline are
separate networks updated together (M = B iterations). Two departures: a worker measures the
KL with the parameters it holds, so the d of the M-th update is KL[\pi_{old} | \pi] after M - 1
updates, one update short of Algorithm 1's; and the GAE bootstrap values at the rollout's end and
at truncations are recomputed with the newest baseline at each use. Not built: the hinge penalty
on a KL far above target and the worker's early stop at KL > 4 KL_target.

With ``normalize_obs`` the workers normalise observations with shared statistics, as Heess et
al.'s do: the learner keeps one running mean and variance, merges into it the statistics of
every worker's new observations and sends it with the parameters (``pgzoo.distributed``); in
the compiled form one set of statistics covers all workers' environments.

``pgzoo train dppo`` runs the workers as Ray processes (``pgzoo.distributed``); ``--driver
compiled`` runs them as slices of one compiled batch.
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
from pgzoo.core.returns import bootstrap_truncated, gae
from pgzoo.errors import check

KL_ALPHA, KL_HIGH, KL_LOW = 1.5, 2.0, 0.5  # Heess et al. 2017, Algorithm 1


@dataclass(frozen=True)
class Config:
    num_actors: int = 2  # W workers: the 2 actors on a two-core machine
    messages_per_update: int = 2  # W - D: gradients averaged per update (D = 0 here)
    envs_per_actor: int = 8  # environments per worker
    unroll_length: int = 128  # T steps per environment and batch
    update_iterations: int = 10  # M = B, Heess et al. 2017
    learning_rate: float = 3e-4  # Adam, as PPO's defaults here (CleanRL)
    gamma: float = 0.99  # CleanRL ppo.py
    gae_lambda: float = 0.95  # CleanRL ppo.py
    kl_target: float = 0.01  # KL_target, as PPO's kl_penalty here (Schulman et al. 2017)
    kl_coef: float = 1.0  # the initial lambda (Schulman et al. 2017 sec. 4)
    vf_coef: float = 0.5  # CleanRL ppo.py
    max_grad_norm: float = 0.5  # CleanRL ppo.py
    normalize_advantage: bool = True  # CleanRL ppo.py
    hidden_sizes: tuple[int, ...] = (64, 64)  # CleanRL ppo.py
    activation: str = "tanh"  # CleanRL ppo.py
    encoder: str = "auto"  # image observations get a CNN (pgzoo.core.networks.choose_encoder)
    policy_dist: str = "gaussian"
    normalize_obs: bool = False  # statistics shared by the workers (module docstring)

    def __post_init__(self):
        cfg.positive(self, "num_actors", "messages_per_update", "envs_per_actor",
                     "unroll_length", "update_iterations", "learning_rate", "kl_target",
                     "kl_coef")
        cfg.non_negative(self, "vf_coef", "max_grad_norm")
        cfg.unit_interval(self, "gamma", "gae_lambda")
        check(self.messages_per_update <= self.num_actors,
                  f"messages_per_update (W - D = {self.messages_per_update}) cannot exceed "
                  f"num_actors (W = {self.num_actors})")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.one_of(self, "encoder", ENCODERS)
        cfg.one_of(self, "policy_dist", FAMILIES)


class Learner(NamedTuple):
    params: Any
    opt_state: Any
    kl_coef: jax.Array  # lambda
    iteration: jax.Array  # updates since the last adaptation of lambda


def make(config: Config, env, total_steps: int) -> Agent:
    model = ActorCritic(policy_head(env.action_space, config.policy_dist), config.hidden_sizes,
                        config.activation, False, len(env.observation_space.shape),
                        encoder=config.encoder)
    choose_encoder(config.encoder, env.observation_space.shape)  # a one-line error, early
    tx = optax.adam(config.learning_rate, eps=1e-5)
    if config.max_grad_norm:
        tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), tx)

    def learner_init(key):
        params = model.init(key, jnp.zeros((1,) + tuple(env.observation_space.shape)))
        return Learner(params, tx.init(params), jnp.float32(config.kl_coef), jnp.int32(0))

    def act(params, obs, key, deterministic=False):
        head, value = model.apply(params, obs)
        dist = distribution(head)
        return select_action(dist, key, deterministic), (head, value)

    def message(params, traj, last_obs):
        """(g_J, g_KL) at ``params`` from a trajectory played by \\pi_{old}, and its KL."""
        old_head, old_value = traj.extras
        final_values = model.apply(params, traj.final_obs, method=model.value)
        rewards = bootstrap_truncated(traj.reward, traj.truncated,
                                      jax.lax.stop_gradient(final_values), config.gamma)
        # advantages with the baseline at collection; the bootstrap from the newest one
        last_value = jax.lax.stop_gradient(model.apply(params, last_obs, method=model.value))
        advantage, returns = gae(rewards, old_value, traj.done, last_value, config.gamma,
                                 config.gae_lambda)
        if config.normalize_advantage:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        old = distribution(old_head)
        old_log_prob = old.log_prob(traj.action)

        def surrogate_and_baseline(params):
            head, values = model.apply(params, traj.obs)
            ratio = jnp.exp(distribution(head).log_prob(traj.action) - old_log_prob)
            surrogate = jnp.mean(ratio * advantage)
            baseline = 0.5 * jnp.mean((returns - values) ** 2)
            return -surrogate + config.vf_coef * baseline, (surrogate, baseline)

        def kl(params):
            return jnp.mean(old.kl_divergence(distribution(model.apply(params, traj.obs,
                                                                       method=model.policy))))

        g_j, (surrogate, baseline) = jax.grad(surrogate_and_baseline, has_aux=True)(params)
        kl_value, g_kl = jax.value_and_grad(kl)(params)
        return (g_j, g_kl), {"surrogate": surrogate, "value_loss": baseline, "kl": kl_value}

    def learn(learner: Learner, messages):
        """Average the W - D gradients, step along g_J + lambda g_KL; adapt lambda every M."""
        (g_j, g_kl), metrics = jax.tree.map(lambda x: jnp.mean(x, axis=0), messages)
        grads = jax.tree.map(lambda a, b: a + learner.kl_coef * b, g_j, g_kl)
        updates, opt_state = tx.update(grads, learner.opt_state, learner.params)
        iteration = learner.iteration + 1
        adapt = iteration >= config.update_iterations
        d = metrics["kl"]
        kl_coef = jnp.where(d > KL_HIGH * config.kl_target, learner.kl_coef * KL_ALPHA,
                            jnp.where(d < KL_LOW * config.kl_target, learner.kl_coef / KL_ALPHA,
                                      learner.kl_coef))
        metrics["kl_coef"] = learner.kl_coef
        return Learner(optax.apply_updates(learner.params, updates), opt_state,
                       jnp.where(adapt, kl_coef, learner.kl_coef),
                       jnp.where(adapt, 0, iteration)), metrics

    al = ActorLearner(learner_init, act, message, learn, config.num_actors,
                      config.envs_per_actor, config.unroll_length, config.messages_per_update,
                      reuse=config.update_iterations, max_staleness=0)
    return make_actor_learner(al, env)


def env_needs(config: Config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_actors * config.envs_per_actor,
                    normalize_obs=config.normalize_obs, gamma=config.gamma)


ALGORITHM = Algorithm(
    name="dppo", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),  # continuous: not yet shown to learn
    default_budget=500_000,  # the CartPole budget
    driver="ray",
    env_needs=env_needs,
    hyperparameters=("learning_rate", "vf_coef"),
)
