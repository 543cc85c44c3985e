r"""The loop of black-box policy search (CEM, CMA-ES, OpenAI-ES): the policy's parameters
\theta \in R^d are the search space and an episode's return is the fitness F(\theta).

One State step is one generation:

1. ask: the strategy samples a population \theta_1, ..., \theta_n around its mean;
2. evaluate: every member plays ``episodes_per_member`` episodes, F_i the mean of their
   returns. On a JAX-native environment the whole generation (every member, every episode) is
   one vmapped rollout of the task's time limit; through the Gymnasium bridge the population
   plays ``num_envs`` environments at a time;
3. tell: the strategy moves its search distribution towards the fitter members.

The current mean \bar\theta also plays ``episodes_per_member`` episodes each generation: its
return is the metric ``mean_policy_return`` (and the curve). That is the mean before this
generation's update, under the observation statistics of its start; the ``params`` that
evaluation, ``pgzoo.load`` and checkpoints give are the mean after it, with the statistics the
generation's rollouts updated, so the curve lags them by one generation. With
``common_starts`` every member's e-th episode starts from the same state (common random numbers:
the fitness differences are then the policies', not the start states'). Observations are normalised (Salimans et al.
2017) with running statistics of every observation the population sees
(``normalize_obs``), frozen within a generation.

The budget counts environment steps: a generation takes (n + 1) x ``episodes_per_member`` x
the time limit of them, the steps the compiled rollout simulates (a member whose episode ended
early waits for the others); the steps inside episodes are the metric ``episode_steps``.
Metrics per generation: best, mean and median fitness, the strategy's step size (``sigma``),
and the mean policy's return.

Restarts (``restart_patience`` > 0; Auger & Hansen 2005 restart CMA-ES for this): a search that
stalls at a local optimum (on Pendulum, a policy that swings but does not balance) starts again
from a fresh random network with its initial step size. The search's score is an exponential
average of the population's median fitness, s_t = 0.9 s_{t-1} + 0.1 median_i F_i; when s has not
passed its best of the current search by ``restart_tolerance`` x |best| (0: by any amount; a
search creeping along a plateau does not count as improving) for ``restart_patience``
generations, the search restarts.
The policy the run gives (``params``, the curve's mean policy) is then the incumbent: the search
mean at the generation with the best score of all searches so far, acting with the observation
statistics of that generation (the running statistics move on). The population is the same
size in every search (a growing one, IPOP, does not fit static shapes).

A strategy supplies ``init(key, mean) -> state``, ``ask(key, state) -> (population [n, d],
state)`` (CMA-ES refreshes its eigendecomposition there),
``tell(population, fitness, state) -> state`` (fitness to maximise; evosax minimises, so its
wrapper negates), ``mean(state) -> [d]`` and ``sigma(state) -> scalar``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from pgzoo.algos.base import EPISODE_LENGTH_SUM, EPISODE_RETURN_SUM, EPISODES, Agent, EnvNeeds
from pgzoo.core import config as cfg
from pgzoo.core.networks import ACTIVATIONS, Torso, dense
from pgzoo.errors import PgzooError, check


@dataclass(frozen=True)
class EvolutionConfig:
    """The settings every evolution strategy here has."""

    population_size: int = 64
    episodes_per_member: int = 1  # episodes averaged into one fitness value
    num_envs: int = 0  # environments at a time; 0: all (n + 1) x episodes at once (JAX-native)
    hidden_sizes: tuple[int, ...] = (32, 32)
    activation: str = "tanh"  # Salimans et al. 2017
    normalize_obs: bool = True  # Salimans et al. 2017: statistics of the population's rollouts
    # common random numbers: episode e of every member (and of the mean) starts from the same
    # state, drawn afresh each generation, so the ranking compares policies, not start states
    # (JAX-native environments only)
    common_starts: bool = False
    # restart a search whose score has not improved for this many generations (0: never);
    # Auger & Hansen 2005 (module docstring)
    restart_patience: int = 0
    # the relative improvement of the score that counts as progress for restarts
    restart_tolerance: float = 0.0

    def __post_init__(self):
        cfg.positive(self, "population_size", "episodes_per_member")
        cfg.non_negative(self, "num_envs", "restart_patience", "restart_tolerance")
        check(self.population_size >= 2, "population_size must be at least 2")
        cfg.one_of(self, "activation", tuple(ACTIVATIONS))


def evolution_needs(config) -> EnvNeeds:
    members = (config.population_size + 1) * config.episodes_per_member
    return EnvNeeds(num_envs=config.num_envs or members, normalize_obs=False)


class Policy(nn.Module):
    """A deterministic policy network: argmax of the logits (discrete) or tanh of the output
    (continuous, in [-1, 1]^d)."""

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (32, 32)
    activation: str = "tanh"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs):
        out = dense(self.action_dim, 0.01)(Torso(self.hidden_sizes, self.activation,
                                                 self.obs_ndim)(obs))
        return jnp.argmax(out, axis=-1).astype(jnp.int32) if self.discrete else jnp.tanh(out)


class Strategy(NamedTuple):
    init: Callable[[jax.Array, jax.Array], Any]
    ask: Callable[[jax.Array, Any], tuple[jax.Array, Any]]
    tell: Callable[[jax.Array, jax.Array, Any], Any]
    mean: Callable[[Any], jax.Array]
    sigma: Callable[[Any], jax.Array]


def evosax_strategy(es, params) -> Strategy:
    """A Strategy of an evosax distribution-based algorithm ``es`` with its ``params``
    (evosax minimises: it is told -F)."""
    return Strategy(
        init=lambda key, mean: es.init(key, mean, params),
        ask=lambda key, state: es.ask(key, state, params),
        tell=lambda population, fitness, state: es.tell(
            None, population, -fitness, state, params)[0],
        mean=lambda state: state.mean,
        sigma=lambda state: jnp.asarray(state.std, jnp.float32))


class RestartState(NamedTuple):
    search: Any  # the current search's strategy state
    score: jax.Array  # s_t, the exponential average of the median fitness
    search_best: jax.Array  # the best s_t of the current search
    stale: jax.Array  # generations since s_t last passed search_best
    incumbent: jax.Array  # the search mean at the best s_t of every search so far [d]
    incumbent_score: jax.Array
    restarts: jax.Array
    key: jax.Array  # draws the fresh networks of the restarts


SCORE_DECAY = 0.9
# "no score yet": finite, as every value a State holds must be (the trainer's divergence check)
NO_SCORE = float(jnp.finfo(jnp.float32).min)


def with_restarts(strategy: Strategy, patience: int,
                  fresh_mean: Callable[[jax.Array], jax.Array], tolerance: float = 0.0
                  ) -> Strategy:
    """``strategy`` restarted from ``fresh_mean(key)`` (a random network's flat parameters)
    whenever its score has not improved for ``patience`` generations (module docstring)."""

    def init(key, mean):
        first, key = jax.random.split(key)
        return RestartState(strategy.init(first, mean), jnp.float32(NO_SCORE),
                            jnp.float32(NO_SCORE), jnp.int32(0), mean, jnp.float32(NO_SCORE),
                            jnp.int32(0), key)

    def ask(key, state):
        population, search = strategy.ask(key, state.search)
        return population, state._replace(search=search)

    def tell(population, fitness, state):
        search = strategy.tell(population, fitness, state.search)
        median = jnp.median(fitness)
        score = jnp.where(state.score > NO_SCORE,
                          SCORE_DECAY * state.score + (1 - SCORE_DECAY) * median, median)
        improved = score > state.search_best + tolerance * jnp.abs(state.search_best)
        stale = jnp.where(improved, 0, state.stale + 1)
        search_best = jnp.where(improved, score, state.search_best)
        best = score > state.incumbent_score
        # the incumbent is the mean that was asked from, whose population earned this score
        incumbent = jnp.where(best, strategy.mean(state.search), state.incumbent)
        restart = stale >= patience
        key, fresh_key, init_key = jax.random.split(state.key, 3)
        fresh = strategy.init(init_key, fresh_mean(fresh_key))
        if hasattr(fresh, "best_solution"):  # evosax's best so far spans every search (a
            # fresh state's is NaN and +inf, which would read as divergence)
            fresh = fresh.replace(best_solution=search.best_solution,
                                  best_fitness=search.best_fitness)
        search = jax.tree.map(lambda new, old: jnp.where(restart, new, old), fresh, search)
        return RestartState(
            search, jnp.where(restart, NO_SCORE, score),
            jnp.where(restart, NO_SCORE, search_best),
            jnp.where(restart, 0, stale), incumbent,
            jnp.maximum(score, state.incumbent_score), state.restarts + restart, key)

    return Strategy(init, ask, tell, lambda state: state.incumbent,
                    lambda state: strategy.sigma(state.search))


class ObsStats(NamedTuple):
    """Running mean and variance of observations (Chan et al.'s parallel update)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    def normalize(self, obs):
        return jnp.clip((obs - self.mean) / jnp.sqrt(self.var + 1e-8), -5.0, 5.0)

    @staticmethod
    def from_sums(count, total, squares, shift, shape) -> ObsStats:
        """The statistics of ``count`` observations x from the sums of x - shift and of
        (x - shift)^2: with ``shift`` near their mean, float32 keeps a variance that is small
        beside the mean (E[x^2] - E[x]^2 unshifted would cancel it away)."""
        offset = total / jnp.maximum(count, 1.0)
        var = jnp.maximum(squares / jnp.maximum(count, 1.0) - offset ** 2, 0.0)
        return ObsStats((shift + offset).reshape(shape), var.reshape(shape), count)

    def merge(self, other: ObsStats) -> ObsStats:
        """The statistics of both sets of observations (Chan et al.)."""
        total = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / jnp.maximum(total, 1.0)
        m2 = (self.var * self.count + other.var * other.count
              + delta ** 2 * self.count * other.count / jnp.maximum(total, 1.0))
        return ObsStats(mean, m2 / jnp.maximum(total, 1.0), total)


class Params(NamedTuple):
    """What the policy takes: the mean network's parameters and the observation statistics."""

    network: Any
    obs_stats: ObsStats


class State(NamedTuple):
    # the mean policy (evaluation, export); with restarts the incumbent, with the observation
    # statistics its population was scored under
    params: Params
    strategy: Any  # the whole search distribution (evosax state or CEM's)
    obs_stats: ObsStats  # the running statistics the population acts with
    env_state: Any
    obs: jax.Array
    key: jax.Array
    generation: jax.Array


def make_evolution(config, env, total_steps: int,
                   make_strategy: Callable[[int], Strategy]) -> Agent:
    """The Agent of an evolution strategy; ``make_strategy(num_dims)`` builds it."""
    if env.max_episode_steps is None:
        raise PgzooError(f"evolution strategies play whole episodes and need a task with a time "
                         f"limit; {env.spec} has none")
    horizon = env.max_episode_steps
    discrete = env.action_space.kind == "discrete"
    action_dim = env.action_space.n if discrete else env.action_space.shape[0]
    obs_shape = tuple(env.observation_space.shape)
    net = Policy(action_dim, discrete, config.hidden_sizes, config.activation, len(obs_shape))
    template = net.init(jax.random.PRNGKey(0), jnp.zeros(obs_shape))
    flat, unravel = ravel_pytree(template)
    strategy = make_strategy(flat.shape[0])
    restart_patience = config.restart_patience
    if restart_patience:
        strategy = with_restarts(strategy, restart_patience, lambda key: ravel_pytree(
            net.init(key, jnp.zeros(obs_shape)))[0], config.restart_tolerance)
    n, k = config.population_size, config.episodes_per_member
    slots = (n + 1) * k  # every member's episodes and the mean's
    batch = env.num_envs
    check(slots % batch == 0, f"num_envs ({batch}) must divide (population_size + 1) x "
          f"episodes_per_member = {slots}, the episodes of a generation")
    if config.common_starts:
        check(env.jax_native, f"common_starts copies environment states, which needs a "
              f"JAX-native environment; {env.spec} runs on the host")
        check(batch % k == 0, f"common_starts needs num_envs ({batch}) to be a multiple of "
              f"episodes_per_member ({k})")
        leaves = jax.tree.leaves(jax.eval_shape(env.reset, jax.random.PRNGKey(0))[0])
        check(all(x.shape[:1] == (batch,) for x in leaves),
              f"common_starts needs every leaf of {env.spec}'s state batched by environment")

    def policy(params: Params, obs, key=None, deterministic=True):
        obs = params.obs_stats.normalize(obs) if config.normalize_obs else obs
        return net.apply(params.network, obs)

    def play(flat_members, row_stats, shift, key):
        """Each of ``batch`` environments plays one fresh episode with its own parameters and
        observation statistics (rows of ``flat_members`` [batch, d] and of ``row_stats``);
        returns (returns [batch], lengths [batch], statistics of the observations inside the
        episodes, shifted by ``shift``, the environment state)."""
        members = jax.vmap(unravel)(flat_members)  # each row as the network's parameters
        shape = shift.shape
        shift = shift.reshape(-1)

        def step(carry, step_key):
            env_state, obs, done, ret, length, sums = carry
            action = jax.vmap(lambda member, st, o: policy(Params(member, st), o))(
                members, row_stats, obs)
            env_state, ts = env.step(env_state, action, step_key)
            alive = (~done).astype(jnp.float32)
            # sums of the observations inside episodes, shifted by the running mean (no
            # cancellation in float32 when the variance is small beside the mean): count, sum,
            # sum of squares
            shifted = obs.reshape(batch, -1) - shift
            sums = (sums[0] + jnp.sum(alive), sums[1] + alive @ shifted,
                    sums[2] + alive @ shifted ** 2)
            ret = ret + alive * ts.reward
            length = length + alive.astype(jnp.int32)
            return (env_state, ts.obs, done | ts.done, ret, length, sums), None

        reset_key, run_key = jax.random.split(key)
        env_state, ts = env.reset(reset_key)
        if config.common_starts:  # slot s starts where slot s mod k does
            pick = jnp.arange(batch) % k
            env_state = jax.tree.map(lambda x: x[pick], env_state)
            ts = ts._replace(obs=ts.obs[pick])
        dim = shift.size
        start = (env_state, ts.obs, jnp.zeros(batch, bool), jnp.zeros(batch),
                 jnp.zeros(batch, jnp.int32),
                 (jnp.float32(0.0), jnp.zeros(dim), jnp.zeros(dim)))
        (env_state, _, _, ret, length, (count, total, squares)), _ = jax.lax.scan(
            step, start, jax.random.split(run_key, horizon))
        seen = ObsStats.from_sums(count, total, squares, shift, shape)
        return ret, length, seen, env_state

    def evaluate(flat_all, slot_stats, shift, env_state, key):
        """Returns and lengths of every slot, ``batch`` environments at a time; slot s acts with
        the statistics of row s of ``slot_stats``."""
        chunks = jax.tree.map(lambda x: x.reshape((slots // batch, batch) + x.shape[1:]),
                              (flat_all, slot_stats))

        def one(carry, xs):
            env_state, seen = carry
            (members, row_stats), chunk_key = xs
            ret, length, chunk_seen, env_state = play(members, row_stats, shift, chunk_key)
            return (env_state, seen.merge(chunk_seen)), (ret, length)

        empty = ObsStats(jnp.zeros(shift.shape), jnp.zeros(shift.shape), jnp.float32(0))
        (env_state, seen), (ret, length) = jax.lax.scan(
            one, (env_state, empty), (chunks, jax.random.split(key, slots // batch)))
        return ret.reshape(-1), length.reshape(-1), seen, env_state

    def init(key):
        env_key, strategy_key, state_key = jax.random.split(key, 3)
        env_state, ts = env.reset(env_key)
        net_params = net.init(strategy_key, jnp.zeros(obs_shape))
        strategy_state = strategy.init(strategy_key, ravel_pytree(net_params)[0])
        stats = ObsStats(jnp.zeros(obs_shape), jnp.ones(obs_shape), jnp.float32(0.0))
        params = Params(unravel(strategy.mean(strategy_state)), stats)
        return State(params, strategy_state, stats, env_state, ts.obs, state_key, jnp.int32(0))

    def step(state: State):
        key, ask_key, play_key = jax.random.split(state.key, 3)
        population, asked = strategy.ask(ask_key, state.strategy)  # [n, d]
        mean = strategy.mean(asked)
        # each member k times, then the mean k times
        flat_all = jnp.concatenate([jnp.repeat(population, k, axis=0),
                                    jnp.repeat(mean[None], k, axis=0)])
        # the members act with the running statistics, the mean policy with its own (the
        # same ones, except for a restarts' incumbent)
        stats, mean_stats = state.obs_stats, state.params.obs_stats
        slot_stats = jax.tree.map(lambda run, own: jnp.concatenate([
            jnp.repeat(run[None], n * k, axis=0), jnp.repeat(own[None], k, axis=0)]),
            stats, mean_stats)
        returns, lengths, seen, env_state = evaluate(flat_all, slot_stats, stats.mean,
                                                     state.env_state, play_key)
        fitness = returns[: n * k].reshape(n, k).mean(axis=1)
        new_strategy = strategy.tell(population, fitness, asked)
        new_stats = stats.merge(seen) if config.normalize_obs else stats
        if restart_patience:  # a new incumbent keeps the statistics it was scored under
            became = new_strategy.incumbent_score > asked.incumbent_score
            own = jax.tree.map(lambda now, kept: jnp.where(became, now, kept), stats,
                               mean_stats)
        else:
            own = new_stats
        params = Params(unravel(strategy.mean(new_strategy)), own)
        mean_returns = returns[n * k:]
        metrics = {
            EPISODES: jnp.float32(k), EPISODE_RETURN_SUM: jnp.sum(mean_returns),
            EPISODE_LENGTH_SUM: jnp.sum(lengths[n * k:]).astype(jnp.float32),
            "best_fitness": jnp.max(fitness), "mean_fitness": jnp.mean(fitness),
            "median_fitness": jnp.median(fitness), "sigma": strategy.sigma(new_strategy),
            "mean_policy_return": jnp.mean(mean_returns),
            "episode_steps": jnp.sum(lengths).astype(jnp.float32),
            "search_loss": -jnp.mean(fitness)}
        if restart_patience:
            metrics["restarts"] = new_strategy.restarts.astype(jnp.float32)
        return State(params, new_strategy, new_stats, env_state, state.obs, key,
                     state.generation + 1), metrics

    def with_params(state: State, params: Params):
        raise PgzooError("fine-tuning (--init-from) is not available for evolution strategies: "
                         "their state is a search distribution, not one policy")

    return Agent(init, step, policy, slots * horizon, with_params=with_params)

