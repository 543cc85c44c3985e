import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import envs
from pgzoo.envs.wrappers import NormalizeObservation, NormalizeReward, RunningMeanStd


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(5, 4)).astype(np.float32) for _ in range(20)]
    stats = RunningMeanStd.create((4,))
    for b in batches:
        stats = stats.update(jnp.asarray(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-3)


def test_merged_statistics_are_those_of_the_pooled_samples():
    """What the Ray driver does with two workers' statistics (NumPy), and what finding and
    replacing the statistics inside a wrapped environment's state does."""
    from pgzoo.envs.wrappers import observation_stats, with_observation_stats

    rng = np.random.default_rng(1)
    a, b = rng.normal(-1.0, 0.5, (30, 3)), rng.normal(4.0, 3.0, (70, 3))
    merged = RunningMeanStd.of(a).merge(RunningMeanStd.of(b))
    pooled = np.concatenate([a, b])
    assert float(merged.count) == 100.0
    np.testing.assert_allclose(merged.mean, pooled.mean(0), rtol=1e-6)
    np.testing.assert_allclose(merged.var, pooled.var(0), rtol=1e-6)

    env = NormalizeObservation(envs.make("CartPole-v1", num_envs=2))
    state, _ = env.reset(jax.random.PRNGKey(0))
    assert float(observation_stats(state).count) == np.float32(2.0 + 1e-4)
    shared = RunningMeanStd(jnp.full(4, 5.0), jnp.full(4, 4.0), jnp.float32(9.0))
    state = with_observation_stats(state, shared)
    assert float(observation_stats(state).count) == 9.0
    assert observation_stats(envs.make("CartPole-v1", num_envs=2).reset(jax.random.PRNGKey(0))[0]) is None
    obs = jnp.ones((2, 4))
    np.testing.assert_allclose(env.normalize_obs(state, obs), (1.0 - 5.0) / 2.0, rtol=1e-5)


def test_episode_statistics_report_raw_returns_under_reward_scaling():
    env = envs.make("envs_for_tests:Corridor", num_envs=1, normalize_reward=True)
    state, ts = env.reset(jax.random.PRNGKey(0))
    rewards = []
    for _ in range(3):
        state, ts = env.step(state, jnp.array([1]), jax.random.PRNGKey(0))
        rewards.append(float(ts.reward[0]))
    assert bool(ts.info["episode_done"][0]) and float(ts.info["episode_return"][0]) == 3.0
    assert rewards[0] != 1.0  # scaled, while the statistics above stay raw


def test_normalize_reward_divides_by_std_of_discounted_return():
    env = envs.make("envs_for_tests:Corridor", num_envs=1, normalize_reward=True, gamma=0.5)
    state, _ = env.reset(jax.random.PRNGKey(0))
    returns = []
    g = 0.0
    for t in range(5):  # alternate moves: never terminates in 5 steps
        state, ts = env.step(state, jnp.array([t % 2]), jax.random.PRNGKey(0))
        g = 0.5 * g + 1.0
        returns.append(g)
    stats = RunningMeanStd.create(()).update(jnp.array([returns[0]]))
    for g in returns[1:]:
        stats = stats.update(jnp.array([g]))
    np.testing.assert_allclose(ts.reward[0], 1.0 / np.sqrt(float(stats.var) + 1e-8), rtol=1e-5)
    assert isinstance(env, NormalizeReward)


def test_normalize_observation_normalises_obs_and_final_obs_and_keeps_stats_on_resume():
    env = envs.make("Pendulum-v1", num_envs=8, normalize_obs=True)
    assert isinstance(env, NormalizeObservation)
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    raw = []
    for i in range(300):
        state, ts = step(state, jnp.zeros((8, 1)), jax.random.PRNGKey(i))
    stats = state.stats
    assert float(stats.count) > 2000
    # final_obs is transformed with the same statistics as obs
    raw_inner_final = ts.final_obs * np.sqrt(stats.var + 1e-8) + stats.mean
    np.testing.assert_allclose(env.normalize_obs(state, raw_inner_final), ts.final_obs, atol=1e-4)
    # resume keeps the statistics
    resumed, _ = env.resume(state, jax.random.PRNGKey(5))
    np.testing.assert_allclose(resumed.stats.mean, stats.mean)
    del raw


def test_normalised_observations_have_unit_scale():
    env = envs.make("Pendulum-v1", num_envs=16, normalize_obs=True)
    state, ts = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    seen = []
    for i in range(400):
        state, ts = step(state, jax.random.uniform(jax.random.PRNGKey(i), (16, 1), minval=-1,
                                                   maxval=1), jax.random.PRNGKey(i))
        seen.append(np.asarray(ts.obs))
    late = np.concatenate(seen[200:])
    assert np.all(np.abs(late.mean(0)) < 0.5) and np.all(np.abs(late.std(0) - 1.0) < 0.5)
