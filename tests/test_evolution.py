"""Evolution strategies: our use of evosax (centred ranks of the negated fitness, antithetic
pairs, the OpenAI-ES search gradient on a quadratic against its closed form, CMA-ES on a 10-d
sphere), CEM's refit against its closed form, observation statistics, learning CartPole, and a
resumed run equal to an uninterrupted one."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pgzoo
from pgzoo.algos import cem, cma_es, openai_es
from pgzoo.algos.loops.evolution import ObsStats
from pgzoo.errors import PgzooError
from pgzoo.run import rundir
from pgzoo.run.experiment import build


def test_centred_ranks_of_the_negated_fitness():
    from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn

    fitness = jnp.asarray([3.0, 1.0, 2.0, 0.0])  # returns: higher is better
    # evosax minimises, so the strategy is told -F: the best return gets the lowest rank
    ranks = centered_rank_fitness_shaping_fn(None, -fitness, None, None)
    np.testing.assert_allclose(ranks, [-0.5, 1 / 6, -1 / 6, 0.5], atol=1e-6)


def test_antithetic_pairs_mirror_each_other():
    config = openai_es.Config(population_size=8, sigma=0.3)
    s = openai_es.strategy(config, 5)
    state = s.init(jax.random.PRNGKey(0), jnp.arange(5.0))
    population, state = s.ask(jax.random.PRNGKey(1), state)
    np.testing.assert_allclose(population[:4] + population[4:], 2 * jnp.arange(5.0)[None] *
                               jnp.ones((4, 1)), atol=1e-5)
    assert float(s.sigma(state)) == pytest.approx(0.3)


def test_openai_es_search_gradient_on_a_quadratic_is_the_closed_form():
    # F(theta) = -||theta - c||^2: E[F(theta + sigma eps) eps] / sigma = grad F = -2 (theta - c)
    # exactly. The strategy's estimate (1 / (n sigma)) sum F_i eps_i, read off one plain SGD
    # step (learning rate 1, raw fitness), approaches it with n = 200,000 antithetic samples.
    from evosax.algorithms import Open_ES
    from evosax.core.fitness_shaping import identity_fitness_shaping_fn

    c, theta, sigma, n = jnp.asarray([1.0, -2.0, 0.5]), jnp.zeros(3), 0.1, 200_000
    es = Open_ES(n, theta, optimizer=optax.sgd(1.0),
                 std_schedule=optax.constant_schedule(sigma),
                 fitness_shaping_fn=identity_fitness_shaping_fn)
    params = es.default_params
    state = es.init(jax.random.PRNGKey(0), theta, params)
    population, state = es.ask(jax.random.PRNGKey(1), state, params)
    fitness = -jnp.sum((population - c) ** 2, axis=1)
    new_state, _ = es.tell(None, population, -fitness, state, params)  # evosax minimises
    estimate = new_state.mean - theta  # one SGD step down the gradient of -F
    eps = (population - theta) / sigma
    by_hand = jnp.sum(fitness[:, None] * eps, axis=0) / (n * sigma)
    np.testing.assert_allclose(estimate, by_hand, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(estimate, -2 * (theta - c), atol=0.05)


def test_cma_es_solves_a_10d_sphere():
    config = cma_es.Config(population_size=16, sigma=0.5)
    s = cma_es.strategy(config, 10)

    def generation(state, key):
        population, state = s.ask(key, state)
        return s.tell(population, -jnp.sum(population ** 2, axis=1), state), None

    state = s.init(jax.random.PRNGKey(0), jnp.ones(10))
    state, _ = jax.jit(lambda st: jax.lax.scan(generation, st, jax.random.split(
        jax.random.PRNGKey(1), 400)))(state)
    assert float(jnp.sum(s.mean(state) ** 2)) < 1e-6


def test_cem_refit_is_the_elite_mean_and_variance_plus_noise():
    population = jnp.asarray([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0], [10.0, 10.0]])
    fitness = jnp.asarray([1.0, 3.0, 2.0, -5.0])
    mean, var = cem.refit(population, fitness, 2, 0.25)  # the elite: members 1 and 2
    np.testing.assert_allclose(mean, [3.0, 1.0])
    np.testing.assert_allclose(var, [1.0 + 0.25, 4.0 + 0.25])
    config = cem.Config(population_size=4, elite_fraction=0.5, sigma=1.0, extra_noise=0.5,
                        noise_decay_generations=2)
    s = cem.strategy(config, 2)
    state = s.init(None, jnp.zeros(2))
    state = s.tell(population, fitness, state)  # Z_0 = 0.5
    np.testing.assert_allclose(state.var, [1.5, 4.5])
    state = s.tell(population, fitness, state)  # Z_1 = 0.25
    state = s.tell(population, fitness, state)  # Z_2 = 0
    np.testing.assert_allclose(state.var, [1.0, 4.0])


def test_observation_statistics_merge_as_one_set():
    a, b = np.asarray([1.0, 3.0, 5.0]), np.asarray([7.0, -2.0])
    stats = ObsStats(jnp.zeros(1), jnp.ones(1), jnp.float32(0))
    for part in (a, b):
        stats = stats.merge(ObsStats(jnp.asarray([part.mean()]), jnp.asarray([part.var()]),
                                     jnp.float32(len(part))))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(stats.mean, [both.mean()], rtol=1e-6)
    np.testing.assert_allclose(stats.var, [both.var()], rtol=1e-6)
    assert float(stats.count) == 5.0


def test_observation_statistics_from_shifted_sums_keep_a_small_variance():
    # mean 1000, standard deviation 0.01: E[x^2] - E[x]^2 in float32 loses the variance
    x = (1000.0 + 0.01 * np.random.default_rng(0).standard_normal(4096)).astype(np.float32)
    shift = jnp.asarray([999.9], jnp.float32)  # the running mean, near the data's
    shifted = jnp.asarray(x)[:, None] - shift
    stats = ObsStats.from_sums(jnp.float32(x.size), shifted.sum(0), (shifted ** 2).sum(0),
                               shift, (1,))
    np.testing.assert_allclose(stats.mean, [x.astype(np.float64).mean()], rtol=1e-6)
    np.testing.assert_allclose(stats.var, [x.astype(np.float64).var()], rtol=0.02)
    naive = float(np.mean(x ** 2) - np.mean(x) ** 2)
    assert abs(naive - x.astype(np.float64).var()) > 10 * x.astype(np.float64).var()


@pytest.mark.parametrize("algo,settings", [
    ("cem", {}),
    ("openai_es", {"learning_rate": 0.05, "sigma": 0.1}),
    ("cma_es", {}),
])
def test_learns_cartpole(algo, settings, tmp_path):
    # the curve is the mean policy's deterministic episode each generation: its last value
    run = pgzoo.train(algo, "CartPole-v1", 40 * 33 * 500, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=0, population_size=32,
                      **settings)
    last = rundir.read_metrics(run.run_dir)[-1]
    assert last["episode_return"] >= 475, last


def test_a_resumed_run_continues_bit_for_bit(tmp_path):
    settings = dict(population_size=8, hidden_sizes=(8,))
    steps = 9 * 500  # a generation: (8 + 1) episodes of CartPole's 500 steps
    whole = pgzoo.train("openai_es", "CartPole-v1", 4 * steps, run_dir=tmp_path / "whole",
                        progress=False, tensorboard=False, eval_episodes=0, **settings)
    part = pgzoo.train("openai_es", "CartPole-v1", 2 * steps, run_dir=tmp_path / "part",
                       progress=False, tensorboard=False, eval_episodes=0, **settings)
    resumed = pgzoo.resume(part.run_dir, total_steps=4 * steps, progress=False)
    a = pgzoo.load(whole.run_dir).params
    b = pgzoo.load(resumed.run_dir).params
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_settings_are_checked():
    with pytest.raises(PgzooError, match="even population_size"):
        build("openai_es", "CartPole-v1", overrides={"population_size": 7})
    with pytest.raises(PgzooError, match="smaller one"):
        build("cma_es", "CartPole-v1", overrides={"hidden_sizes": (128, 128)})
    with pytest.raises(PgzooError, match="time limit"):
        build("cem", "CliffWalking-v1")


def test_common_starts_give_every_member_the_same_start_state():
    # members all but equal to the mean (sigma tiny): on deterministic CartPole their returns are
    # equal exactly when their episodes start from the same state
    from pgzoo.envs import registry

    env = registry.make("CartPole-v1", num_envs=9)
    fitness = {}
    for common in (False, True):
        config = openai_es.Config(population_size=8, sigma=1e-6, hidden_sizes=(4,),
                                  common_starts=common)
        agent = openai_es.make(config, env, 10**6)
        _, metrics = jax.jit(agent.step)(agent.init(jax.random.PRNGKey(3)))
        fitness[common] = (float(metrics["best_fitness"]), float(metrics["median_fitness"]))
    assert fitness[True][0] == fitness[True][1]
    assert fitness[False][0] != fitness[False][1]
    with pytest.raises(PgzooError, match="JAX-native"):
        build("cma_es", "gymnasium:CartPole-v1", overrides={"common_starts": True})


def test_a_stalled_search_restarts_from_a_fresh_mean_and_keeps_the_incumbent():
    """with_restarts: a search whose score (an average of the median fitness) has not improved
    for ``patience`` generations starts again from ``fresh_mean(key)``; the mean it reports is
    the search mean of the best score so far."""
    import jax.numpy as jnp

    from pgzoo.algos.loops.evolution import Strategy, with_restarts

    base = Strategy(init=lambda key, mean: {"mean": mean, "age": jnp.int32(0)},
                    ask=lambda key, s: (jnp.stack([s["mean"]] * 4), s),
                    tell=lambda pop, fit, s: {"mean": s["mean"] + 1.0, "age": s["age"] + 1},
                    mean=lambda s: s["mean"], sigma=lambda s: jnp.float32(1.0))
    fresh = jnp.full(2, -7.0)
    strategy = with_restarts(base, 3, lambda key: fresh)
    state = strategy.init(jax.random.PRNGKey(0), jnp.zeros(2))
    fitness = [5.0, 4.0, 3.0, 2.0, 1.0]  # the best generation is the first
    for f in fitness:
        population, state = strategy.ask(jax.random.PRNGKey(1), state)
        state = strategy.tell(population, jnp.full(4, f), state)
    # generations 2, 3, 4 did not beat generation 1's score: restart after the fourth
    assert int(state.restarts) == 1
    np.testing.assert_array_equal(strategy.mean(state), jnp.zeros(2))  # the incumbent
    # the restarted search began at the fresh mean and has had one tell since
    np.testing.assert_array_equal(state.search["mean"], fresh + 1.0)
    assert int(state.search["age"]) == 1


def test_the_incumbent_keeps_the_observation_statistics_it_was_scored_under():
    """With restarts the reported policy is the incumbent acting with the running statistics
    of the generation that made it the incumbent; the population goes on with newer ones."""
    from pgzoo.run.experiment import build

    exp = build("cem", "CartPole-v1", 10_000_000, 0, 1, dict(
        population_size=8, elite_fraction=0.5, hidden_sizes=(4,), restart_patience=2))
    state = exp.agent.init(jax.random.PRNGKey(0))
    step = jax.jit(exp.agent.step)
    kept = None
    for _ in range(12):
        before = state.obs_stats
        new, _ = step(state)
        if float(new.strategy.incumbent_score) > float(state.strategy.incumbent_score):
            kept = before
        state = new
    assert kept is not None
    for a, b in zip(state.params.obs_stats, kept, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(state.obs_stats.count) > float(state.params.obs_stats.count)


def test_a_restarted_cma_es_state_stays_finite():
    """evosax starts a search with best_solution NaN and best_fitness +inf; a restart carries
    the run's best over, so the state holds no value the divergence check would flag."""
    from pgzoo.run.experiment import build

    exp = build("cma_es", "Pendulum-v1", 10_000_000, 0, 1, dict(
        population_size=8, hidden_sizes=(4,), restart_patience=1))
    state = exp.agent.init(jax.random.PRNGKey(0))
    step = jax.jit(exp.agent.step)
    restarted = False
    for _ in range(30):
        before = int(state.strategy.restarts)
        state, _ = step(state)
        if int(state.strategy.restarts) > before:
            restarted = True
            leaves = jax.tree.leaves(state)
            assert all(np.isfinite(np.asarray(x)).all() for x in leaves
                       if np.issubdtype(np.asarray(x).dtype, np.floating))
    assert restarted


def test_a_search_creeping_along_a_plateau_restarts_with_a_tolerance():
    """restart_tolerance: a score that improves, but by less than tolerance x |best|, is a
    stalled search; without the tolerance the same creeping search never restarts."""
    import jax.numpy as jnp

    from pgzoo.algos.loops.evolution import Strategy, with_restarts

    base = Strategy(init=lambda key, mean: {"mean": mean},
                    ask=lambda key, s: (jnp.stack([s["mean"]] * 4), s),
                    tell=lambda pop, fit, s: s, mean=lambda s: s["mean"],
                    sigma=lambda s: jnp.float32(1.0))
    fitness = [-600.0 + 0.5 * g for g in range(10)]  # 0.08 % better each generation
    for tolerance, restarts in ((0.0, 0), (0.01, 1)):
        strategy = with_restarts(base, 4, lambda key: jnp.ones(2), tolerance)
        state = strategy.init(jax.random.PRNGKey(0), jnp.zeros(2))
        for f in fitness[:6]:
            population, state = strategy.ask(jax.random.PRNGKey(1), state)
            state = strategy.tell(population, jnp.full(4, f), state)
        assert int(state.restarts) == restarts, tolerance
