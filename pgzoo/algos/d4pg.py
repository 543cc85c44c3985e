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

The actor-learner form (``num_actors`` = K > 0; the paper's K actor processes): K actors, each
with ``envs_per_actor`` environments and the actor parameters it last received, play
``unroll_length`` steps, fold them into N-step transitions themselves (a window that reaches
the end of the unroll is cut there and bootstraps from the last observation: R^{(k)} with
k < N) and send them to the learner, which adds them to its prioritised replay and takes
``gradient_steps / num_envs`` updates per transition received, as the single-process form does
(``actor_learner_form``). ``pgzoo train d4pg --driver ray --set num_actors=2`` runs the actors
as Ray processes (``pgzoo.distributed``); with ``--driver compiled`` they are slices of one
batch acting with the parameters of the learner's previous update. Until ``learning_starts``
transitions are in the replay the learner does not update and the actors act uniformly at
random, as the single-process loop's burn-in does (the flag ``burn_in`` travels with the
parameters; without that burn-in the single-process run ended at -1334 instead of -200 on
Pendulum-v1 in 20k steps).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import ActorLearner, Agent, Algorithm, EnvNeeds, standard_env_needs
from pgzoo.algos.loops.actor_learner import make_actor_learner
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
    # the actor-learner form (module docstring): K actor processes; 0 is one process stepping
    # num_envs environments. The update-to-data ratio gradient_steps / num_envs holds in both.
    num_actors: int = 0
    envs_per_actor: int = 1
    unroll_length: int = 50  # environment steps of each actor's message

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate", "n_step",
                     "priority_eps", "gradient_steps", "block_size")
        cfg.non_negative(self, "learning_starts", "exploration_noise", "priority_alpha")
        cfg.unit_interval(self, "gamma", "tau", "priority_beta")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        cfg.non_negative(self, "num_actors")
        cfg.positive(self, "envs_per_actor", "unroll_length")
        if self.num_actors:
            check(not self.normalize_obs, "d4pg's actor-learner form (num_actors > 0) does not "
                  "normalise observations: its actors would each keep their own statistics; "
                  "set normalize_obs=false or num_actors=0")
            check(self.n_step <= self.unroll_length, f"n_step ({self.n_step}) must not exceed "
                  f"unroll_length ({self.unroll_length}): the actors fold their own unrolls")
            check(self.updates_per_message >= 1, f"a message of envs_per_actor x unroll_length "
                  f"= {self.envs_per_actor * self.unroll_length} transitions must give at least "
                  f"one update at gradient_steps / num_envs = {self.gradient_steps}/"
                  f"{self.num_envs}")
        check(self.num_atoms >= 2 and self.v_max > self.v_min,
              f"d4pg needs num_atoms >= 2 and v_max > v_min, got num_atoms={self.num_atoms}, "
              f"v_min={self.v_min}, v_max={self.v_max}")


    @property
    def updates_per_message(self) -> int:
        """The actor-learner form's updates per message (gradient_steps / num_envs per
        transition)."""
        return self.envs_per_actor * self.unroll_length * self.gradient_steps // self.num_envs


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

    def sgd_step(buffer, to_batch, params, learner: Learner, buffer_state, key, normalize):
        """One update from a prioritised minibatch; ``to_batch`` turns the sampled items into
        ``NStep`` transitions."""
        sample = buffer.sample(buffer_state, key)
        b = normalized(to_batch(sample.experience), normalize)
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

    if config.num_actors:
        return actor_learner_form(config, env, init_learner, sgd_step, policy)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs, config.n_step,
                         prioritised=True, alpha=config.priority_alpha)

    def update(*args):
        return sgd_step(buffer, lambda seq: replay.n_step_transition(seq, config.gamma), *args)

    return make_agent(env, config, buffer, init_learner, update, policy)


class ReplayLearner(NamedTuple):
    """The learner of the actor-learner form: what the actors act with, and everything else."""

    params: Any  # {"actor", "critic", "burn_in": 1.0 while the actors should act at random}
    learner: Learner
    buffer: Any
    key: jax.Array


def unroll_n_step(traj, n: int, gamma: float) -> replay.NStep:
    """An actor's unroll [T, E] as T E N-step transitions: the window from step t stops at the
    first episode end or at the unroll's last step T - 1 (bootstrapping from its true next
    observation), so the last N - 1 steps give shorter returns (``replay.n_step_transition``)."""
    T = traj.reward.shape[0]
    cut = traj.done.at[-1].set(True)  # the windows do not look past the unroll
    steps = replay.Transition(traj.obs, traj.action, traj.reward, traj.final_obs,
                              traj.terminated, cut)
    window = jnp.minimum(jnp.arange(T)[:, None] + jnp.arange(n)[None], T - 1)  # [T, n]
    # [T, E, ...] -> [T, n, E, ...] -> [T E, n, ...]
    seq = jax.tree.map(lambda x: jnp.moveaxis(x[window], 2, 1).reshape(
        (T * x.shape[1], n) + x.shape[2:]), steps)
    return replay.n_step_transition(seq, gamma)


