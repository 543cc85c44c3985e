"""Conjugate gradient, Fisher-vector products, line search; NPG, TRPO and PPG."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from pgzoo.algos import acktr, npg, ppg, trpo
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


# Smoke runs on every action-space kind and backend: test_contract.py.


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


def _tiny_acktr_problem(space, stats_decay=0.99, batch_size=32, seed=0):
    config = acktr.Config(hidden_sizes=(8,), momentum=0.0, stats_decay=stats_decay)
    model = ActorCritic(policy_head(space), config.hidden_sizes, config.activation)
    k_obs, k_act, k_adv, k_ret = jax.random.split(jax.random.PRNGKey(seed), 4)
    obs = jax.random.normal(k_obs, (batch_size, 3))
    if isinstance(space, Discrete):
        action = jnp.arange(batch_size) % space.n
    else:
        action = jax.random.normal(k_act, (batch_size,) + space.shape)
    batch = (obs, action, jax.random.normal(k_adv, (batch_size,)),
             jax.random.normal(k_ret, (batch_size,)))
    return config, model, batch


def _only(tree, name, key):
    """A random vector shaped like ``tree``, zero outside the leaves whose path contains name."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return jax.tree_util.tree_unflatten(treedef, [
        jax.random.normal(jax.random.fold_in(key, i), x.shape)
        if name in jax.tree_util.keystr(path) else jnp.zeros_like(x)
        for i, (path, x) in enumerate(leaves)])


def test_acktr_kfac_curvature_of_the_heads_is_the_fisher_of_the_loss():
    """The K-FAC block of each output layer is exact when the output's Fisher is the same for
    every example: E[a a^T] (x) diag(1/sigma^2) for the Gaussian mean, E[a a^T] (x) c_v for the
    critic. So, with the exact Fisher (no sampling), K-FAC's curvature times a vector on those
    layers equals the Hessian of -ln pi(a|s) (a Gaussian with sigma = 0.5 and 2 here, not 1) and of
    c_v (R - V)^2 / 2 (curvature c_v, not 2 c_v). Its diagonal block for the state-independent
    log sigma is the Gaussian's Fisher in log sigma, E[(eps^2 - 1)^2] = 2 per dimension, estimated
    from sampled gradients."""
    from pgzoo.core.distributions import distribution
    from pgzoo.core.kfac import kfac_jax
    from pgzoo.envs.spaces import Box

    config, model, batch = _tiny_acktr_problem(Box(-np.ones(2), np.ones(2)))
    obs, action, _, returns = batch
    key = jax.random.PRNGKey(0)
    params = model.init(key, obs)
    params["params"]["policy_head"]["log_std"] = jnp.log(jnp.array([0.5, 2.0]))
    loss_fn = acktr.a2c_loss(model, config)
    estimator = kfac_jax.BlockDiagonalCurvature(func=lambda p, b: loss_fn(p, b)[0])
    empty = estimator.init(key, (params, batch), None, None)

    def update(state, rng, mode, ema_old):
        return estimator.update_curvature_matrix_estimate(
            state, ema_old=ema_old, ema_new=1.0, identity_weight=0.0, batch_size=obs.shape[0],
            rng=rng, func_args=(params, batch), estimation_mode=mode)

    def curvature_times(state, v):
        return estimator.multiply(state, v, identity_weight=0.0, exact_power=True,
                                  use_cached=False, pmap_axis_name=None)

    def policy_nll(p):
        return -jnp.mean(distribution(model.apply(p, obs)[0]).log_prob(action))

    def value_loss(p):
        return config.vf_coef * 0.5 * jnp.mean((returns - model.apply(p, obs)[1]) ** 2)

    exact = update(empty, key, "fisher_exact", 0.0)
    for layer, loss in [("policy_head']['Dense_0", policy_nll), ("value_head", value_loss)]:
        v = _only(params, layer, key)
        hessian_v = jax.jvp(jax.grad(loss), (params,), (v,))[1]
        kfac_v = curvature_times(exact, v)
        for path, got in jax.tree_util.tree_flatten_with_path(kfac_v)[0]:
            if layer in jax.tree_util.keystr(path):
                want = hessian_v
                for k in path:
                    want = want[k.key]
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=layer)

    # log sigma: a running average (ema_old = 1) of 1000 sampled estimates
    sampled = jax.lax.fori_loop(
        0, 1000, lambda i, s: update(s, jax.random.fold_in(key, i), "fisher_gradients", 1.0),
        empty)
    v = _only(params, "log_std", key)
    fisher = (curvature_times(sampled, v)["params"]["policy_head"]["log_std"]
              / v["params"]["policy_head"]["log_std"])
    np.testing.assert_allclose(fisher, [2.0, 2.0], rtol=0.15)


