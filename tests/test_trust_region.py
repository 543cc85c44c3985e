"""Conjugate gradient, Fisher-vector products, line search; NPG, TRPO and PPG."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from pgzoo.algos import acktr, ppg, trpo
from pgzoo.core.distributions import policy_head
from pgzoo.core.networks import ActorCritic
from pgzoo.envs.spaces import Discrete
from pgzoo.core.trust_region import (backtracking_line_search, conjugate_gradient,
                                     fisher_vector_product)
from pgzoo.errors import PgzooError
from pgzoo.run.experiment import build


def test_conjugate_gradient_solves_a_random_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(20, 20))
    a = m @ m.T + 20 * np.eye(20)
    b = rng.normal(size=20)
    x = conjugate_gradient(lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32),
                           iters=40)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-3, atol=1e-4)


def test_fisher_vector_product_equals_explicit_kl_hessian_times_vector():
    """Tiny softmax policy with logits = W s: the FVP of the mean KL must equal the full Hessian
    (computed with jax.hessian on the flat parameters) times a vector."""
    rng = np.random.default_rng(1)
    states = jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)
    theta_old = jnp.asarray(rng.normal(size=6) * 0.3, jnp.float32)

    def logits(theta):
        return states @ theta.reshape(3, 2)

    old = jax.nn.log_softmax(logits(theta_old))

    def mean_kl(theta):
        new = jax.nn.log_softmax(logits(theta))
        return jnp.mean(jnp.sum(jnp.exp(old) * (old - new), axis=-1))

    v = jnp.asarray(rng.normal(size=6), jnp.float32)
    hessian = jax.hessian(mean_kl)(theta_old)
    np.testing.assert_allclose(fisher_vector_product(mean_kl, theta_old)(v), hessian @ v,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fisher_vector_product(mean_kl, theta_old, damping=0.1)(v),
                               hessian @ v + 0.1 * v, rtol=1e-4, atol=1e-6)


def test_line_search_rejects_a_step_that_breaks_the_kl_constraint():
    # surrogate increases along x; "KL" is x^2. The full step 1.0 has KL 1.0 > 0.3; shrinking by
    # 0.5 gives 0.5 (KL 0.25 <= 0.3), accepted at j = 1.
    surrogate = lambda p: p[0]  # noqa: E731
    kl = lambda p: p[0] ** 2  # noqa: E731
    params, j, ok = backtracking_line_search(jnp.zeros(1), jnp.ones(1), surrogate, kl, 0.3,
                                             shrink=0.5, max_backtracks=5)
    assert bool(ok) and int(j) == 1 and float(params[0]) == 0.5
    # A step that keeps the constraint is accepted whole.
    params, j, ok = backtracking_line_search(jnp.zeros(1), jnp.ones(1), surrogate, kl, 2.0)
    assert bool(ok) and int(j) == 0 and float(params[0]) == 1.0
    # A step that never improves the surrogate is rejected: the parameters stay.
    params, _, ok = backtracking_line_search(jnp.zeros(1), -jnp.ones(1), surrogate, kl, 2.0)
    assert not bool(ok) and float(params[0]) == 0.0


@pytest.mark.parametrize("algo", ["trpo", "npg", "acktr", "ppg"])
@pytest.mark.parametrize("spec", ["CartPole-v1", "gymnasium:CartPole-v1", "Pendulum-v1",
                                  "gymnasium:Pendulum-v1"])
def test_smoke_both_backends_and_action_kinds(algo, spec):
    small = {"trpo": dict(num_envs=2, num_steps=64, value_minibatch_size=64, cg_iters=3),
             "npg": dict(num_envs=2, num_steps=64, value_minibatch_size=64, cg_iters=3),
             "acktr": dict(num_envs=2, num_steps=8),
             "ppg": dict(num_envs=2, num_steps=32, n_pi=2, e_aux=1, aux_num_minibatches=2,
                         num_minibatches=2)}[algo]
    exp = build(algo, spec, total_steps=10_000, overrides=small)
    state = exp.init_state()
    step = jax.jit(exp.step) if exp.vmapped else exp.step
    state, metrics = step(state)
    for k, v in jax.device_get(metrics).items():
        assert np.all(np.isfinite(v)), (algo, spec, k, v)


def test_trpo_step_keeps_the_kl_within_the_trust_region():
    exp = build("trpo", "CartPole-v1", total_steps=20_000, overrides=dict(max_kl=0.005))
    state = exp.init_state()
    step = jax.jit(exp.step)
    for _ in range(4):
        state, m = step(state)
        assert float(m["kl"][0]) <= 0.005 + 1e-6
        assert float(m["surrogate_gain"][0]) >= 0.0


def test_npg_step_has_the_natural_gradient_size():
    # Without a line search the quadratic model's KL of the step, (1/2) s^T H s, equals delta;
    # the measured KL is close to it for a small delta.
    exp = build("npg", "CartPole-v1", total_steps=20_000, overrides=dict(max_kl=0.001))
    _, m = jax.jit(exp.step)(exp.init_state())
    assert 0.0003 < float(m["kl"][0]) < 0.003


def _acktr_step(max_kl: float, learning_rate: float = 0.25):
    """One ACKTR (K-FAC, trust-region) step on a toy problem: 3-action policy on fixed states,
    advantages that favour action 0, value targets 1. Returns (loss before, loss after, |dtheta|)."""
    config = acktr.Config(max_kl=max_kl, momentum=0.0, hidden_sizes=(16,))
    model = ActorCritic(policy_head(Discrete(3)), config.hidden_sizes, config.activation)
    key = jax.random.PRNGKey(0)
    obs = jax.random.normal(key, (64, 4))
    action = jnp.arange(64) % 3
    batch = (obs, action, jnp.where(action == 0, 1.0, -0.5), jnp.ones(64))
    loss_fn = acktr.a2c_loss(model, config)
    optimizer = acktr.kfac_optimizer(loss_fn, config)
    params = model.init(key, obs)
    state = optimizer.init(params, key, batch)
    new_params, _, _ = jax.jit(lambda p, s: optimizer.step(
        p, s, key, batch=batch, learning_rate=jnp.asarray(learning_rate),
        momentum=jnp.asarray(0.0), damping=jnp.asarray(config.damping), global_step_int=1))(
        params, state)
    change = jnp.sqrt(sum(jnp.sum((a - b) ** 2) for a, b in
                          zip(jax.tree.leaves(new_params), jax.tree.leaves(params))))
    return float(loss_fn(params, batch)[0]), float(loss_fn(new_params, batch)[0]), float(change)


def test_one_acktr_step_lowers_the_loss_on_a_toy_problem():
    before, after, _ = _acktr_step(max_kl=0.001)
    assert after < before - 1e-3, (before, after)


def test_acktr_trust_region_bounds_the_step():
    # The step is eta = min(eta_max, sqrt(2 delta / Delta^T F Delta)) Delta: with delta 100x
    # smaller the step shrinks 10x (both steps are limited by the trust region, not eta_max).
    _, _, small = _acktr_step(max_kl=1e-6)
    _, _, large = _acktr_step(max_kl=1e-4)
    assert 0.0 < small < large
    assert large / small == pytest.approx(10.0, rel=0.05)


def test_acktr_seeds_are_not_vmapped_together():
    from pgzoo.run.trainer import seed_groups
    exp = build("acktr", "CartPole-v1", total_steps=10_000, num_seeds=3)
    assert seed_groups(exp) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_ppg_alternates_phases_as_configured():
    """One State step is one phase: n_pi policy iterations, then the auxiliary phase. The
    auxiliary value head gets gradients only in the auxiliary phase."""
    config = ppg.Config(num_envs=2, num_steps=32, n_pi=3, e_aux=2, aux_num_minibatches=4,
                        num_minibatches=2)
    from pgzoo import envs

    env = envs.make("CartPole-v1", num_envs=2)
    agent = ppg.make(config, env, 10_000)
    assert agent.steps_per_iteration == 3 * 64
    state = agent.init(jax.random.PRNGKey(0))
    aux_head = lambda s: s.params["policy"]["params"]["aux_value"]  # noqa: E731
    before = aux_head(state)
    new_state, metrics = jax.jit(agent.step)(state)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, aux_head(new_state))
    assert all(jax.tree.leaves(changed))
    assert np.isfinite(float(metrics["aux_value_loss"])) and float(metrics["aux_kl"]) >= 0.0
    assert float(metrics["episodes"]) > 0


@pytest.mark.parametrize("algo, steps, overrides, threshold", [
    ("trpo", 60_000, {}, 300),
    ("npg", 100_000, {}, 300),
    ("acktr", 100_000, {}, 200),
    ("ppg", 150_000, {"e_pi": 4, "e_v": 4, "n_pi": 8, "learning_rate": 2.5e-4}, 150),
])
def test_learns_cartpole(tmp_path, algo, steps, overrides, threshold):
    run = pgzoo.train(algo, "CartPole-v1", total_steps=steps, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, **overrides)
    assert run.eval["mean_return"] >= threshold, run.eval


def test_configs_reject_bad_values():
    with pytest.raises(PgzooError, match="max_kl must be > 0"):
        trpo.Config(max_kl=0.0)
    with pytest.raises(PgzooError, match="aux_num_minibatches must divide"):
        ppg.Config(aux_num_minibatches=7)