def actor_learner_form(config: Config, env, init_learner, sgd_step, policy) -> Agent:
    """K actors send N-step transitions; the learner adds them to its replay and updates
    ``config.updates_per_message`` times per message (module docstring)."""
    per_message = config.envs_per_actor * config.unroll_length
    # one flat item per transition: each message fills one row of per_message columns
    buffer = replay.make(config.buffer_size, config.batch_size, per_message, 1,
                         prioritised=True, alpha=config.priority_alpha)
    obs_shape, action_dim = tuple(env.observation_space.shape), env.action_space.shape[0]
    ready_at = max(config.learning_starts, config.batch_size)

    def learner_init(key):
        init_key, key = jax.random.split(key)
        params, learner = init_learner(init_key, jnp.zeros((1,) + obs_shape),
                                       jnp.zeros((1, action_dim)))
        obs = jnp.zeros(obs_shape)
        example = replay.NStep(obs, jnp.zeros(action_dim), jnp.float32(0), obs, jnp.float32(0))
        return ReplayLearner(dict(params, burn_in=jnp.float32(1.0)), learner,
                             buffer.init(example), key)

    def act(params, obs, key, deterministic=False):
        noise_key, random_key = jax.random.split(key)
        action = policy(params, obs, noise_key, deterministic)
        if deterministic or "burn_in" not in params:  # evaluation; parameters of another run
            return action, ()
        random = jax.random.uniform(random_key, action.shape, action.dtype, -1.0, 1.0)
        return jnp.where(params["burn_in"] > 0, random, action), ()

    def message(params, traj, last_obs):
        return unroll_n_step(traj, config.n_step, config.gamma)

    def one_update(carry, key):
        params, learner, buffer_state = carry
        params, learner, buffer_state, stats = sgd_step(
            buffer, lambda items: jax.tree.map(lambda x: x[:, 0], items), params, learner,
            buffer_state, key, lambda obs: obs)
        return (params, learner, buffer_state), stats

    def learn(state: ReplayLearner, messages):
        """Add the messages' transitions [B, T E] to the replay, then update."""
        items = jax.tree.map(lambda x: x.reshape((-1, 1) + x.shape[2:]), messages)
        buffer_state = state.buffer
        for b in range(messages.reward.shape[0]):  # one replay row per message
            buffer_state = buffer.add(buffer_state, jax.tree.map(
                lambda x: x[b * per_message:(b + 1) * per_message], items))
        key, update_key = jax.random.split(state.key)
        nets = {k: state.params[k] for k in ("actor", "critic")}
        carry = (nets, state.learner, buffer_state)
        keys = jax.random.split(update_key, config.updates_per_message)
        stats_shape = jax.eval_shape(lambda c: jax.lax.scan(one_update, c, keys)[1], carry)

        def train(carry):
            carry, stats = jax.lax.scan(one_update, carry, keys)
            return carry, jax.tree.map(jnp.mean, stats)

        def wait(carry):  # burn-in: NaN, as the single-process loop reports it
            return carry, jax.tree.map(lambda s: jnp.full((), jnp.nan, s.dtype), stats_shape)

        ready = replay.num_stored(buffer_state) >= ready_at
        (nets, learner, buffer_state), stats = jax.lax.cond(ready, train, wait, carry)
        stats["replay_size"] = replay.num_stored(buffer_state).astype(jnp.float32)
        params = dict(nets, burn_in=1.0 - ready.astype(jnp.float32))
        return ReplayLearner(params, learner, buffer_state, key), stats

    al = ActorLearner(learner_init, act, message, learn, config.num_actors,
                      config.envs_per_actor, config.unroll_length, 1)
    return make_actor_learner(al, env, lag=True)


def env_needs(config: Config) -> EnvNeeds:
    if config.num_actors:
        return EnvNeeds(num_envs=config.num_actors * config.envs_per_actor, gamma=config.gamma)
    return standard_env_needs(config)


ALGORITHM = Algorithm(
    name="d4pg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("continuous",),
    default_budget=20_000,  # the Pendulum-v1 budget of the benchmark
    default_env="Pendulum-v1",
    env_needs=env_needs,
    ray_hint="give it K actor processes with --set num_actors=K (K >= 1)",
    hyperparameters=("learning_rate", "tau", "exploration_noise", "priority_beta"),
)
