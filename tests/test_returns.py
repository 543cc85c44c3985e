import jax
import jax.numpy as jnp
import numpy as np
import rlax

from pgzoo.core.returns import discounted_returns, gae


def brute_force_returns(rewards, dones, last_value, gamma):
    T = len(rewards)
    out = np.zeros(T)
    for t in range(T):
        g, discount = 0.0, 1.0
        for k in range(t, T):
            g += discount * rewards[k]
            if dones[k]:
                break
            discount *= gamma
        else:
            g += discount * last_value
        out[t] = g
    return out


def brute_force_gae(rewards, values, dones, last_value, gamma, lam):
    T = len(rewards)
    values_next = np.append(values[1:], last_value)
    deltas = rewards + gamma * (1 - dones) * values_next - values
    adv = np.zeros(T)
    for t in range(T):
        a, w = 0.0, 1.0
        for k in range(t, T):
            a += w * deltas[k]
            if dones[k]:
                break
            w *= gamma * lam
        adv[t] = a
    return adv


def random_episode_data(seed, T=37):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=T).astype(np.float32)
    values = rng.normal(size=T).astype(np.float32)
    dones = (rng.random(T) < 0.15).astype(np.float32)
    return rewards, values, dones, np.float32(rng.normal())


def test_discounted_returns_match_brute_force():
    for seed in range(5):
        r, _, d, last = random_episode_data(seed)
        got = discounted_returns(jnp.asarray(r), jnp.asarray(d), jnp.asarray(last), 0.97)
        np.testing.assert_allclose(got, brute_force_returns(r, d, last, 0.97), rtol=1e-5,
                                   atol=1e-5)


def test_discounted_returns_known_values():
    got = discounted_returns(jnp.array([1.0, 1.0, 1.0]), jnp.array([0.0, 1.0, 0.0]),
                             jnp.array(10.0), 0.5)
    np.testing.assert_allclose(got, [1.5, 1.0, 6.0])


def test_gae_matches_brute_force_and_targets():
    for seed in range(5):
        r, v, d, last = random_episode_data(seed)
        adv, targets = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(d), jnp.asarray(last),
                           0.99, 0.9)
        expected = brute_force_gae(r, v, d, last, 0.99, 0.9)
        np.testing.assert_allclose(adv, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(targets, expected + v, rtol=1e-4, atol=1e-5)


def test_gae_lambda_one_is_return_minus_value():
    r, v, d, last = random_episode_data(7)
    adv, _ = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(d), jnp.asarray(last), 0.95, 1.0)
    np.testing.assert_allclose(adv, brute_force_returns(r, d, last, 0.95) - v, rtol=1e-4,
                               atol=1e-4)


def test_gae_matches_rlax_on_batched_data():
    r, v, d, last = random_episode_data(3, T=50)
    adv, _ = gae(jnp.asarray(r)[:, None], jnp.asarray(v)[:, None], jnp.asarray(d)[:, None],
                 jnp.asarray(last)[None], 0.99, 0.95)
    discounts = 0.99 * (1.0 - d)
    values = np.append(v, last)
    expected = rlax.truncated_generalized_advantage_estimation(
        jnp.asarray(r), jnp.asarray(discounts), 0.95, jnp.asarray(values))
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_gae_is_jittable_over_batch_axis():
    r = jnp.ones((8, 3))
    adv, targets = jax.jit(gae, static_argnums=(4, 5))(r, jnp.zeros((8, 3)), jnp.zeros((8, 3)),
                                                       jnp.zeros(3), 0.9, 1.0)
    np.testing.assert_allclose(adv[:, 1], brute_force_returns(np.ones(8), np.zeros(8), 0, 0.9),
                               rtol=1e-5)
