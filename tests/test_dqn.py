"""DQN: the (double) Q-learning target against rlax and NumPy, n-step windows in a wrapped buffer,
the epsilon schedule, and learning CartPole."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import pgzoo
from pgzoo.algos.dqn import linear_epsilon, q_learning_target
from pgzoo.core import replay


@pytest.mark.parametrize("double", [False, True])
def test_q_learning_target_matches_rlax_and_numpy(double):
    rng = np.random.default_rng(0)
    b, n = 32, 4
    q_tm1 = rng.normal(size=(b, n)).astype(np.float32)
    a_tm1 = rng.integers(0, n, b)
    r_t = rng.normal(size=b).astype(np.float32)
    discount_t = (0.99 * (rng.random(b) > 0.2)).astype(np.float32)
    q_target = rng.normal(size=(b, n)).astype(np.float32)
    q_online = rng.normal(size=(b, n)).astype(np.float32)
    y = np.asarray(q_learning_target(r_t, discount_t, q_target, q_online if double else None))
    # NumPy: the online network selects (double) or the target network does (DQN)
    best = (q_online if double else q_target).argmax(1)
    np.testing.assert_allclose(y, r_t + discount_t * q_target[np.arange(b), best], rtol=1e-6)
    # rlax returns the TD error y - Q(s, a)
    if double:
        td = jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, discount_t, q_target, q_online)
    else:
        td = jax.vmap(rlax.q_learning)(q_tm1, a_tm1, r_t, discount_t, q_target)
    np.testing.assert_allclose(y, np.asarray(td) + q_tm1[np.arange(b), a_tm1], rtol=1e-5,
                               atol=1e-6)


def test_double_q_differs_from_dqn_where_the_networks_disagree():
    q_target = jnp.array([[1.0, 5.0]])
    q_online = jnp.array([[3.0, 0.0]])  # selects action 0, which the target values at 1
    assert float(q_learning_target(0.0, 1.0, q_target)[0]) == 5.0
    assert float(q_learning_target(0.0, 1.0, q_target, q_online)[0]) == 1.0


def _brute_force_n_step(rewards, terminated, done, next_obs, gamma):
    """R = sum_{i<=k} gamma^i r_i up to the first episode end k (or n - 1); bootstrap gamma^(k+1)
    unless terminated at k."""
    total, k = 0.0, len(rewards) - 1
    for i, r in enumerate(rewards):
        total += gamma ** i * r
        if done[i]:
            k = i
            break
    return total, next_obs[k], 0.0 if terminated[k] else gamma ** (k + 1)


def test_n_step_windows_in_a_wrapped_buffer_match_brute_force_and_never_cross_the_write_head():
    gamma, n, steps = 0.9, 3, 29
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=steps).astype(np.float32)
    done = rng.random(steps) < 0.25
    terminated = done & (rng.random(steps) < 0.5)  # the other ends are truncations
    buffer = replay.make(capacity=8, batch_size=128, num_envs=1, n_step=n)

    def step(t):
        return replay.Transition(obs=jnp.full((1, 1), t, jnp.float32),
                                 action=jnp.zeros((1,), jnp.int32),
                                 reward=jnp.full((1,), rewards[t]),
                                 next_obs=jnp.full((1, 1), t + 0.5, jnp.float32),
                                 terminated=jnp.full((1,), terminated[t]),
                                 done=jnp.full((1,), done[t]))

    state = buffer.init(jax.tree.map(lambda x: x[0], step(0)))
    for t in range(steps):  # 29 steps into a ring of 8: wrapped three times
        state = replay.add(buffer, state, step(t))
    seen = set()
    for seed in range(8):
        seq = buffer.sample(state, jax.random.PRNGKey(seed)).experience
        batch = replay.n_step_transition(seq, gamma)
        starts = np.asarray(seq.obs[:, :, 0])
        # consecutive stored steps only: never across the write head (the oldest and the newest)
        np.testing.assert_array_equal(np.diff(starts, axis=1), 1.0)
        assert starts.min() >= steps - 8
        for i, t in enumerate(starts[:, 0].astype(int)):
            seen.add(t)
            window = slice(t, t + n)
            total, next_obs, discount = _brute_force_n_step(
                rewards[window], terminated[window], done[window], (np.arange(steps) + 0.5)[window],
                gamma)
            np.testing.assert_allclose(float(batch.reward[i]), total, rtol=1e-5, atol=1e-6)
            assert float(batch.next_obs[i, 0]) == next_obs  # the true final observation
            np.testing.assert_allclose(float(batch.discount[i]), discount, rtol=1e-6)
    assert seen == set(range(steps - 8, steps - n + 1))  # every valid window is sampled
    # a truncation inside a window bootstraps, a termination does not
    assert any(done[t:t + n].any() and not terminated[t:t + n][done[t:t + n].argmax()]
               for t in seen)


def test_linear_epsilon_schedule():
    eps = linear_epsilon(1.0, 0.05, 1000.0)
    np.testing.assert_allclose([float(eps(t)) for t in (0, 500, 1000, 5000)],
                               [1.0, 0.525, 0.05, 0.05], rtol=1e-6)


def test_dqn_learns_cartpole(tmp_path):
    run = pgzoo.train("dqn", "CartPole-v1", 40_000, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=5, learning_starts=1000,
                      train_frequency=2, target_update_every=100, exploration_fraction=0.25,
                      double_q=True, n_step=3)
    assert run.eval["mean_return"] >= 200, run.eval
