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
