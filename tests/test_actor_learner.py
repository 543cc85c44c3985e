"""The actor-learner loop in one compiled step (``algos/loops/actor_learner.py``): how stale
each message is, and A3C and IMPALA learning CartPole with fixed seeds and budgets."""
import jax
import numpy as np
import pytest

from pgzoo.run.experiment import build


def metrics_of_steps(algo, n, **config):
    exp = build(algo, "CartPole-v1", 100_000, 0, 1, dict(config, hidden_sizes=(8,)))
    state = exp.agent.init(jax.random.PRNGKey(0))
    step = jax.jit(exp.agent.step)
    out = []
    for _ in range(n):
        state, m = step(state)
        out.append(float(m["staleness"]))
    return state, out


def test_a3c_applies_worker_w_gradient_w_updates_late():
    """W workers' gradients are applied one after another to the learner's parameters: worker w's
    was computed w updates before it is applied, so a round's mean staleness is (W - 1) / 2."""
    state, stale = metrics_of_steps("a3c", 3, num_actors=3, envs_per_actor=2, unroll_length=4)
    assert stale == [1.0, 1.0, 1.0]
    assert int(state.version) == 9  # one update per gradient
    np.testing.assert_array_equal(state.actor_versions, [9, 9, 9])


def test_impala_actors_play_one_version_behind():
    """IMPALA's actors act with the parameters from before the learner's last update: the
    first round's trajectories are fresh, every later one is one version old."""
    state, stale = metrics_of_steps("impala", 3, num_actors=2, envs_per_actor=2,
                                    unroll_length=4)
    assert stale == [0.0, 1.0, 1.0]
    assert int(state.version) == 3  # one batch of both actors' trajectories per round
    np.testing.assert_array_equal(state.actor_versions, [2, 2])


def test_impala_off_policy_correction_is_exact_on_policy():
    """With lag-free parameters the V-trace ratios are 1: IMPALA's first update is on-policy."""
    exp = build("impala", "CartPole-v1", 100_000, 0, 1, dict(hidden_sizes=(8,)))
    _, m = jax.jit(exp.agent.step)(exp.agent.init(jax.random.PRNGKey(1)))
    assert float(m["mean_rho"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("algo, steps, bar", [("a3c", 300_000, 400.0),
                                              ("impala", 400_000, 400.0)])
def test_learns_cartpole_compiled(algo, steps, bar, tmp_path):
    from pgzoo.run import trainer

    exp = build(algo, "CartPole-v1", steps, 0, 1, preset=True)
    _, summary = trainer.train(exp, tmp_path, progress=None, tensorboard=False,
                               eval_episodes=10)
    assert summary["eval"]["mean_return"] >= bar, summary["eval"]


def test_dppo_reuses_each_trajectory_for_m_updates():
    state, stale = metrics_of_steps("dppo", 2, num_actors=2, envs_per_actor=2, unroll_length=8,
                                    update_iterations=3)
    assert stale == [0.0, 0.0]  # synchronous: every gradient made with the current parameters
    assert int(state.version) == 2 * 3


def test_d4pg_actors_fold_their_unrolls_into_n_step_transitions():
    """An actor's unroll [T, E] becomes T E N-step transitions: a window stops at a
    termination (no bootstrap), at a truncation and at the unroll's last step (bootstrap from
    the true next observation), checked against a loop over the definition."""
    from pgzoo.algos.d4pg import unroll_n_step
    from pgzoo.core.rollout import Trajectory

    T, E, n, gamma = 7, 2, 3, 0.9
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T, E, 2)).astype(np.float32)
    final_obs = rng.normal(size=(T, E, 2)).astype(np.float32)
    reward = rng.normal(size=(T, E)).astype(np.float32)
    terminated = np.zeros((T, E), bool)
    truncated = np.zeros((T, E), bool)
    terminated[2, 0] = True
    truncated[4, 1] = True
    traj = Trajectory(obs, rng.normal(size=(T, E, 1)).astype(np.float32), (), reward,
                      terminated, truncated, final_obs, {})
    out = jax.tree.map(np.asarray, unroll_n_step(traj, n, gamma))
    assert out.reward.shape == (T * E,)
    for t in range(T):
        for e in range(E):
            ret, k = 0.0, t
            for i in range(n):
                k = t + i
                ret += gamma ** i * reward[k, e]
                if terminated[k, e] or truncated[k, e] or k == T - 1:
                    break
            j = t * E + e
            np.testing.assert_allclose(out.reward[j], ret, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(out.next_obs[j], final_obs[k, e])
            np.testing.assert_array_equal(out.obs[j], obs[t, e])
            expected = 0.0 if terminated[k, e] else gamma ** (k - t + 1)
            np.testing.assert_allclose(out.discount[j], expected, rtol=1e-6)


def test_d4pg_actor_learner_form_fills_replay_then_learns(tmp_path):
    """K = 2 actors of 2 environments send 8-step unrolls; the learner adds each to its replay,
    reports NaN losses until learning_starts transitions are in it, then takes
    gradient_steps / num_envs updates per transition; the checkpoint round-trips."""
    from pgzoo.run import checkpoint, rundir, trainer

    exp = build("d4pg", "Pendulum-v1", 10 * 32, 0, 1, dict(
        num_actors=2, envs_per_actor=2, unroll_length=8, hidden_sizes=(16, 16), batch_size=8,
        learning_starts=64, buffer_size=256, num_atoms=11, gradient_steps=2, num_envs=4))
    assert exp.agent.actor_learner.num_actors == 2 and exp.agent.units_per_iteration == 32
    state, summary = trainer.train(exp, tmp_path, progress=False, tensorboard=False,
                                   eval_episodes=0)
    rows = rundir.read_metrics(tmp_path)
    assert [r["replay_size"] for r in rows] == [24.0, 56.0] + [
        min(32.0 * i - 8, 256.0) for i in range(3, 11)]  # the mean over the round's 2 messages
    assert np.isnan(rows[0]["critic_loss"]) and np.isfinite(rows[-1]["critic_loss"])
    # the actors act at random until the learner starts, then with the policy
    assert float(exp.agent.init(jax.random.PRNGKey(0)).learner.params["burn_in"][()]) == 1.0
    assert float(state.learner.params["burn_in"][0]) == 0.0
    # 20 messages of 16 transitions, 16 x 2 / 4 = 8 updates each from the 4th (64 in replay)
    assert int(state.learner.learner.updates[0]) == (20 - 3) * 8
    restored, _ = checkpoint.load(tmp_path / rundir.CHECKPOINTS, exp.template())
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    action = exp.policy(restored)(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0


def test_d4pg_actor_learner_form_refuses_what_it_cannot_do():
    from pgzoo.errors import PgzooError

    with pytest.raises(PgzooError, match="does not normalise observations"):
        build("d4pg", "Pendulum-v1", 10_000, 0, 1, dict(num_actors=2, normalize_obs=True))
    with pytest.raises(PgzooError, match=r"n_step \(5\) must not exceed unroll_length \(4\)"):
        build("d4pg", "Pendulum-v1", 10_000, 0, 1, dict(num_actors=2, n_step=5,
                                                        unroll_length=4))
