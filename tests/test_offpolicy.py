"""DPG, DDPG, SAC (both versions), D4PG: the pieces on fixed numbers, smoke on both backends,
short learning runs with fixed seeds, and a clear error on discrete actions."""
import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from jax.flatten_util import ravel_pytree

from pgzoo.algos import d4pg, ddpg, dpg, sac, sac_v1
from pgzoo.core.distributional import atoms, categorical_projection
from pgzoo.core.distributions import tanh_gaussian_sample
from pgzoo.core.networks import DeterministicActor, ValueNetwork
from pgzoo.run.experiment import build

ALGOS = ["dpg", "ddpg", "sac", "sac_v1", "d4pg"]
SMALL = {
    "dpg": dict(hidden_sizes=(32, 32), num_envs=4, block_size=10),
    "ddpg": dict(hidden_sizes=(32, 32), batch_size=16, learning_starts=20, block_size=10,
                 buffer_size=1000),
    "sac": dict(hidden_sizes=(32, 32), batch_size=16, learning_starts=20, block_size=10,
                buffer_size=1000),
    "sac_v1": dict(hidden_sizes=(32, 32), batch_size=16, learning_starts=20, block_size=10,
                   buffer_size=1000),
    "d4pg": dict(hidden_sizes=(32, 32), batch_size=16, learning_starts=40, block_size=10,
                 buffer_size=1000, num_envs=2, gradient_steps=2, n_step=3, num_atoms=11),
}


def brute_force_projection(probs, reward, discount, support):
    """C51's projection written as a loop: each atom's mass split between its neighbours."""
    v_min, v_max = support[0], support[-1]
    delta = support[1] - support[0]
    out = np.zeros_like(probs)
    for b in range(probs.shape[0]):
        for j, z in enumerate(support):
            tz = min(max(reward[b] + discount[b] * z, v_min), v_max)
            pos = (tz - v_min) / delta
            lo, hi = int(np.floor(pos)), int(np.ceil(pos))
            if lo == hi:
                out[b, lo] += probs[b, j]
            else:
                out[b, lo] += probs[b, j] * (hi - pos)
                out[b, hi] += probs[b, j] * (pos - lo)
    return out


def test_categorical_projection_matches_brute_force():
    rng = np.random.default_rng(0)
    support = np.asarray(atoms(-10.0, 10.0, 21))
    probs = rng.dirichlet(np.ones(21), size=64).astype(np.float32)
    reward = rng.uniform(-15, 15, size=64).astype(np.float32)  # some land outside the support
    discount = rng.choice([0.0, 0.5, 0.99, 0.99 ** 5], size=64).astype(np.float32)
    reward[:4] = [0.0, 1.0, -10.0, 2.5]  # on an atom, on an atom, at v_min, half-way
    discount[:4] = 1.0
    got = categorical_projection(jnp.asarray(probs), jnp.asarray(reward), jnp.asarray(discount),
                                 jnp.asarray(support))
    want = brute_force_projection(probs, reward, discount, support)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.sum(got, axis=1), 1.0, atol=1e-5)


def test_tanh_gaussian_log_prob_matches_a_transformed_distribution():
    mean = jnp.array([[0.3, -1.0], [2.0, 0.0]])
    log_std = jnp.array([[-0.5, 0.2], [0.0, -1.0]])
    action, log_prob = tanh_gaussian_sample(mean, log_std, jax.random.PRNGKey(0))
    reference = distrax.Transformed(distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)),
                                    distrax.Block(distrax.Tanh(), 1))
    np.testing.assert_allclose(log_prob, reference.log_prob(action), rtol=1e-4, atol=1e-4)
    assert np.all(np.abs(action) < 1.0)


