r"""MADDPG: multi-agent deep deterministic policy gradient (Lowe et al. 2017).

N agents act at once, agent i with its own decentralised policy \mu_i(o_i) on its own
observation; each learns with a centralised critic Q_i(x, a_1, ..., a_N) that sees every
agent's observation x = (o_1, ..., o_N) and action (``critic_input``: [o_1, ..., o_N, a_1, ...,
a_N]). From a replay buffer D of joint transitions (x, a_1..a_N, r_1..r_N, x'):

    target        y_i = r_i + \gamma (1 - terminated_i) Q'_i(x', a'_1, ..., a'_N),
                  a'_j = \mu'_j(o'_j)  (the target policies)                      -> ``maddpg_target``
    critic        L(\theta_i) = E[(Q_i(x, a_1, ..., a_N) - y_i)^2]
    actor         \nabla_{\theta_i} J = E[\nabla_{\theta_i} \mu_i(o_i)
                      \nabla_{a_i} Q_i(x, a_1, ..., a_N)|_{a_i = \mu_i(o_i)}]   (eq. 6; the other
                  agents' a_j come from D)
    targets       \theta'_i <- \tau \theta_i + (1 - \tau) \theta'_i

Discrete actions, as in the released MADDPG code: \mu_i outputs logits u_i and an action is the
Gumbel-softmax relaxation a_i = softmax(u_i + g), g ~ Gumbel(0, 1) (``gumbel_softmax``), a point
of the simplex that the critic sees (stored in D, sampled again in the actor loss and for a'_j);
the environment gets argmax a_i, an exact sample of Categorical(u_i). The actor loss adds
``policy_reg`` E[u_i^2], as the released code does. With ``straight_through`` the critic sees the
one-hot sample, with the relaxed sample's gradient. Continuous actions are as in DDPG:
\mu_i(o_i) in [-1, 1]^d, Gaussian exploration noise, a'_j = \mu'_j(o'_j).

``critics="independent"`` gives each agent the critic Q_i(o_i, a_i) of its own observation and
action: independent DDPG, the paper's baseline. A comma-separated list sets it per agent
(``independent,centralised,centralised``: a DDPG adversary against MADDPG agents, as in the
paper's simple_adversary comparison). Each agent's episode return is logged beside the sum.

Policy ensembles (sec. 4.3, ``ensemble_size`` K > 1): agent i has K sub-policies \mu_i^{(k)},
one drawn uniformly at the start of each episode and played to its end; it maximises the
ensemble objective J_e(\mu_i) = E_k[J(\mu_i^{(k)})]. The paper keeps a replay buffer D_i^{(k)}
per sub-policy; here one buffer stores which sub-policy each agent played, and the actor loss
takes each transition with the sub-policy that played it, so \mu_i^{(k)} learns from its own
transitions (an unbiased estimate of \nabla J_e, as the paper's per-sub-policy buffers give);
the targets a'_j use the sub-policy agent j played. Evaluation and loaded policies act with
each agent's first sub-policy. Not built: the inference of the other agents' policies
(sec. 4.2); every agent's critic is given the other agents' actions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from pgzoo.algos.base import Agent, Algorithm, EnvNeeds
from pgzoo.algos.loops.replay import check_budget, make_agent
from pgzoo.core import config as cfg
from pgzoo.core import replay
from pgzoo.core.distributions import gumbel_softmax
from pgzoo.core.networks import ACTIVATIONS, MLP, QNetwork, dense
from pgzoo.core.optim import soft_update
from pgzoo.envs.multi_agent import join_agents, split_agents
from pgzoo.errors import PgzooError

CRITICS = ("centralised", "independent")


@dataclass(frozen=True)
class Config:
    num_envs: int = 1  # the released MADDPG code (openai/maddpg train.py)
    buffer_size: int = 1_000_000  # maddpg train.py
    batch_size: int = 1024  # maddpg train.py
    learning_starts: int = 25_600  # maddpg: max_episode_len x batch_size before updating
    learning_rate: float = 1e-2  # maddpg train.py (actor and critic)
    gamma: float = 0.95  # maddpg train.py
    tau: float = 0.01  # maddpg: polyak 1 - 1e-2
    max_grad_norm: float = 0.5  # maddpg: each gradient clipped to norm 0.5
    policy_reg: float = 1e-3  # maddpg: 1e-3 E[u^2] on the logits
    train_every: int = 100  # maddpg: an update every 100 steps
    gradient_steps: int = 1  # maddpg: one update of every agent each time
    noise_std: float = 0.1  # continuous actions: Gaussian exploration, as ddpg here
    temperature: float = 1.0  # the Gumbel-softmax temperature; maddpg: 1
    straight_through: bool = False  # maddpg: the critic sees the relaxed sample
    critics: str = "centralised"  # or independent (DDPG per agent), or one per agent, a,b,c
    ensemble_size: int = 1  # K sub-policies per agent (Lowe et al. sec. 4.3); 1: none
    block_size: int = 100  # environment steps per State step (only sets the iteration length)
    hidden_sizes: tuple[int, ...] = (64, 64)  # maddpg: two layers of 64 units
    activation: str = "relu"  # maddpg

    def __post_init__(self):
        cfg.positive(self, "num_envs", "buffer_size", "batch_size", "learning_rate",
                     "ensemble_size", "max_grad_norm", "train_every", "gradient_steps", "block_size",
                     "temperature")
        cfg.non_negative(self, "learning_starts", "noise_std", "policy_reg")
        cfg.unit_interval(self, "gamma", "tau")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))
        for c in self.critics.split(","):
            if c.strip() not in CRITICS:
                raise PgzooError(f"maddpg: critics must be centralised, independent or a "
                                 f"comma-separated list of those, one per agent; got "
                                 f"{self.critics!r}")


class Learner(NamedTuple):
    target_params: Any
    opt_state: Any


class Actor(nn.Module):
    """mu_i(o_i): logits (discrete agent) or an action in [-1, 1]^d (tanh; continuous)."""

    out: int
    continuous: bool
    hidden_sizes: tuple[int, ...]
    activation: str

    @nn.compact
    def __call__(self, obs):
        x = dense(self.out, 0.01)(MLP(self.hidden_sizes, self.activation)(obs))
        return jnp.tanh(x) if self.continuous else x


def critic_input(obs: list, actions: list, i: int, centralised: bool):
    """Q_i's input: (x, a_1..a_N) = [o_1, ..., o_N] and [a_1, ..., a_N] (centralised), or
    (o_i, a_i) (independent DDPG)."""
    if centralised:
        return jnp.concatenate(obs, -1), jnp.concatenate(actions, -1)
    return obs[i], actions[i]


def maddpg_target(reward, terminated, next_q, gamma):
    """y_i = r_i + gamma (1 - terminated_i) Q'_i(x', mu'_1(o'_1), ..., mu'_N(o'_N))."""
    return reward + gamma * (1.0 - terminated) * next_q


def clip_each_by_norm(max_norm: float) -> optax.GradientTransformation:
    """Each gradient tensor scaled to norm at most ``max_norm`` (the released code's
    tf.clip_by_norm per variable; optax's clip_by_global_norm clips them together)."""
    def clip(updates, params=None):
        def one(g):
            norm = jnp.sqrt(jnp.sum(g**2))
            return g * jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
        return jax.tree.map(one, updates)
    return optax.stateless(clip)


def make(config: Config, env, total_steps: int) -> Agent:
    obs_space, act_space = env.observation_space, env.action_space
    n = len(act_space.agents)
    kinds = [s.kind for s in act_space.spaces]
    dims = [s.n if k == "discrete" else s.shape[0] for s, k in zip(act_space.spaces, kinds)]
    which = [c.strip() for c in config.critics.split(",")]
    if len(which) == 1:
        which = which * n
    if len(which) != n:
        raise PgzooError(f"maddpg: critics lists {len(which)} agents and {env.spec} has {n} "
                         f"({', '.join(act_space.agents)})")
    centralised = [c == "centralised" for c in which]
    actors = [Actor(d, k == "continuous", config.hidden_sizes, config.activation)
              for d, k in zip(dims, kinds)]
    critic = QNetwork(0, config.hidden_sizes, config.activation)
    tx = optax.chain(clip_each_by_norm(config.max_grad_norm), optax.adam(config.learning_rate))
    check_budget(config, total_steps)
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)

    def agents_obs(obs):
        return split_agents(obs, obs_space)

    def relaxed(i, out, key):
        """Agent i's action as the critic sees it, from its actor's output."""
        if kinds[i] == "continuous":
            return out
        return gumbel_softmax(out, key, config.temperature, config.straight_through)

    def outputs(i, theta, obs_i, k):
        """Agent i's actor output on each observation of the batch, each from the sub-policy
        k [B] of its episode (``theta`` holds the K sub-policies stacked)."""
        every = jax.vmap(lambda p: actors[i].apply(p, obs_i))(theta)  # [K, B, out]
        return jnp.take_along_axis(every, k[None, :, None], axis=0)[0]

    def joint_actions(actor_params, obs, key, k, deterministic=False):
        """Every agent's relaxed action (or mu_i(o_i) and the argmax one-hot when
        deterministic) from its own observation, agent i acting with sub-policy k[:, i]."""
        keys = jax.random.split(key, n)
        outs = [outputs(i, actor_params[i], o, k[:, i]) for i, o in enumerate(agents_obs(obs))]
        if deterministic:
            return [u if kinds[i] == "continuous" else jax.nn.one_hot(jnp.argmax(u, -1), dims[i])
                    for i, u in enumerate(outs)]
        return [relaxed(i, u, keys[i]) for i, u in enumerate(outs)]

    def to_env(action):
        """What the environment gets of a stored (actions, sub-policies): the argmax of a
        discrete agent's action vector."""
        per_agent = [jnp.argmax(a, -1).astype(jnp.int32) if kind == "discrete" else a
                     for a, kind in zip(action[0], kinds)]
        return join_agents(per_agent, act_space)

    def first_sub_policies(obs):
        return jnp.zeros((jax.tree.leaves(obs)[0].shape[0], n), jnp.int32)

    def init_learner(key, obs, action):
        keys = jax.random.split(key, 2 * n)
        per_obs = agents_obs(obs)
        actor_params = tuple(
            jax.vmap(lambda k, o=per_obs[i], i=i: actors[i].init(k, o))(
                jax.random.split(keys[i], config.ensemble_size)) for i in range(n))
        acts = joint_actions(actor_params, obs, key, first_sub_policies(obs))
        critic_params = tuple(
            critic.init(keys[n + i], *critic_input(per_obs, acts, i, centralised[i]))
            for i in range(n))
        params = {"actors": actor_params, "critics": critic_params}
        opt = {"actors": tuple(tx.init(p) for p in actor_params),
               "critics": tuple(tx.init(p) for p in critic_params)}
        return params, Learner(params, opt)

    def act(params, obs, key, k, deterministic=False):
        act_key, noise_key = jax.random.split(key)
        acts = joint_actions(params["actors"], obs, act_key, k, deterministic)
        noise_keys = jax.random.split(noise_key, n)
        return [jnp.clip(a + config.noise_std * jax.random.normal(nk, a.shape), -1.0, 1.0)
                if kinds[i] == "continuous" and not deterministic else a
                for i, (a, nk) in enumerate(zip(acts, noise_keys))]

    def explore(params, obs, sub_policy, key, step):
        """Each agent acts with the sub-policy drawn at its episode's start; ``sub_policy``
        holds it plus one per environment and agent (0: the episode has just begun)."""
        draw_key, act_key = jax.random.split(key)
        drawn = jax.random.randint(draw_key, sub_policy.shape, 1, config.ensemble_size + 1)
        sub_policy = jnp.where(sub_policy == 0, drawn, sub_policy)
        k = sub_policy - 1
        return (tuple(act(params, obs, act_key, k)), k), sub_policy

    def init_sub_policy(num_envs):
        return jnp.zeros((num_envs, n), jnp.int32)

    def random_action(key, num_envs, explored=None):
        """The burn-in: the uniform policy's relaxed sample, uniform in [-1, 1]^d (continuous),
        labelled with the sub-policies of the episode."""
        keys = jax.random.split(key, n)
        acts = tuple(
            gumbel_softmax(jnp.zeros((num_envs, d)), k, config.temperature,
                           config.straight_through) if kind == "discrete"
            else jax.random.uniform(k, (num_envs, d), jnp.float32, -1.0, 1.0)
            for k, d, kind in zip(keys, dims, kinds))
        return acts, (jnp.zeros((num_envs, n), jnp.int32) if explored is None else explored[1])

    def update(params, learner: Learner, buffer_state, key, normalize):
        keys = jax.random.split(key, 2 * n + 1)
        targets = learner.target_params
        new_actors, new_critics, actor_opt, critic_opt = [], [], [], []
        stats = {}
        for i in range(n):  # each agent on its own minibatch, as the released code samples
            b = jax.tree.map(lambda x: x[:, 0], buffer.sample(buffer_state, keys[i]).experience)
            obs, next_obs = agents_obs(b.obs), agents_obs(b.next_obs)
            actions, k = list(b.action[0]), b.action[1]  # and each agent's sub-policy
            # a'_j = mu'_j(o'_j), of the sub-policy each agent played the episode with
            next_actions = joint_actions(targets["actors"], b.next_obs, keys[n + i], k)
            next_q = critic.apply(targets["critics"][i],
                                  *critic_input(next_obs, next_actions, i, centralised[i]))
            y = maddpg_target(b.reward[:, i], b.terminated[:, i].astype(jnp.float32), next_q,
                              config.gamma)

            def critic_loss(w):
                q = critic.apply(w, *critic_input(obs, actions, i, centralised[i]))
                return jnp.mean((q - y) ** 2)

            c_loss, grads = jax.value_and_grad(critic_loss)(params["critics"][i])
            updates, c_opt = tx.update(grads, learner.opt_state["critics"][i])
            w = optax.apply_updates(params["critics"][i], updates)

            def actor_loss(theta):
                # each sub-policy from the transitions it played: the ensemble's objective
                out = outputs(i, theta, obs[i], k[:, i])
                own = relaxed(i, out, jax.random.fold_in(keys[2 * n], i))
                joint = actions[:i] + [own] + actions[i + 1:]  # the others' actions from D
                q = critic.apply(w, *critic_input(obs, joint, i, centralised[i]))
                reg = config.policy_reg * jnp.mean(out**2) if kinds[i] == "discrete" else 0.0
                return -jnp.mean(q) + reg

            a_loss, grads = jax.value_and_grad(actor_loss)(params["actors"][i])
            updates, a_opt = tx.update(grads, learner.opt_state["actors"][i])
            new_actors.append(optax.apply_updates(params["actors"][i], updates))
            new_critics.append(w)
            actor_opt.append(a_opt)
            critic_opt.append(c_opt)
            name = act_space.agents[i]
            stats[f"{name}/critic_loss"], stats[f"{name}/actor_loss"] = c_loss, a_loss
            stats[f"{name}/q_mean"] = jnp.mean(y)
        params = {"actors": tuple(new_actors), "critics": tuple(new_critics)}
        learner = Learner(soft_update(targets, params, config.tau),
                          {"actors": tuple(actor_opt), "critics": tuple(critic_opt)})
        return params, learner, buffer_state, stats

    def policy(params, obs, key, deterministic=False):
        """Evaluation and loaded policies: every agent's first sub-policy."""
        return to_env((act(params, obs, key, first_sub_policies(obs), deterministic), None))

    return make_agent(env, config, buffer, init_learner, update, policy, explore,
                      init_noise=init_sub_policy, train_every=config.train_every,
                      random_action=random_action, env_action=to_env)


def env_needs(config: Config) -> EnvNeeds:
    return EnvNeeds(num_envs=config.num_envs, gamma=config.gamma, multi_agent=True)


ALGORITHM = Algorithm(
    name="maddpg", config=Config, make=make, summary=__doc__.strip().splitlines()[0],
    action_spaces=("discrete", "continuous"),  # each agent's: a task may mix them
    default_budget=1_000_000,
    default_env="jaxmarl:MPE_simple_spread_v3",
    env_needs=env_needs,
    hyperparameters=("learning_rate", "tau", "policy_reg", "noise_std"),
)
