import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from pgzoo import envs
from pgzoo.algos import ppo
from pgzoo.errors import PgzooError
from pgzoo.run.experiment import build


def test_clipped_surrogate_at_chosen_ratios():
    ratio = jnp.array([0.5, 1.0, 1.5, 0.5, 1.5])
    adv = jnp.array([1.0, 1.0, 1.0, -1.0, -1.0])
    # min(rA, clip(r, .8, 1.2)A): 0.5, 1.0, 1.2, -0.8, -1.5
    got = ppo.clipped_surrogate(ratio, adv, 0.2)
    np.testing.assert_allclose(got, np.mean([0.5, 1.0, 1.2, -0.8, -1.5]), rtol=1e-6)


def test_value_loss_clipping_takes_the_larger_error():
    value, old, target = jnp.array([2.0]), jnp.array([0.0]), jnp.array([3.0])
    np.testing.assert_allclose(ppo.value_loss(value, old, target, 0.2, clip=False), 0.5)
    # clipped value 0.2 -> error 2.8^2 = 7.84 is larger than 1.0
    np.testing.assert_allclose(ppo.value_loss(value, old, target, 0.2, clip=True), 0.5 * 7.84,
                               rtol=1e-6)


def run_iterations(env_spec, n=2, seed=0, **overrides):
    exp = build("ppo", env_spec, total_steps=10_000, seed=seed, overrides=overrides)
    state = exp.init_state()
    step = jax.jit(exp.step) if exp.vmapped else exp.step
    metrics = []
    for _ in range(n):
        state, m = step(state)
        metrics.append(jax.device_get(m))
    return exp, state, metrics


@pytest.mark.parametrize("spec", ["envs_for_tests:Reach"])  # both backends: test_contract.py
def test_smoke_a_user_environment_class(spec):
    exp, state, metrics = run_iterations(spec, num_envs=2, num_steps=32, num_minibatches=2)
    assert int(np.asarray(state.iteration).reshape(-1)[0]) == 2
    for m in metrics:
        for k, v in m.items():
            assert np.all(np.isfinite(v)), (k, v)
    obs = np.zeros(exp.env.observation_space.shape, np.float32)
    action = exp.policy(state)(obs)
    if exp.env.action_space.kind == "continuous":
        low, high = exp.env.unwrapped.action_space.low, exp.env.unwrapped.action_space.high
        assert action.shape == low.shape and np.all(action >= low) and np.all(action <= high)
    else:
        assert action.shape == () and 0 <= int(action) < exp.env.action_space.n


def test_shared_torso_has_fewer_parameters():
    from pgzoo.core.networks import count_params

    _, separate, _ = run_iterations("CartPole-v1", n=1)
    _, shared, m = run_iterations("CartPole-v1", n=1, shared_torso=True)
    assert count_params(shared.params) < count_params(separate.params)
    assert np.isfinite(m[0]["policy_loss"]).all()


# The same seed giving identical metrics: test_contract.py, for every algorithm.


def test_learning_rate_anneals_to_zero():
    exp = build("ppo", "CartPole-v1", total_steps=4 * 512)
    state = exp.init_state()
    step = jax.jit(exp.step)
    lrs = []
    for _ in range(4):
        state, m = step(state)
        lrs.append(float(m["learning_rate"][0]))
    np.testing.assert_allclose(lrs, [2.5e-4, 1.875e-4, 1.25e-4, 0.625e-4], rtol=1e-5)


def test_target_kl_skipping_epochs_does_not_stall_the_annealing():
    # Epochs skipped at a tiny target_kl apply no optimiser update; the schedule counts
    # iterations, so the learning rate logged (and used) still follows alpha (1 - k / K).
    exp = build("ppo", "CartPole-v1", total_steps=4 * 512,
                overrides=dict(target_kl=1e-9, update_epochs=4))
    state, step, lrs = exp.init_state(), jax.jit(exp.step), []
    for _ in range(4):
        state, m = step(state)
        assert int(m["epochs"][0]) < 4
        lrs.append(float(m["learning_rate"][0]))
    np.testing.assert_allclose(lrs, [2.5e-4, 1.875e-4, 1.25e-4, 0.625e-4], rtol=1e-5)