def test_soft_targets_on_fixed_numbers():
    y = sac.soft_q_target(jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]), jnp.array([5.0, 5.0]),
                          jnp.array([4.0, 9.0]), jnp.array([-2.0, -2.0]), 0.5, 0.9)
    np.testing.assert_allclose(y, [1.0 + 0.9 * (4.0 + 1.0), 1.0], rtol=1e-6)
    q_hat = sac_v1.soft_value_target(jnp.array([2.0, 2.0]), jnp.array([0.0, 1.0]),
                                     jnp.array([-3.0, -3.0]), 0.5)
    np.testing.assert_allclose(q_hat, [0.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(ddpg.ddpg_target(jnp.array([1.0]), jnp.array([0.0]),
                                                jnp.array([4.0]), 0.5), [3.0])


def test_ornstein_uhlenbeck_noise_is_mean_reverting():
    x = jnp.full((2000, 1), 1.0)
    for key in jax.random.split(jax.random.PRNGKey(0), 50):
        x = ddpg.ornstein_uhlenbeck(x, key, theta=0.15, sigma=0.2, dt=1.0)
    # E[x_50] = (1 - theta)^50, Var -> sigma^2 / (1 - (1 - theta)^2) ~ 0.144
    assert abs(float(x.mean()) - 0.85 ** 50) < 0.03
    assert 0.3 < float(x.std()) < 0.45


def test_ornstein_uhlenbeck_innovation_is_the_papers():
    """Lillicrap et al.: x_{t+1} = x_t + theta (0 - x_t) + sigma N(0, 1), theta 0.15, sigma 0.2."""
    config = ddpg.Config(noise="ornstein_uhlenbeck")
    assert (config.ou_theta, config.ou_sigma, config.ou_dt) == (0.15, 0.2, 1.0)
    x = jnp.array([[1.0, -2.0, 0.0]])
    key = jax.random.PRNGKey(3)
    new = ddpg.ornstein_uhlenbeck(x, key, config.ou_theta, config.ou_sigma, config.ou_dt)
    innovation = new - (x + config.ou_theta * (0.0 - x))
    np.testing.assert_allclose(innovation, 0.2 * jax.random.normal(key, x.shape), rtol=1e-5,
                               atol=1e-7)
    x = jnp.zeros((100_000, 1))
    innovation = ddpg.ornstein_uhlenbeck(x, key, config.ou_theta, config.ou_sigma, config.ou_dt)
    assert abs(float(innovation.std()) - 0.2) < 0.004  # not 0.1 * sqrt(0.01) = 0.01


# Smoke runs on both backends and the discrete-action error: test_contract.py.


def test_ddpg_ou_noise_and_batch_norm_run():
    exp = build("ddpg", "Pendulum-v1", total_steps=1000,
                overrides=dict(SMALL["ddpg"], noise="ornstein_uhlenbeck", batch_norm=True))
    state = exp.init_state()
    step = jax.jit(exp.step)
    for _ in range(4):
        state, m = step(state)
    assert np.isfinite(float(m["critic_loss"][0]))
    stats = state.params["actor"]["batch_stats"]
    assert any(np.any(np.asarray(x) != 0) for x in jax.tree.leaves(stats))  # running means moved
    assert state.noise.shape == (1, 1, 1) and np.any(np.asarray(state.noise) != 0)


def test_d4pg_priority_is_the_kl_to_the_projected_target():
    support = atoms(-10.0, 10.0, 21)
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(0), (8, 21)))
    target = categorical_projection(probs, jnp.linspace(-3.0, 3.0, 8), jnp.full(8, 0.9), support)
    log_p = jax.nn.log_softmax(jnp.where(target > 0, jnp.log(jnp.maximum(target, 1e-30)), -1e9))
    cross_entropy, kl = d4pg.cross_entropy_and_kl(target, log_p)
    np.testing.assert_allclose(kl, 0.0, atol=1e-5)  # the prediction is the target: nothing to learn
    entropy = -np.sum(np.where(target > 0, target * np.log(np.maximum(target, 1e-30)), 0.0), -1)
    np.testing.assert_allclose(cross_entropy, entropy, rtol=1e-4)
    assert np.all(cross_entropy > 1.0)  # the cross-entropy stays at the target's entropy
    uniform = jnp.full((8, 21), -np.log(21.0))
    cross_entropy, kl = d4pg.cross_entropy_and_kl(target, uniform)
    np.testing.assert_allclose(kl, np.log(21.0) - entropy, rtol=1e-4)


def test_d4pg_sets_priorities_from_the_kl():
    exp = build("d4pg", "Pendulum-v1", total_steps=1000, overrides=SMALL["d4pg"])
    state = exp.init_state()
    step = jax.jit(exp.step)
    for _ in range(5):
        state, m = step(state)
    m = {k: float(v[0]) for k, v in jax.device_get(m).items()}
    assert np.isfinite(m["priority_mean"]) and m["priority_mean"] > 0
    # the priority is the cross-entropy less the projected target's entropy (means of one batch)
    np.testing.assert_allclose(m["priority_mean"], m["cross_entropy"] - m["target_entropy"],
                               rtol=1e-3, atol=1e-4)
    assert m["target_entropy"] > 0.1
    assert int(state.learner.updates[0]) > 0