def test_acktr_kronecker_factors_keep_stats_decay_of_the_old_estimate():
    """Two optimizer steps on batches x1, x2: the first layers' input factor A = E[[x,1][x,1]^T]
    (independent of the parameters) is kfac-jax's bias-corrected running average with the old
    estimate weighted by stats_decay: (d A(x1) + A(x2)) / (d + 1)."""
    decay = 0.9
    config, model, b1 = _tiny_acktr_problem(Discrete(3), stats_decay=decay, seed=1)
    _, _, b2 = _tiny_acktr_problem(Discrete(3), stats_decay=decay, seed=2)
    key = jax.random.PRNGKey(0)
    optimizer = acktr.kfac_optimizer(acktr.a2c_loss(model, config), config)
    params = model.init(key, b1[0])
    state = optimizer.init(params, key, b1)
    step = jax.jit(lambda p, s, b: optimizer.step(
        p, s, key, batch=b, learning_rate=jnp.asarray(0.25), momentum=jnp.asarray(0.0),
        damping=jnp.asarray(config.damping), global_step_int=1)[:2])
    for b in (b1, b2):
        params, state = step(params, state, b)

    def input_factor(b):
        x = jnp.concatenate([b[0], jnp.ones((b[0].shape[0], 1))], axis=1)
        return x.T @ x / x.shape[0]

    expected = (decay * input_factor(b1) + input_factor(b2)) / (decay + 1.0)
    first_layers = [s.factors[0] for s in state.estimator_state.blocks_states
                    if s.factors[0].value.shape == expected.shape]
    assert len(first_layers) == 2  # the actor's and the critic's torso
    for factor in first_layers:
        np.testing.assert_allclose(factor.value, expected, rtol=1e-5, atol=1e-6)


def test_acktr_log_std_stays_sane_on_pendulum():
    """Symptom of a log sigma without curvature (stepped by grad / damping): it ran to +-10."""
    exp = build("acktr", "Pendulum-v1", total_steps=100_000)
    state = exp.init_state()
    step = jax.jit(exp.step) if exp.vmapped else exp.step
    largest = 0.0
    for _ in range(100):
        state, _ = step(state)
        log_std = [x for path, x in jax.tree_util.tree_flatten_with_path(state.params)[0]
                   if "log_std" in jax.tree_util.keystr(path)]
        assert log_std
        largest = max([largest] + [float(jnp.max(jnp.abs(x))) for x in log_std])
    assert largest < 3.0, largest


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
    assert agent.units_per_iteration == 3 * 64
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
    with pytest.raises(PgzooError, match="line_search_steps must be > 0"):
        trpo.Config(line_search_steps=0)
    with pytest.raises(PgzooError, match="max_kl must be > 0"):
        npg.Config(max_kl=0.0)


def test_npg_has_no_line_search_settings():
    from pgzoo.core import config as cfg

    with pytest.raises(PgzooError, match="line_search_shrink"):
        cfg.build(npg.Config, {"line_search_shrink": 0.5}, "npg")


def test_npg_and_trpo_share_the_loop_not_each_other():
    import ast
    import inspect

    for module, other in ((npg, "trpo"), (trpo, "npg")):
        tree = ast.parse(inspect.getsource(module))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for a in n.names} | {n.module for n in ast.walk(tree)
                                         if isinstance(n, ast.ImportFrom)}
        assert other not in imported and f"pgzoo.algos.{other}" not in imported, module
        assert "pgzoo.algos.loops" in imported
    with pytest.raises(PgzooError, match="aux_num_minibatches must divide"):
        ppg.Config(aux_num_minibatches=7)