def test_the_logged_learning_rate_is_the_one_used():
    # One epoch of one minibatch from a fresh Adam state: the first Adam direction has
    # |m_hat / (sqrt(v_hat) + eps)| ~ 1 for each coordinate with a non-negligible gradient, so
    # the largest parameter change equals the learning rate.
    exp = build("ppo", "CartPole-v1", total_steps=8 * 512,
                overrides=dict(update_epochs=1, num_minibatches=1, max_grad_norm=1e9))
    state, step = exp.init_state(), jax.jit(exp.step)
    for _ in range(3):  # iteration 3: Adam's state is no longer fresh; compare iteration 0
        before = state.params
        state, m = step(state)
        if _ == 0:
            change = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                         zip(jax.tree.leaves(state.params), jax.tree.leaves(before)))
            np.testing.assert_allclose(change, float(m["learning_rate"][0]), rtol=1e-3)


def test_ppo_learns_cartpole(tmp_path):
    # Fixed seed and budget: 100k steps of CleanRL's settings take about 5 s here.
    run = pgzoo.train("ppo", "CartPole-v1", total_steps=100_000, seed=0, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=10)
    assert run.eval["mean_return"] >= 250
    first = [r["episode_return"] for r in run.metrics[:20] if r["episode_return"] is not None]
    assert np.mean(first) < 60  # it started from a random policy


def test_ppo_learns_a_continuous_task_through_the_bridge(tmp_path):
    # Reach: move x to 1 in 20 steps; a random policy scores about -20, a good one above -3.
    run = pgzoo.train("ppo", "envs_for_tests:Reach", total_steps=20_480, seed=0,
                      run_dir=tmp_path / "r", progress=False, tensorboard=False,
                      num_envs=4, num_steps=128, ent_coef=0.0, learning_rate=3e-3)
    assert run.eval["mean_return"] > -5.0


def test_truncated_steps_bootstrap_from_final_observation(monkeypatch):
    """With a constant reward of 1 and no termination, the value target of a truncated step
    must include gamma * V(final_obs), not zero."""
    captured = {}
    real_gae = ppo.gae

    def spy(rewards, values, dones, last_value, gamma, lam):  # noqa: PLR0913
        captured["rewards"] = rewards
        return real_gae(rewards, values, dones, last_value, gamma, lam)

    monkeypatch.setattr(ppo, "gae", spy)
    env = envs.make("envs_for_tests:Corridor", num_envs=1)
    agent = ppo.make(ppo.Config(num_envs=1, num_steps=12, num_minibatches=1), env, 12)
    state = agent.init(jax.random.PRNGKey(0))
    # Always move left (action 0) so the episode is truncated at t = 10, never terminated.
    monkeypatch.setattr(ppo, "distribution", _always_left)
    state, _ = agent.step(state)
    rewards = np.asarray(captured["rewards"])[:, 0]
    assert np.all(rewards[:9] == 1.0) and rewards[9] != 1.0 and np.all(rewards[10:] == 1.0)


def _always_left(head):
    import distrax

    return distrax.Categorical(logits=jnp.broadcast_to(jnp.array([10.0, -10.0]), head.shape))


def test_config_rejects_bad_values():
    with pytest.raises(PgzooError, match="learning_rate must be > 0"):
        ppo.Config(learning_rate=-1.0)
    with pytest.raises(PgzooError, match="num_envs must be > 0"):
        ppo.Config(num_envs=0)
    with pytest.raises(PgzooError, match="num_minibatches must divide"):
        ppo.Config(num_minibatches=3)
    with pytest.raises(PgzooError, match="activation must be one of"):
        ppo.Config(activation="sigmoid")


def test_smoke_mujoco_halfcheetah_through_the_bridge():
    pytest.importorskip("mujoco")
    exp, state, metrics = run_iterations("gymnasium:HalfCheetah-v5", n=1, num_envs=1,
                                         num_steps=64, num_minibatches=2, normalize_obs=True,
                                         normalize_reward=True)
    assert exp.env.observation_space.shape == (17,) and exp.env.action_space.shape == (6,)
    assert np.isfinite(metrics[0]["policy_loss"])
