r"""ACER: actor-critic with experience replay (Wang et al. 2017), discrete actions.

"Sample efficient actor-critic with experience replay".

One network with a shared torso gives the policy f(.|s) = softmax(logits) and Q_w(s, .); an
average policy network \theta_a <- \alpha \theta_a + (1 - \alpha) \theta follows it. Each
iteration collects T steps of N environments with the current policy, storing the behaviour
probabilities \mu(.|s_t), makes one update on that rollout (on-policy, \mu = \pi) and then
K ~ Poisson(``replay_ratio``) updates on rollouts replayed from a buffer of the last
``buffer_rollouts`` (each environment's column from its own random rollout, as Baselines does).

An update on a rollout, with \rho_t(a) = f(a|s_t) / \mu(a|s_t) and V(s) = \sum_a f(a|s) Q_w(s, a):

    Q^ret(s_t, a_t) = r_t + \gamma [ \bar\rho_{t+1} (Q^ret_{t+1} - Q_w(s_{t+1}, a_{t+1})) + V(s_{t+1}) ],
                      \bar\rho = min(1, \rho(a))                              (Retrace, eq. 5, 9)
    g_t = min(c, \rho_t(a_t)) \nabla_f \ln f(a_t) (Q^ret_t - V(s_t))
          + \sum_a [1 - c / \rho_t(a)]_+ f(a) \nabla_f \ln f(a) (Q_w(s_t, a) - V(s_t))
          + c_e \nabla_f H[f]                                  (truncation with bias correction, eq. 9)

g_t is the gradient with respect to the policy's statistics f(.|s_t) (the probabilities), not the
network weights. The trust region (eq. 12) projects it against the average policy: with
k_t = \nabla_f KL[f_a(.|s_t) || f(.|s_t)] = -f_a / f,

    z*_t = g_t - max(0, (k_t^T g_t - \delta) / ||k_t||^2) k_t,

and the weights move along \sum_t (\partial f_t / \partial \theta)^T z*_t (one back-propagation of
z*), plus the critic's step on q_coef (Q^ret - Q_w(s_t, a_t))^2 / 2, the whole clipped to a
global norm and taken by RMSprop with a linearly decaying rate. Q^ret bootstraps from V of the
state after the rollout, stops at terminations and bootstraps from V(s_final) at time limits.
The defaults are Stable-Baselines' and OpenAI Baselines' (T 20, c 10, \delta 1, \alpha 0.99,
replay ratio 4, buffer 5000 steps per environment, q_coef 0.5, lr 7e-4 decaying linearly,
max grad norm 10, RMSprop as TensorFlow 1 has it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm
from pgzoo.core import config as cfg
from pgzoo.core.distributions import distribution, select_action
from pgzoo.core.networks import ACTIVATIONS, CategoricalHead, Torso
from pgzoo.core.optim import soft_update
from pgzoo.core.returns import bootstrap_truncated, retrace
from pgzoo.core.rollout import episode_metrics, rollout
from pgzoo.errors import check


@dataclass(frozen=True)
class Config:
    num_envs: int = 8  # rl-baselines-zoo acer.yml, CartPole-v1
    num_steps: int = 20  # T
    buffer_rollouts: int = 250  # Baselines: buffer_size 5000 / T
    replay_ratio: float = 4.0  # the mean of the Poisson number of replay updates per rollout
    replay_start: int = 50  # rollouts in the buffer before replay starts (1000 steps / T)
    gamma: float = 0.99
    truncation: float = 10.0  # c
    trust_region: bool = True
    delta: float = 1.0  # the trust region's bound
    average_decay: float = 0.99  # alpha of the average policy network
    q_coef: float = 0.5
    ent_coef: float = 0.01
    learning_rate: float = 7e-4
    anneal_lr: bool = True  # Baselines' linear schedule
    rmsprop_decay: float = 0.99
    optimizer_eps: float = 1e-5
    max_grad_norm: float = 10.0
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_obs: bool = False
    normalize_reward: bool = False  # rl-baselines-zoo's `normalize: true` scales rewards too

    def __post_init__(self):
        cfg.positive(self, "num_envs", "num_steps", "buffer_rollouts", "truncation", "delta",
                     "learning_rate", "optimizer_eps")
        cfg.non_negative(self, "replay_ratio", "replay_start", "q_coef", "ent_coef",
                         "max_grad_norm")
        cfg.unit_interval(self, "gamma", "average_decay", "rmsprop_decay")
        check(self.replay_start <= self.buffer_rollouts,
              f"replay_start ({self.replay_start}) cannot exceed buffer_rollouts "
              f"({self.buffer_rollouts})")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


class PolicyAndQ(nn.Module):
    """Logits of f(.|s) and Q(s, .) on one torso."""

    num_actions: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        x = Torso(self.hidden_sizes, self.activation, self.obs_ndim)(obs)
        return CategoricalHead(self.num_actions)(x), nn.Dense(self.num_actions)(x)


class Rollout(NamedTuple):
    """T steps of N environments, and the observation after them: [T(+1), N, ...]."""

    obs: jax.Array  # [T + 1, N, ...]
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    mu: jax.Array  # [T, N, A] the behaviour policy's probabilities


class Params(NamedTuple):
    network: Any
    average: Any  # the average policy network theta_a


class State(NamedTuple):
    params: Params
    opt_state: Any
    buffer: Rollout  # [slots, ...]
    stored: jax.Array  # rollouts stored so far
    env_state: Any
    obs: jax.Array
    key: jax.Array
    updates: jax.Array


def truncated_gradient(f, mu, q, action, q_ret, c):
    """g with respect to the statistics f [..., A]: the truncated importance-weighted term
    min(c, rho(a_t)) (Q^ret - V) / f(a_t) on the taken action plus the bias correction
    [1 - c / rho(a)]_+ (Q(a) - V) on every action (the gradient of
    [1 - c/rho(a)]_+ f(a) ln f(a) (Q(a) - V) with the coefficient held fixed)."""
    v = jnp.sum(f * q, axis=-1)
    rho = f / (mu + 1e-8)
    onehot = jax.nn.one_hot(action, f.shape[-1])
    rho_taken = jnp.sum(rho * onehot, axis=-1)
    f_taken = jnp.sum(f * onehot, axis=-1)
    taken = (jnp.minimum(c, rho_taken) * (q_ret - v) / f_taken)[..., None] * onehot
    correction = jax.nn.relu(1.0 - c / rho) * (q - v[..., None])
    return taken + correction


def trust_region_projection(g, k, delta):
    """z* = argmin_z ||z - g||^2 / 2 subject to k^T z <= delta (eq. 12, closed form), for
    per-sample statistics gradients g and KL gradients k [..., A]."""
    excess = jnp.sum(k * g, axis=-1) - delta
    scale = jnp.maximum(0.0, excess / (jnp.sum(k * k, axis=-1) + 1e-8))
    return g - scale[..., None] * k, scale


def make(config: Config, env, total_steps: int) -> Agent:
    check(env.action_space.kind == "discrete", "acer supports discrete actions only")
    num_actions = env.action_space.n
    net = PolicyAndQ(num_actions, tuple(config.hidden_sizes), config.activation,
                     len(env.observation_space.shape))
    batch = config.num_envs * config.num_steps
    num_iterations = max(1, total_steps // batch)
    rounds = 1.0 + config.replay_ratio  # expected updates per iteration
    # decays linearly over the expected number of updates, (1 + replay_ratio) per iteration (it
    # ends a little above 0: there is no replay before ``replay_start``)
    lr = (config.learning_rate if not config.anneal_lr else
          lambda count: config.learning_rate * jnp.maximum(
              1.0 - count / (num_iterations * rounds), 0.0))
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm) if config.max_grad_norm
                     else optax.identity(),
                     # TF1's RMSProp, as Baselines uses it: eps inside the square root, the
                     # mean square starting at 1
                     optax.rmsprop(lr, decay=config.rmsprop_decay, eps=config.optimizer_eps,
                                   eps_in_sqrt=True, initial_scale=1.0))
    T, N = config.num_steps, config.num_envs

    def probs(network, obs):
        return jax.nn.softmax(net.apply(network, obs)[0])

    def policy(params: Params, obs, key, deterministic=False):
        dist = distribution(net.apply(params.network, obs)[0])
        return select_action(dist, key, deterministic).astype(jnp.int32)

    def init(key):
        net_key, env_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        network = net.init(net_key, ts.obs)
        slots = config.buffer_rollouts
        zeros = lambda shape, dtype: jnp.zeros((slots,) + shape, dtype)
        buffer = Rollout(zeros((T + 1,) + ts.obs.shape, ts.obs.dtype),
                         zeros((T, N), jnp.int32), zeros((T, N), jnp.float32),
                         zeros((T, N), bool), zeros((T, N), bool),
                         zeros((T,) + ts.obs.shape, ts.obs.dtype),
                         zeros((T, N, num_actions), jnp.float32))
        return State(Params(network, network), tx.init(network), buffer, jnp.int32(0),
                     env_state, ts.obs, state_key, jnp.int32(0))

    def update(params: Params, opt_state, data: Rollout):
        """One ACER update on a rollout; returns the new params, optimiser state and metrics."""
        network = params.network
        logits, q = net.apply(network, data.obs)  # [T + 1, N, A]
        f = jax.lax.stop_gradient(jax.nn.softmax(logits))
        q = jax.lax.stop_gradient(q)
        v = jnp.sum(f * q, axis=-1)  # V(s) = sum_a f(a|s) Q(s, a)
        f_fin, q_fin = net.apply(network, data.final_obs)
        v_final = jnp.sum(jax.nn.softmax(f_fin) * q_fin, axis=-1)
        rewards = bootstrap_truncated(data.reward, data.truncated, v_final, config.gamma)
        dones = jnp.logical_or(data.terminated, data.truncated)
        onehot = jax.nn.one_hot(data.action, num_actions)
        q_taken = jnp.sum(q[:T] * onehot, axis=-1)
        rho = f[:T] / (data.mu + 1e-8)  # Baselines: f / (mu + eps)
        rho_taken = jnp.sum(rho * onehot, axis=-1)
        q_ret = jax.lax.stop_gradient(retrace(
            rewards, dones, q_taken, v[:T], jnp.minimum(1.0, rho_taken), v[T], config.gamma))

        # the policy's gradient with respect to its statistics f, and the trust region
        g = truncated_gradient(f[:T], data.mu, q[:T], data.action, q_ret, config.truncation)
        g = g - config.ent_coef * (jnp.log(f[:T] + 1e-8) + 1.0)  # grad_f of c_e H[f]
        f_avg = probs(params.average, data.obs[:T])
        k = -f_avg / (f[:T] + 1e-8)  # grad_f KL[f_a || f]
        if config.trust_region:
            z, scale = trust_region_projection(g, k, config.delta)
        else:
            z, scale = g, jnp.zeros(g.shape[:-1])
        # back-propagate z (ascent) through f, averaged over the T x N samples
        f_of = lambda w: jax.nn.softmax(net.apply(w, data.obs[:T])[0])
        _, pullback = jax.vjp(f_of, network)
        (policy_grads,) = pullback(-z / (T * N))

        def q_loss(w):
            q_all = net.apply(w, data.obs[:T])[1]
            return config.q_coef * 0.5 * jnp.mean((q_ret - jnp.sum(q_all * onehot, -1)) ** 2)

        q_value, q_grads = jax.value_and_grad(q_loss)(network)
        grads = jax.tree.map(jnp.add, policy_grads, q_grads)
        updates, opt_state = tx.update(grads, opt_state, network)
        network = optax.apply_updates(network, updates)
        average = soft_update(params.average, network, 1.0 - config.average_decay)
        entropy = -jnp.sum(f[:T] * jnp.log(f[:T] + 1e-8), axis=-1).mean()
        kl = jnp.sum(f_avg * (jnp.log(f_avg + 1e-8) - jnp.log(f[:T] + 1e-8)), -1).mean()
        metrics = {"q_loss": q_value / jnp.maximum(config.q_coef, 1e-8), "entropy": entropy,
                   "average_kl": kl, "trust_region_active": jnp.mean(scale > 0.0),
                   "importance_weight": rho_taken.mean(),
                   "advantage": jnp.mean(q_ret - v[:T])}
        return Params(network, average), opt_state, metrics

    def step(state: State):
        key, rollout_key, count_key, replay_key = jax.random.split(state.key, 4)
        params = state.params

        def act(obs, k):
            p = probs(params.network, obs)
            action = jax.random.categorical(k, jnp.log(p + 1e-20)).astype(jnp.int32)
            return action, p

        env_state, obs, traj = rollout(env, state.env_state, state.obs, rollout_key, act, T)
        fresh = Rollout(jnp.concatenate([traj.obs, obs[None]]), traj.action,
                        traj.reward.astype(jnp.float32), traj.terminated, traj.truncated,
                        traj.final_obs, traj.extras)
        slot = state.stored % config.buffer_rollouts
        buffer = jax.tree.map(lambda b, x: b.at[slot].set(x.astype(b.dtype)), state.buffer,
                              fresh)
        stored = state.stored + 1
        params, opt_state, metrics = update(params, state.opt_state, fresh)  # on-policy

        # replay: each environment's column from its own random stored rollout
        filled = jnp.minimum(stored, config.buffer_rollouts)
        ready = stored >= config.replay_start
        replays = jnp.where(ready, jax.random.poisson(count_key, config.replay_ratio), 0)

        def replay(i, carry):
            params, opt_state, sums = carry
            k = jax.random.fold_in(replay_key, i)
            slots = jax.random.randint(k, (N,), 0, filled)
            data = jax.tree.map(lambda b: jnp.swapaxes(b[slots, :, jnp.arange(N)], 0, 1),
                                buffer)
            params, opt_state, m = update(params, opt_state, data)
            return params, opt_state, jax.tree.map(jnp.add, sums, m)

        params, opt_state, replay_sums = jax.lax.fori_loop(
            0, replays, replay, (params, opt_state, jax.tree.map(jnp.zeros_like, metrics)))
        # the on-policy update's metrics, and the mean over this iteration's replay updates
        # (NaN without replay); on-policy, the importance weight is 1
        replay_mean = {f"replay_{k}": jnp.where(replays > 0, v / jnp.maximum(replays, 1),
                                                jnp.nan)
                       for k, v in replay_sums.items() if k != "advantage"}
        metrics = {**{k: v for k, v in metrics.items() if k != "importance_weight"},
                   **replay_mean, "replay_updates": replays.astype(jnp.float32),
                   **episode_metrics(traj.info)}
        return State(params, opt_state, buffer, stored, env_state, obs, key,
                     state.updates + 1 + replays), metrics

    return Agent(init, step, policy, batch)


ALGORITHM = Algorithm(
    name="acer", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete",),
    default_budget=500_000,  # rl-baselines-zoo acer.yml, CartPole-v1
    hyperparameters=("replay_ratio", "gamma", "truncation", "delta", "average_decay",
                     "q_coef", "ent_coef", "learning_rate"),
)
