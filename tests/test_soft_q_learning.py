"""Soft Q-learning: the importance-sampled soft value against the exact log-sum-exp, the RBF kernel
and the SVGD direction against a hand-computed two-particle case, the amortised SVGD update fitting
a sampler network to a known density, discrete soft Q-learning learning a small task, and the
multi-goal task."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pgzoo
from pgzoo import envs
from pgzoo.algos.soft_q_learning import Sampler, amortized_svgd_gradient, soft_value
from pgzoo.core.svgd import rbf_kernel, svgd_direction
from pgzoo.envs.multigoal import GOALS, goal_index


@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_soft_value_estimate_is_the_exact_log_sum_exp_on_a_discrete_set(alpha):
    # every action of a discrete set once, proposal uniform on the set: q(a) = 1/n
    q = jnp.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]])
    n = q.shape[-1]
    exact = alpha * np.log(np.sum(np.exp(np.asarray(q) / alpha), axis=-1))
    np.testing.assert_allclose(soft_value(q, alpha, -np.log(n)), exact, rtol=1e-6)


def test_soft_value_by_importance_sampling_converges_for_a_continuous_action():
    # Q(a) = -a^2 on [-1, 1], alpha = 0.5: V = 0.5 log int exp(-2 a^2) da
    alpha, grid = 0.5, np.linspace(-1, 1, 200_001)
    exact = alpha * np.log(np.trapezoid(np.exp(-grid ** 2 / alpha), grid))
    a = jax.random.uniform(jax.random.PRNGKey(0), (200_000,), minval=-1.0, maxval=1.0)
    estimate = soft_value(-a ** 2, alpha, -np.log(2.0))  # q(a) = 1/2 on [-1, 1]
    np.testing.assert_allclose(float(estimate), exact, atol=2e-3)


def test_svgd_direction_matches_a_hand_computed_two_particle_case():
    # two fixed particles x_1 = 0, x_2 = 1 (1-D), with scores g_1 = 1, g_2 = -2, move y = 0.25
    x = jnp.array([[0.0], [1.0]])
    y = jnp.array([[0.25]])
    g = jnp.array([[1.0], [-2.0]])
    d1, d2 = 0.25 ** 2, 0.75 ** 2  # squared distances to y
    h = min(d1, d2) / np.log(2.0)  # the median of {d1, d2} as the authors take it, over log K
    k1, k2 = np.exp(-d1 / h), np.exp(-d2 / h)
    grad_k1 = -2 * (0.0 - 0.25) / h * k1  # d/dx_1 exp(-(x_1 - y)^2 / h)
    grad_k2 = -2 * (1.0 - 0.25) / h * k2
    expected = ((k1 * 1.0 + grad_k1) + (k2 * -2.0 + grad_k2)) / 2
    kappa, _ = rbf_kernel(x, y)
    np.testing.assert_allclose(np.asarray(kappa)[:, 0], [k1, k2], rtol=1e-6)
    np.testing.assert_allclose(float(svgd_direction(x, y, g)[0, 0]), expected, rtol=1e-5)
    # repulsion alone (no score) pushes y away from the nearer particle, x_1 = 0
    assert float(svgd_direction(x, y, jnp.zeros_like(g))[0, 0]) > 0


def test_rbf_kernel_gradient_is_the_autodiff_gradient():
    xs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    ys = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
    _, grad = rbf_kernel(xs, ys)
    # with the bandwidth held constant, as rbf_kernel does (stop_gradient)
    auto = jax.jacfwd(lambda x: rbf_kernel(x, ys)[0])(xs)  # [Kx, Ky, Kx, D]
    np.testing.assert_allclose(grad, jnp.einsum("jijd->jid", auto), rtol=1e-4, atol=1e-6)


def test_multigoal_task_dynamics_rewards_and_goals():
    env = envs.make("MultiGoal-v0", num_envs=4)
    assert env.jax_native and env.spec == "pgzoo:MultiGoal-v0" and env.max_episode_steps == 30
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert np.all(np.abs(ts.obs) < 1)
    # full speed towards +x reaches the goal at (5, 0) in 4 or 5 steps: terminated there
    action = jnp.tile(jnp.array([[1.0, 0.0]]), (4, 1))
    reached = np.zeros(4, bool)
    for _ in range(5):
        state, ts = env.step(state, action, jax.random.PRNGKey(1))
        ended = np.asarray(ts.terminated)
        assert np.all(np.asarray(goal_index(ts.final_obs))[ended] == 0)
        reached |= ended
        if ended.all():
            break
    assert reached.all()
    # reward: -30 |a|^2 - min_g |s' - g|^2 + 10 at the goal
    distance_sq = np.min(np.sum((np.asarray(ts.final_obs)[:, None] - GOALS) ** 2, -1), -1)
    np.testing.assert_allclose(ts.reward, -30.0 - distance_sq + 10.0 * ended, rtol=1e-5)
    assert np.all(np.abs(np.asarray(ts.obs)[ended]) < 1)  # auto-reset near the origin


def test_amortized_svgd_fits_a_sampler_network_to_a_target_density():
    # the sampler f_phi(xi; s) pulled back through eq. 14 towards p(a) = N(0.4, 0.1^2) on
    # (-1, 1): its samples' mean and spread approach the target's
    sampler = Sampler(1, (32, 32))
    obs = jnp.zeros((8, 1))
    phi = sampler.init(jax.random.PRNGKey(0), obs, jnp.zeros((8, 1)))
    tx = optax.adam(3e-3)
    opt = tx.init(phi)

    def log_p(a):
        return jnp.sum(-0.5 * ((a - 0.4) / 0.1) ** 2, axis=-1)

    @jax.jit
    def step(phi, opt, key):
        xi = jax.random.normal(key, (8, 32, 1))
        grads, _ = amortized_svgd_gradient(lambda p: sampler.apply(p, obs[:, None], xi), phi,
                                           log_p, 16)
        upd, opt = tx.update(grads, opt, phi)
        return optax.apply_updates(phi, upd), opt

    for k in jax.random.split(jax.random.PRNGKey(1), 1500):
        phi, opt = step(phi, opt, k)
    samples = sampler.apply(phi, jnp.zeros((1,)), jax.random.normal(jax.random.PRNGKey(2),
                                                                      (4000, 1)))
    assert abs(float(samples.mean()) - 0.4) < 0.03
    assert 0.06 < float(samples.std()) < 0.14


def test_discrete_soft_q_learning_learns_cartpole(tmp_path):
    # the exact log-sum-exp value and Boltzmann exploration at a low temperature
    run = pgzoo.train("soft_q_learning", "CartPole-v1", 20_000, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=5, alpha=0.05,
                      learning_starts=1000, target_update_every=100, buffer_size=10_000,
                      learning_rate=1e-3)
    assert run.eval["mean_return"] >= 300, run.eval
