"""Replay buffers: uniform and prioritised sampling, importance weights, n-step transitions,
wrap-around."""
import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.core import replay


def transition(value, num_envs=1, done=False, terminated=False):
    v = jnp.full((num_envs,), value, jnp.float32)
    return replay.Transition(obs=v[:, None], action=v, reward=v, next_obs=v[:, None] + 0.5,
                             terminated=jnp.full((num_envs,), terminated),
                             done=jnp.full((num_envs,), done))


def filled(buffer, values):
    state = buffer.init(jax.tree.map(lambda x: x[0], transition(0.0)))
    for v in values:
        state = replay.add(buffer, state, transition(float(v)))
    return state


def sample_counts(buffer, state, draws, size):
    sample = jax.jit(buffer.sample)
    counts = np.zeros(size)
    key = jax.random.PRNGKey(0)
    for _ in range(draws):
        key, sub = jax.random.split(key)
        rewards = np.asarray(sample(state, sub).experience.reward[:, 0]).astype(int)
        np.add.at(counts, rewards, 1)
    return counts


def test_uniform_sampling_frequencies():
    buffer = replay.make(capacity=8, batch_size=64, num_envs=1)
    state = filled(buffer, range(8))
    counts = sample_counts(buffer, state, 200, 8)
    freq = counts / counts.sum()
    np.testing.assert_allclose(freq, np.full(8, 1 / 8), atol=0.015)
    assert int(replay.num_stored(state)) == 8


def test_wrap_around_overwrites_the_oldest():
    buffer = replay.make(capacity=8, batch_size=64, num_envs=1)
    state = filled(buffer, range(12))
    counts = sample_counts(buffer, state, 100, 12)
    assert counts[:4].sum() == 0 and np.all(counts[4:] > 0)
    assert int(replay.num_stored(state)) == 8


def test_prioritised_sampling_is_proportional_to_p_alpha():
    alpha = 0.7
    buffer = replay.make(capacity=4, batch_size=256, num_envs=1, prioritised=True, alpha=alpha)
    state = filled(buffer, range(4))
    first = buffer.sample(state, jax.random.PRNGKey(1))
    # give item with reward r the priority r + 1
    indices = first.indices
    priorities = first.experience.reward[:, 0] + 1.0
    state = buffer.set_priorities(state, indices, priorities)
    expected = np.arange(1, 5) ** alpha
    expected /= expected.sum()
    counts = sample_counts(buffer, state, 100, 4)
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.015)
    sample = buffer.sample(state, jax.random.PRNGKey(2))
    rewards = np.asarray(sample.experience.reward[:, 0]).astype(int)
    np.testing.assert_allclose(sample.probabilities, expected[rewards], rtol=1e-4)


def test_importance_weights_and_beta_schedule():
    p = jnp.array([0.1, 0.2, 0.4])
    w = replay.importance_weights(p, 10, 0.5)
    raw = (10 * np.array([0.1, 0.2, 0.4])) ** -0.5
    np.testing.assert_allclose(w, raw / raw.max(), rtol=1e-6)
    beta = replay.beta_schedule(0.4, 100)
    np.testing.assert_allclose([beta(0), beta(50), beta(100), beta(500)], [0.4, 0.7, 1.0, 1.0],
                               rtol=1e-6)


def brute_force_n_step(rewards, next_obs, terminated, done, gamma):
    total, discount = 0.0, 1.0
    for i in range(len(rewards)):
        total += discount * rewards[i]
        discount *= gamma
        if done[i]:
            return total, next_obs[i], 0.0 if terminated[i] else discount
    return total, next_obs[-1], discount


def test_n_step_transitions_match_brute_force():
    rng = np.random.default_rng(0)
    B, n, gamma = 64, 4, 0.9
    done = rng.random((B, n)) < 0.25
    terminated = done & (rng.random((B, n)) < 0.5)  # some ends are truncations
    seq = replay.Transition(
        obs=jnp.asarray(rng.normal(size=(B, n, 3)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 2, size=(B, n))),
        reward=jnp.asarray(rng.normal(size=(B, n)), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(B, n, 3)), jnp.float32),
        terminated=jnp.asarray(terminated), done=jnp.asarray(done))
    out = replay.n_step_transition(seq, gamma)
    for b in range(B):
        r, nxt, disc = brute_force_n_step(np.asarray(seq.reward[b]), np.asarray(seq.next_obs[b]),
                                          terminated[b], done[b], gamma)
        np.testing.assert_allclose(out.reward[b], r, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.next_obs[b], nxt)
        np.testing.assert_allclose(out.discount[b], disc, rtol=1e-6)
    np.testing.assert_allclose(out.obs, seq.obs[:, 0])


def test_n_step_sequences_from_a_buffer_stay_within_one_environment():
    buffer = replay.make(capacity=32, batch_size=128, num_envs=2, n_step=3)
    state = buffer.init(jax.tree.map(lambda x: x[0], transition(0.0)))
    for t in range(10):  # env 0 stores t, env 1 stores 100 + t
        step = transition(0.0, num_envs=2)
        values = jnp.array([t, 100 + t], jnp.float32)
        step = step._replace(reward=values, action=values)
        state = replay.add(buffer, state, step)
    seq = buffer.sample(state, jax.random.PRNGKey(0)).experience
    diffs = np.diff(np.asarray(seq.reward), axis=1)
    np.testing.assert_array_equal(diffs, 1.0)  # consecutive steps of one environment
    out = replay.n_step_transition(seq, 0.5)
    first = np.asarray(seq.reward[:, 0])
    np.testing.assert_allclose(out.reward, first + 0.5 * (first + 1) + 0.25 * (first + 2))
    np.testing.assert_allclose(out.discount, 0.125)