def test_dpg_compatible_critic_is_silver_et_als():
    """Q^w(s, a) = (a - mu(s))^T grad_theta mu(s)^T w + V(s), w of the dimension of theta."""
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    actor = DeterministicActor(2, (8, 8), "tanh", 1)
    value = ValueNetwork((8,), "tanh", 1)
    obs = jax.random.normal(keys[0], (5, 3))
    theta = actor.init(keys[1], obs)
    theta_flat, unravel = ravel_pytree(theta)
    w_flat = jax.random.normal(keys[2], theta_flat.shape)
    critic_params = {"v": value.init(keys[3], obs), "w": unravel(w_flat)}
    jacobian = jax.jacobian(lambda t: actor.apply(unravel(t), obs))(theta_flat)  # [B, d, |theta|]
    mu = actor.apply(theta, obs)

    def q(critic_params, action, actor_params=theta):
        return dpg.compatible_q(actor, value, critic_params, actor_params, obs, action)

    np.testing.assert_allclose(q(critic_params, mu), value.apply(critic_params["v"], obs),
                               rtol=1e-6)
    # the compatible property: grad_a Q^w(s, a)|_{a = mu(s)} = grad_theta mu(s)^T w
    grad_a = jax.grad(lambda a: q(critic_params, a).sum())(mu)
    np.testing.assert_allclose(grad_a, jacobian @ w_flat, rtol=1e-4, atol=1e-6)
    # the critic's features for w: phi(s, a) = grad_theta mu(s) (a - mu(s))
    action = mu + jax.random.normal(keys[4], mu.shape)
    grad_w = jax.grad(lambda w: q({**critic_params, "w": w}, action).sum())(critic_params["w"])
    np.testing.assert_allclose(ravel_pytree(grad_w)[0],
                               np.einsum("bdp,bd->p", jacobian, action - mu), rtol=1e-4,
                               atol=1e-6)
    # the actor's step (critic's theta held): grad_theta mu(s) (grad_theta mu(s)^T w)
    grad_theta = jax.grad(lambda t: q(critic_params, actor.apply(t, obs)).sum())(theta)
    np.testing.assert_allclose(ravel_pytree(grad_theta)[0],
                               np.einsum("bdp,bd->p", jacobian, jacobian @ w_flat), rtol=1e-4,
                               atol=1e-6)
    # in the algorithm, w is shaped like the actor's parameters and starts at 0
    exp = build("dpg", "Pendulum-v1", total_steps=1000,
                overrides=dict(SMALL["dpg"], critic="compatible"))
    params = exp.init_state().params
    w, actor_params = params["critic"]["w"], params["actor"]
    assert jax.tree.structure(w) == jax.tree.structure(actor_params)
    assert [x.shape for x in jax.tree.leaves(w)] == [x.shape for x in jax.tree.leaves(actor_params)]
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(w))


@pytest.mark.parametrize("algo, steps, overrides, threshold", [
    # Random actions score about -1200 on Pendulum; these fixed seeds and budgets reach more.
    ("ddpg", 6000, dict(hidden_sizes=(64, 64), learning_starts=1000), -400),
    ("sac", 6000, dict(hidden_sizes=(64, 64), learning_starts=1000, learning_rate=1e-3), -400),
    ("sac_v1", 8000, dict(hidden_sizes=(64, 64), learning_starts=1000, learning_rate=1e-3), -600),
    ("d4pg", 6000, dict(hidden_sizes=(64, 64), learning_starts=1000), -400),
    ("dpg", 60_000, {}, -500),
    # COPDAC-Q: -338 here; at 60k it sits at the edge of learning (-364 or -573, by rounding)
    ("dpg", 80_000, dict(critic="compatible"), -500),
])
def test_learns_pendulum(tmp_path, algo, steps, overrides, threshold):
    run = pgzoo.train(algo, "Pendulum-v1", total_steps=steps, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, **overrides)
    assert run.eval["mean_return"] >= threshold, run.eval


def test_trains_on_brax(tmp_path):
    # one seed: a Brax compilation is the slowest in the suite, and seed groups are tested
    # on the other backends
    run = pgzoo.train("dpg", "brax:inverted_pendulum", total_steps=400, seed=0, seeds=1,
                      run_dir=tmp_path / "r", progress=False, tensorboard=False,
                      hidden_sizes=(32, 32), num_envs=2, block_size=10, eval_episodes=1)
    assert len(run.eval["per_seed"]) == 1
    assert all(s["mean_length"] >= 1 for s in run.eval["per_seed"])
