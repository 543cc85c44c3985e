"""Off-policy policy gradients (issue 16): AWR's weights and targets, and learning tests."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from pgzoo.algos import awr


def test_awr_weights_are_clipped_exponentials_of_normalised_advantages():
    advantages = jnp.asarray([[1.0, 2.0], [3.0, 100.0], [-50.0, 7.0]])
    valid = jnp.asarray([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # 100 and -50 are not data
    got = awr.advantage_weights(advantages, valid, temperature=0.5, max_weight=3.0)
    data = np.asarray([1.0, 2.0, 3.0, 7.0])
    normalised = (np.asarray(advantages) - data.mean()) / (data.std() + 1e-5)
    want = np.minimum(np.exp(normalised / 0.5), 3.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert float(got[2, 1]) == 3.0  # the largest advantage is clipped at w_max


def brute_force_td_lambda(rewards, values, next_values, dones, gamma, lam):
    """R_t = r_t + gamma (1 - d_t) [(1 - lam) V(s_{t+1}) + lam R_{t+1}] along one column."""
    T = len(rewards)
    out = np.zeros(T)
    following = None
    for t in reversed(range(T)):
        if dones[t] or following is None:
            tail = next_values[t]
        else:
            tail = (1 - lam) * next_values[t] + lam * following
        out[t] = rewards[t] + gamma * (0.0 if dones[t] else 1.0) * tail
        following = out[t]
    return out


def test_awr_td_lambda_targets_bootstrap_at_time_limits_and_stop_at_terminations():
    rng = np.random.default_rng(0)
    T, gamma, lam = 8, 0.9, 0.7
    rewards, values, final_values = (rng.normal(size=(T, 1)).astype(np.float32)
                                     for _ in range(3))
    terminated = np.zeros((T, 1), bool)
    truncated = np.zeros((T, 1), bool)
    terminated[2, 0] = True
    truncated[5, 0] = True
    last_value = np.asarray([0.4], np.float32)
    steps = awr.Steps(obs=None, action=None, reward=jnp.asarray(rewards),
                      terminated=jnp.asarray(terminated), truncated=jnp.asarray(truncated),
                      final_obs=None)
    got = awr.td_lambda_targets(jnp.asarray(values), jnp.asarray(final_values),
                                jnp.asarray(last_value), steps, gamma, lam)
    # the next state's value: V(s_{t+1}), V(final) at the truncation, the bootstrap at the end
    next_values = np.append(values[1:, 0], last_value)
    next_values[5] = final_values[5, 0]
    r = rewards[:, 0].copy()
    r[5] += gamma * final_values[5, 0]  # a time limit: the episode's value goes on
    want = brute_force_td_lambda(r, values[:, 0], next_values,
                                 (terminated | truncated)[:, 0], gamma, lam)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-5)


def test_awr_buffer_keeps_the_newest_samples_in_order():
    from pgzoo.envs import registry

    config = awr.Config(num_envs=2, num_steps=4, buffer_size=24, critic_steps=1, actor_steps=1,
                        batch_size=4, hidden_sizes=(4,))
    env = registry.make("CartPole-v1", num_envs=2)
    agent = awr.make(config, env, 10_000)
    state = agent.init(jax.random.PRNGKey(0))
    step = jax.jit(agent.step)
    seen = []
    for i in range(5):  # 3 iterations fill the 24 samples; 2 more overwrite the oldest
        obs_before = state.obs
        state, metrics = step(state)
        seen.append(obs_before)
        assert float(metrics["buffer_samples"]) == min(8 * (i + 1), 24)
    # the row the next iteration writes is the oldest: rows 8..11 hold iteration 3's steps
    assert int(state.buffer.position) == 8 % 12
    np.testing.assert_array_equal(state.buffer.steps.obs[8], seen[2])
    np.testing.assert_array_equal(state.buffer.steps.obs[4], seen[4])


# fixed seed and budget; the thresholds sit well under what these runs reach here
@pytest.mark.parametrize("algo,steps,settings,threshold", [
    ("awr", 61_440, {"actor_learning_rate": 1e-3, "actor_steps": 300, "critic_steps": 100},
     250.0),  # 405 here
    ("acer", 100_000, {}, 150.0),
    ("svpg", 200_000, {"num_particles": 4}, 150.0),
    # from a uniform-random behaviour policy; the evaluation runs the target policy (500 here)
    ("off_pac", 102_400, {"num_envs": 32, "normalize_obs": True}, 300.0),
])
def test_learns_cartpole(algo, steps, settings, threshold, tmp_path):
    run = pgzoo.train(algo, "CartPole-v1", steps, seed=0, run_dir=tmp_path / "run",
                      progress=False, tensorboard=False, eval_episodes=5, preset=False,
                      **settings)
    assert run.eval["mean_return"] >= threshold, run.eval


def test_off_pac_with_the_target_as_behaviour_is_the_on_policy_actor_critic():
    from pgzoo.algos import actor_critic, off_pac
    from pgzoo.envs import registry

    env = registry.make("CartPole-v1", num_envs=4)
    settings = dict(num_envs=4, num_steps=16, hidden_sizes=(16,))
    on = actor_critic.make(actor_critic.Config(**settings), env, 10_000)
    off = off_pac.make(off_pac.Config(behaviour="target", **settings), env, 10_000)
    key = jax.random.PRNGKey(7)
    s_on, s_off = on.init(key), off.init(key)
    for _ in range(3):
        s_on, m_on = jax.jit(on.step)(s_on)
        s_off, m_off = jax.jit(off.step)(s_off)
    assert float(m_off["importance_weight"]) == 1.0
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 s_on.params, s_off.params)
    assert float(m_on["episode_return_sum"]) == float(m_off["episode_return_sum"])


def test_off_pac_importance_weights_against_a_uniform_behaviour():
    from pgzoo.algos.off_pac import behaviour_distribution

    logits = jnp.log(jnp.asarray([[0.7, 0.2, 0.1]]))
    beta = behaviour_distribution("uniform", logits, 0.5)
    np.testing.assert_allclose(beta.probs, [[1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    mixture = behaviour_distribution("mixture", logits, 0.5)
    np.testing.assert_allclose(mixture.probs, [[0.5 / 3 + 0.35, 0.5 / 3 + 0.1, 0.5 / 3 + 0.05]],
                               rtol=1e-5)
    # rho = pi / beta: 0.7 / (1/3) = 2.1 for the first action
    rho = jnp.exp(jax.nn.log_softmax(logits)[0, 0] - beta.log_prob(jnp.asarray([0]))[0])
    np.testing.assert_allclose(rho, 2.1, rtol=1e-5)


def test_svpg_stein_direction_on_two_particles_is_the_closed_form():
    from pgzoo.algos.svpg import stein_direction

    particles = jnp.asarray([[0.0], [1.0]])
    grads = jnp.asarray([[2.0], [-3.0]])
    alpha, h = 4.0, 0.5
    phi, kappa = stein_direction(particles, grads, alpha, bandwidth=h)
    k = np.exp(-1.0 / h)  # k(theta_1, theta_2), at distance 1
    # phi_1 = (1/2)[(g_1 + k g_2) / alpha + d/d theta_2 k(theta_2, theta_1)], the last term
    # -2 (theta_2 - theta_1) / h k pushes theta_1 away from theta_2
    want_1 = 0.5 * ((2.0 + k * -3.0) / alpha - 2.0 / h * k)
    want_2 = 0.5 * ((-3.0 + k * 2.0) / alpha + 2.0 / h * k)
    np.testing.assert_allclose(phi[:, 0], [want_1, want_2], rtol=1e-5)
    np.testing.assert_allclose(kappa, [[1.0, k], [k, 1.0]], rtol=1e-6)
    # no gradient: the particles only repel
    phi0, _ = stein_direction(particles, jnp.zeros_like(grads), alpha, bandwidth=h)
    assert float(phi0[0, 0]) < 0.0 < float(phi0[1, 0])


def test_svpg_median_heuristic_bandwidth():
    from pgzoo.algos.svpg import stein_direction

    particles = jnp.asarray([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    _, kappa = stein_direction(particles, jnp.zeros_like(particles), 1.0)
    # squared distances 0 (x3), 25 (x4), 100 (x2): the median is 25, h = 25 / log(3 + 1)
    h = 25.0 / np.log(4.0)
    np.testing.assert_allclose(kappa[0, 1], np.exp(-25.0 / h), rtol=1e-5)
    np.testing.assert_allclose(kappa[0, 2], np.exp(-100.0 / h), rtol=1e-5)


def _svpg_particle0_after(settings, swap_particle_1: bool):
    from pgzoo.algos import svpg
    from pgzoo.envs import registry

    config = svpg.Config(num_particles=2, num_envs=2, num_steps=5, hidden_sizes=(8,), **settings)
    agent = svpg.make(config, registry.make("CartPole-v1", num_envs=4), 10_000)
    state = agent.init(jax.random.PRNGKey(0))
    if swap_particle_1:  # another start for particle 1 only
        other = agent.init(jax.random.PRNGKey(1))
        policies = jax.tree.map(lambda a, b: a.at[1].set(b[1] * 3.0), state.params.policies,
                                other.params.policies)
        state = state._replace(params=state.params._replace(policies=policies))
    step = jax.jit(agent.step)
    for _ in range(3):
        state, _ = step(state)
    return jax.tree.map(lambda x: np.asarray(x[0]), state.params.policies)


def test_svpg_without_repulsion_or_coupling_is_independent_runs():
    # alpha = 1/n and a kernel that couples no two particles: phi_i = grad J(theta_i), so
    # particle 0 follows its own A2C run whatever particle 1 does
    independent = {"alpha": 0.5, "bandwidth": 1e-9}
    a = _svpg_particle0_after(independent, swap_particle_1=False)
    b = _svpg_particle0_after(independent, swap_particle_1=True)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), a, b)
    from pgzoo.algos.svpg import stein_direction

    grads = jnp.asarray([[1.0, -2.0], [0.5, 3.0]])
    phi, _ = stein_direction(jnp.asarray([[0.0, 0.0], [1.0, 1.0]]), grads, 0.5, bandwidth=1e-9)
    np.testing.assert_allclose(phi, grads, rtol=1e-6)
    # with a kernel that couples them, particle 1 moves particle 0 (the two-particle test above)
    phi, _ = stein_direction(jnp.asarray([[0.0, 0.0], [1.0, 1.0]]), grads, 0.5, bandwidth=4.0)
    assert not np.allclose(phi[0], grads[0])


def test_acer_truncated_importance_weight_with_bias_correction_on_fixed_numbers():
    from pgzoo.algos.acer import truncated_gradient

    f = jnp.asarray([0.6, 0.3, 0.1])  # pi(.|s)
    mu = jnp.asarray([0.05, 0.45, 0.5])  # rho = [12, 2/3, 0.2]
    q = jnp.asarray([1.0, 2.0, -1.0])
    v = float(jnp.sum(f * q))  # 1.1
    c = 10.0
    g = truncated_gradient(f, mu, q, jnp.asarray(0), jnp.asarray(3.0), c)
    # taken action 0: min(10, 12) (Q^ret - V) / f(0); bias correction only where rho > c
    want = np.asarray([10.0 * (3.0 - v) / 0.6 + (1.0 - 10.0 / 12.0) * (1.0 - v), 0.0, 0.0])
    np.testing.assert_allclose(g, want, rtol=1e-5)


def test_acer_truncation_and_correction_are_unbiased():
    # with Q^ret = Q(a), E_{a~mu}[taken term] + correction = E_{a~pi}[grad_f ln f(a) (Q(a) - V)]
    from pgzoo.algos.acer import truncated_gradient

    f = jnp.asarray([0.7, 0.2, 0.1])
    mu = jnp.asarray([0.02, 0.5, 0.48])  # rho(0) = 35 > c
    q = jnp.asarray([0.5, -1.0, 2.0])
    v = jnp.sum(f * q)
    c = 3.0
    expected = sum(float(mu[a]) * (truncated_gradient(f, mu, q, jnp.asarray(a), q[a], c)
                                   - jax.nn.relu(1.0 - c / (f / mu)) * (q - v))
                   for a in range(3))
    expected = expected + jax.nn.relu(1.0 - c / (f / mu)) * (q - v)
    # grad_f of E_{a~f}[ln f(a) (Q(a) - V)] with the coefficients fixed: f(a) (Q(a) - V) / f(a)
    np.testing.assert_allclose(expected, q - v, rtol=1e-5, atol=1e-6)


def test_acer_trust_region_projection_is_the_closed_form():
    from pgzoo.algos.acer import trust_region_projection

    g = jnp.asarray([[2.0, 1.0], [0.1, 0.0]])
    k = jnp.asarray([[1.0, 1.0], [1.0, 0.0]])
    z, scale = trust_region_projection(g, k, 1.0)
    # first: k.g = 3 > delta = 1, so z = g - (3 - 1) / 2 k = [1, 0] and k.z = delta
    np.testing.assert_allclose(z[0], [1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(float(jnp.dot(k[0], z[0])), 1.0, rtol=1e-6)
    # second: k.g = 0.1 <= delta: unchanged
    np.testing.assert_allclose(z[1], g[1])
    np.testing.assert_allclose(scale, [1.0, 0.0], atol=1e-6)
    # z is the nearest point to g in the half-space k.z <= delta (brute force on a grid)
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 601), np.linspace(-3, 3, 601)), -1)
    grid = grid.reshape(-1, 2)
    feasible = grid[grid @ np.asarray(k[0]) <= 1.0 + 1e-9]
    best = feasible[np.argmin(np.sum((feasible - np.asarray(g[0])) ** 2, axis=1))]
    np.testing.assert_allclose(z[0], best, atol=1e-2)
