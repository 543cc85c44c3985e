import json

import jax
import numpy as np
import pytest

import pgzoo
from pgzoo.errors import PgzooError
from pgzoo.run import trainer
from pgzoo.run.experiment import build
from pgzoo.run.rundir import read_metrics

def read_tensorboard(path):
    """Parse a TensorBoard event file (TFRecord framing) into its scalar Events."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    data, events, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        if event.HasField("summary"):
            events.append(event)
    return events


SMALL = dict(num_envs=2, num_steps=64, num_minibatches=2, update_epochs=2)


def test_run_directory_layout_and_load_evaluate(tmp_path):
    run = pgzoo.train("ppo", "CartPole-v1", total_steps=4096, run_dir=tmp_path / "run",
                      progress=False, **SMALL)
    d = run.run_dir
    for name in ("config.json", "metrics.csv", "eval.json", "curve.png", "checkpoints/state.npz"):
        assert (d / name).is_file(), name
    events = read_tensorboard(next((d / "tb").glob("events.out.tfevents.*")))
    assert [e.step for e in events] == [128 * i for i in range(1, 33)]
    tags = {v.tag for v in events[-1].summary.value}
    assert {"policy_loss", "value_loss", "entropy", "learning_rate"} <= tags
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["status"] == "finished" and cfg["config"]["num_envs"] == 2
    rows = run.metrics
    assert [r["iteration"] for r in rows] == list(range(1, 33))
    assert rows[-1]["env_steps"] == 4096

    policy = pgzoo.load(d)
    same = run.policy()
    obs = np.array([0.01, -0.2, 0.03, 0.1], np.float32)
    assert int(policy(obs)) == int(same(obs))
    batch = np.zeros((5, 4), np.float32)
    assert policy(batch).shape == (5,)
    result = pgzoo.evaluate(policy, "CartPole-v1", episodes=3)
    assert result["episodes"] == 3 and len(result["returns"]) == 3
    assert 8 <= result["mean_return"] <= 500
    # the same policy runs through the bridge too
    assert pgzoo.evaluate(policy, "gymnasium:CartPole-v1", episodes=2)["episodes"] == 2


def test_evaluate_rejects_an_incompatible_environment(tmp_path):
    run = pgzoo.train("ppo", "CartPole-v1", total_steps=256, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=0, **SMALL)
    with pytest.raises(PgzooError, match="does not match the policy"):
        pgzoo.evaluate(run.policy(), "Pendulum-v1", episodes=2)


def _train_to_end(exp, run_dir, interrupt_after=None):
    def on_chunk(info):
        if interrupt_after is not None and info["iteration"] >= interrupt_after:
            raise KeyboardInterrupt

    return trainer.train(exp, run_dir, progress=False, tensorboard=False, eval_episodes=0,
                         chunk_seconds=1e-4, callback=on_chunk)


@pytest.mark.parametrize("obs_norm", [False, True])
def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path, obs_norm):
    overrides = dict(SMALL, normalize_obs=obs_norm, normalize_reward=obs_norm)
    exp = build("ppo", "CartPole-v1", total_steps=40 * 128, seed=1, overrides=overrides)
    full, _ = _train_to_end(exp, tmp_path / "full")

    (tmp_path / "cut").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _train_to_end(exp, tmp_path / "cut", interrupt_after=5)
    cfg = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert cfg["status"] == "interrupted"
    assert max(r["iteration"] for r in read_metrics(tmp_path / "cut")) < 40

    resumed = pgzoo.resume(tmp_path / "cut", progress=False, tensorboard=False, eval_episodes=0)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(full), jax.device_get(resumed.state))
    rows_full = read_metrics(tmp_path / "full")
    rows_cut = read_metrics(tmp_path / "cut")
    assert len(rows_full) == len(rows_cut) == 40
    for a, b in zip(rows_full, rows_cut):
        assert {k: v for k, v in a.items() if k != "wall_time"} == \
            {k: v for k, v in b.items() if k != "wall_time"}


def test_resume_on_the_bridge_continues(tmp_path):
    exp = build("ppo", "gymnasium:CartPole-v1", total_steps=10 * 128, overrides=SMALL)
    (tmp_path / "r").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _train_to_end(exp, tmp_path / "r", interrupt_after=3)
    run = pgzoo.resume(tmp_path / "r", progress=False, tensorboard=False, eval_episodes=0)
    assert run.summary["iteration"] == 10
    assert [r["iteration"] for r in run.metrics] == list(range(1, 11))


def test_seeds_are_vmapped_and_independent(tmp_path):
    run = pgzoo.train("ppo", "CartPole-v1", total_steps=1024, seeds=3, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=2, **SMALL)
    assert jax.tree.leaves(run.params)[0].shape[0] == 3
    assert len(run.eval["per_seed"]) == 3
    rows = run.metrics
    assert sorted({r["seed"] for r in rows}) == [0, 1, 2]
    losses = {r["seed"]: r["policy_loss"] for r in rows if r["iteration"] == 8}
    assert len(set(losses.values())) == 3
    assert pgzoo.load(run.run_dir, seed=2) is not None
    with pytest.raises(PgzooError, match="seed index"):
        pgzoo.load(run.run_dir, seed=3)


def test_seeds_on_the_bridge_is_a_clear_error():
    with pytest.raises(PgzooError, match="needs a JAX-native environment"):
        build("ppo", "gymnasium:CartPole-v1", num_seeds=2)


def test_checkpoints_are_not_pickles_and_corruption_is_reported(tmp_path):
    run = pgzoo.train("ppo", "CartPole-v1", total_steps=256, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=0, **SMALL)
    ckpt = run.run_dir / "checkpoints" / "state.npz"
    with np.load(ckpt, allow_pickle=False) as data:  # loads without pickle
        assert all(data[k].dtype != object for k in data.files)
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(PgzooError, match="corrupt"):
        pgzoo.load(run.run_dir)
    ckpt.unlink()
    with pytest.raises(PgzooError, match="has no checkpoint"):
        pgzoo.load(run.run_dir)
