import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from pgzoo.core.returns import discounted_returns, gae, retrace, vtrace


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


def brute_force_retrace(rewards, dones, q_taken, values, traces, last_value, gamma):
    """Munos et al.'s operator unrolled: G_t = Q_t + sum_{s>=t} gamma^{s-t} (prod c) delta_s."""
    T = len(rewards)
    v_next = np.append(values[1:], last_value)
    deltas = rewards + gamma * (1 - dones) * v_next - q_taken
    out = np.zeros(T)
    for t in range(T):
        g, weight = q_taken[t], 1.0
        for s in range(t, T):
            g += weight * deltas[s]
            if dones[s] or s + 1 == T:
                break
            weight *= gamma * traces[s + 1]
        out[t] = g
    return out


def test_retrace_matches_the_unrolled_operator():
    rng = np.random.default_rng(3)
    T = 9
    rewards, q_taken, values = (rng.normal(size=T) for _ in range(3))
    traces = np.minimum(1.0, rng.uniform(0.0, 2.0, size=T)) * 0.9
    dones = np.zeros(T)
    dones[4] = 1.0
    got = retrace(jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(q_taken),
                  jnp.asarray(values), jnp.asarray(traces), jnp.asarray(0.7), 0.95)
    want = brute_force_retrace(rewards, dones, q_taken, values, traces, 0.7, 0.95)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_retrace_matches_rlax():
    rng = np.random.default_rng(4)
    T, A = 7, 3
    q = rng.normal(size=(T + 1, A)).astype(np.float32)
    pi = rng.dirichlet(np.ones(A), size=T + 1).astype(np.float32)
    mu = rng.dirichlet(np.ones(A), size=T + 1).astype(np.float32)
    actions = rng.integers(0, A, size=T + 1)
    rewards = rng.normal(size=T).astype(np.float32)
    rho = pi[np.arange(T + 1), actions] / mu[np.arange(T + 1), actions]
    c = np.minimum(1.0, rho).astype(np.float32)
    gamma = 0.9
    # rlax indexes the rows after step t: q, actions, c and pi at times 1..T, rewards r_1..r_T
    want = rlax.general_off_policy_returns_from_action_values(
        jnp.asarray(q[1:]), jnp.asarray(actions[1:]), jnp.asarray(rewards),
        jnp.full(T, gamma, jnp.float32), jnp.asarray(c[1:]), jnp.asarray(pi[1:]))
    values = (pi * q).sum(-1)
    got = retrace(jnp.asarray(rewards), jnp.zeros(T), jnp.asarray(q[np.arange(T), actions[:T]]),
                  jnp.asarray(values[:T]), jnp.asarray(c[:T]), jnp.asarray(values[T]), gamma)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_retrace_with_batched_columns_is_each_column_alone():
    rng = np.random.default_rng(5)
    T, B = 6, 3
    args = [rng.normal(size=(T, B)).astype(np.float32) for _ in range(3)]
    traces = rng.uniform(size=(T, B)).astype(np.float32)
    dones = (rng.uniform(size=(T, B)) < 0.2).astype(np.float32)
    last = rng.normal(size=B).astype(np.float32)
    got = retrace(jnp.asarray(args[0]), jnp.asarray(dones), jnp.asarray(args[1]),
                  jnp.asarray(args[2]), jnp.asarray(traces), jnp.asarray(last), 0.99)
    for b in range(B):
        want = brute_force_retrace(args[0][:, b], dones[:, b], args[1][:, b], args[2][:, b],
                                   traces[:, b], last[b], 0.99)
        np.testing.assert_allclose(got[:, b], want, rtol=1e-4, atol=1e-5)


def brute_force_vtrace(rewards, dones, values, last_value, rhos, gamma, rho_bar, c_bar):
    """Espeholt et al.'s eq. 1 unrolled: v_s = V(x_s) + sum_{t>=s} gamma^{t-s} (prod_{i=s}^{t-1}
    c_i) delta_t V, the sum stopping at the end of the trajectory or of an episode; A_s eq. 4."""
    T = len(rewards)
    v_next = np.append(values[1:], last_value)
    rho = np.minimum(rho_bar, rhos)
    c = np.minimum(c_bar, rhos)
    deltas = rho * (rewards + gamma * (1 - dones) * v_next - values)
    vs = np.zeros(T)
    for s in range(T):
        total, weight = values[s], 1.0
        for t in range(s, T):
            total += weight * deltas[t]
            if dones[t]:
                break
            weight *= gamma * c[t]
        vs[s] = total
    vs_next = np.append(vs[1:], last_value)
    advantages = rho * (rewards + gamma * (1 - dones) * vs_next - values)
    return vs, advantages


def test_vtrace_matches_the_unrolled_definition():
    rng = np.random.default_rng(6)
    T = 10
    rewards, values = rng.normal(size=T), rng.normal(size=T)
    rhos = rng.uniform(0.2, 2.5, size=T)
    dones = np.zeros(T)
    dones[3] = dones[7] = 1.0  # two episode ends inside the trajectory: nothing crosses them
    got_vs, got_adv = vtrace(jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(values),
                             jnp.asarray(0.4), jnp.log(jnp.asarray(rhos)), 0.95, 1.2, 0.9)
    want_vs, want_adv = brute_force_vtrace(rewards, dones, values, 0.4, rhos, 0.95, 1.2, 0.9)
    np.testing.assert_allclose(got_vs, want_vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_adv, want_adv, rtol=1e-5, atol=1e-5)


def test_vtrace_on_policy_is_the_n_step_return():
    """With pi = mu (rho = 1) and c_bar = rho_bar = 1, v_s is the discounted return bootstrapped
    from the trajectory's last value (Espeholt et al., remark 1)."""
    rng = np.random.default_rng(7)
    T = 8
    rewards, values = rng.normal(size=T), rng.normal(size=T)
    dones = np.zeros(T)
    dones[5] = 1.0
    vs, _ = vtrace(jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(values),
                   jnp.asarray(0.3), jnp.zeros(T), 0.9)
    np.testing.assert_allclose(vs, brute_force_returns(rewards, dones, 0.3, 0.9), rtol=1e-5)


@pytest.mark.parametrize("lam", [1.0, 0.8])
def test_vtrace_matches_rlax(lam):
    rng = np.random.default_rng(8)
    T = 9
    f = np.float32
    rewards, values = rng.normal(size=T).astype(f), rng.normal(size=T).astype(f)
    rhos = rng.uniform(0.2, 2.5, size=T).astype(f)
    dones = (rng.uniform(size=T) < 0.25).astype(f)
    gamma, last = 0.97, f(0.6)
    vs, adv = vtrace(jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(values),
                     jnp.asarray(last), jnp.log(jnp.asarray(rhos)), gamma, 1.0, 1.0, lam)
    want = rlax.vtrace_td_error_and_advantage(
        jnp.asarray(values), jnp.asarray(np.append(values[1:], last)), jnp.asarray(rewards),
        jnp.asarray(gamma * (1 - dones)), jnp.asarray(rhos), lam)
    np.testing.assert_allclose(vs - values, want.errors, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv, want.pg_advantage, rtol=1e-5, atol=1e-5)
