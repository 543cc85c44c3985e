"""The Ray driver (``pgzoo.distributed``): IMPALA and A3C with real actor processes, a killed
actor, Ctrl-C on a real subprocess, resume, two Ray nodes, and Ray missing.

One local Ray instance (3 CPUs, its own temporary directory) serves the tests of a worker."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import pgzoo
from pgzoo.errors import PgzooError

ray = pytest.importorskip("ray")

CARTPOLE = dict(env="CartPole-v1", progress=False, tensorboard=False, eval_episodes=5)


@pytest.fixture(scope="module")
def local_ray():
    temp = tempfile.mkdtemp(prefix="/tmp/pgzoo-ray-")  # short: Ray's sockets live there
    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False,
             _temp_dir=temp)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def last_returns(table: list[dict], n: int = 20) -> float:
    done = [float(r["episode_return"]) for r in table if r["episode_return"]][-n:]
    return sum(done) / len(done)


def test_impala_learns_cartpole_on_two_actors_when_one_is_killed(local_ray, tmp_path):
    """Two actor processes feed the learner; at update 40 actor 0's process is killed with
    SIGKILL. Ray restarts it, the run finishes, the update count never goes back, and the
    policy learns as an unharmed run does (fixed seed and budget; scheduling is not fixed)."""
    killed = []

    def kill_actor(info):
        if info["iteration"] == 40:
            pid = ray.get(info["actors"][0].pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    run = pgzoo.train("impala", total_steps=150_000, run_dir=tmp_path / "run", callback=kill_actor,
                      **CARTPOLE)
    assert killed and run.summary["actor_restarts"] >= 1
    table = rows(run.run_dir)
    iterations = [int(r["iteration"]) for r in table]
    assert iterations == list(range(1, len(iterations) + 1))  # every update once, in order
    assert int(table[-1]["actor_restarts"]) >= 1
    stale = [float(r["staleness"]) for r in table]
    assert min(stale) >= 0 and max(stale) > 0  # some messages were made with older parameters
    assert last_returns(table) >= 150, last_returns(table)  # random play: about 22
    assert run.eval["mean_return"] >= 150
    cfg = json.loads((run.run_dir / "config.json").read_text())
    assert cfg["status"] == "finished" and cfg["driver"] == "ray"
    policy = pgzoo.load(run.run_dir)  # the checkpoint loads as every run's does
    assert pgzoo.evaluate(policy, "CartPole-v1", episodes=3)["mean_return"] >= 150


def test_a3c_applies_gradients_as_they_arrive_and_resumes(local_ray, tmp_path):
    """A3C's learner applies one worker's gradient per update; a run stopped at update 30
    resumes from its checkpoint and continues the update count and metrics without a gap."""
    run = pgzoo.train("a3c", total_steps=40_000, run_dir=tmp_path / "run",
                      checkpoint_interval=0.0,
                      callback=lambda info: info["iteration"] < 30, **CARTPOLE)
    assert run.summary["iteration"] == 30 and "stopped_early" in run.summary
    first = rows(run.run_dir)
    assert len(first) == 30 and float(first[-1]["env_steps"]) == 30 * 8 * 5  # one message each
    resumed = pgzoo.resume(run.run_dir, 6_000, progress=False, tensorboard=False,
                           eval_episodes=0)
    table = rows(resumed.run_dir)
    assert [int(r["iteration"]) for r in table] == list(range(1, 6_000 // 40 + 1))
    assert [r["staleness"] for r in table[:30]] == [r["staleness"] for r in first]


@pytest.fixture()
def ray_tmpdir():
    """A short directory for a subprocess's Ray (its sockets live there), removed after."""
    temp = tempfile.mkdtemp(prefix="/tmp/pgzoo-ray-")
    yield temp
    shutil.rmtree(temp, ignore_errors=True)


def test_ctrl_c_stops_actors_and_keeps_checkpoint_and_metrics(tmp_path, ray_tmpdir):
    """A real `pgzoo train impala` process, SIGINT once metrics are written: exit 130-style
    interruption, status interrupted, the checkpoint kept, and no actor process left."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir}
    proc = subprocess.Popen([sys.executable, "-m", "pgzoo.cli", "train", "impala", "--env",
                             "CartPole-v1", "--steps", "50000000", "--run-dir", str(run_dir),
                             "--no-progress", "--checkpoint-interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoints" / "state.npz").exists():
        time.sleep(0.5)
    assert (run_dir / "checkpoints" / "state.npz").exists(), proc.stderr.read() if proc.poll() \
        is not None else "no checkpoint"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "interrupted"
    saved = int(cfg["env_steps_done"])
    table = rows(run_dir)
    assert table and int(table[-1]["env_steps"]) >= saved
    deadline = time.time() + 30  # every Ray process of the run (they name its directory)
    while time.time() < deadline and _processes_naming(env["RAY_TMPDIR"]):
        time.sleep(0.5)
    assert not _processes_naming(env["RAY_TMPDIR"])


def _processes_naming(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def test_impala_runs_its_actors_on_two_ray_nodes(tmp_path, ray_tmpdir):
    """A cluster of two Ray nodes on this machine (``ray.cluster_utils.Cluster``), one CPU
    each: the two actors land on both nodes."""
    script = textwrap.dedent(f"""
        import json, ray
        from ray.cluster_utils import Cluster
        import pgzoo
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        nodes = set()
        def on_update(info):
            if info["iteration"] == 2:
                nodes.update(ray.get([a.node.remote() for a in info["actors"]]))
        run = pgzoo.train("impala", env="CartPole-v1", total_steps=3200, progress=False,
                          tensorboard=False, eval_episodes=0, run_dir={str(tmp_path / "run")!r},
                          callback=on_update)
        print(json.dumps({{"nodes": len(nodes), "cluster": len(ray.nodes()),
                           "updates": run.summary["iteration"]}}))
        ray.shutdown()
        cluster.shutdown()
    """)
    env = {**os.environ, "RAY_TMPDIR": ray_tmpdir}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"nodes": 2, "cluster": 2, "updates": 10}


def test_ray_missing_is_a_one_line_error_naming_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(PgzooError, match=r'pip install "pgzoo\[distributed\]"'):
        pgzoo.train("impala", total_steps=3200, run_dir=tmp_path / "run", **CARTPOLE)


def test_drivers_are_checked(tmp_path):
    with pytest.raises(PgzooError, match="ppo has no actor-learner form"):
        pgzoo.train("ppo", total_steps=2048, driver="ray", run_dir=tmp_path / "a", **CARTPOLE)
    with pytest.raises(PgzooError, match="unknown driver 'mpi'; valid: compiled, ray"):
        pgzoo.train("impala", total_steps=3200, driver="mpi", run_dir=tmp_path / "b",
                    **CARTPOLE)
    with pytest.raises(PgzooError, match="--ray-address needs the ray driver"):
        pgzoo.train("ppo", total_steps=2048, ray_address="auto", run_dir=tmp_path / "c",
                    **CARTPOLE)


def test_distributed_ppo_updates_synchronously(local_ray, tmp_path):
    """DPPO's learner averages the gradients of both workers made with its current parameters:
    nothing is stale, nothing is dropped, and each trajectory gives M = 3 updates."""
    run = pgzoo.train("dppo", total_steps=2 * 2 * 2 * 32 * 3, run_dir=tmp_path / "run",
                      envs_per_actor=2, unroll_length=32, update_iterations=3, **CARTPOLE)
    table = rows(run.run_dir)
    assert len(table) == 6 * 3  # six rounds of two trajectories, three updates each
    assert {float(r["staleness"]) for r in table} == {0.0}
    assert int(table[-1]["dropped_messages"]) == 0
    assert int(table[-1]["env_steps"]) == 6 * 2 * 2 * 32


def test_distributed_ppo_shares_observation_statistics(local_ray, tmp_path):
    """With normalize_obs the learner merges the statistics of every worker's observations and
    sends them with the parameters: a worker's second trajectory is normalised with what both
    workers saw in the first round (4 resets + 2 x 64 steps), then its own 64 steps; the
    learner's statistics (the checkpoint's) count every reset and every step played."""
    from pgzoo.envs.wrappers import observation_stats

    seen = {}

    def callback(info):
        if info["iteration"] == 4:  # the second round's first update: each worker played twice
            seen["count"] = float(ray.get(info["actors"][0].observation_stats.remote()).count)

    run = pgzoo.train("dppo", total_steps=2 * 2 * 2 * 32 * 3, run_dir=tmp_path / "run",
                      envs_per_actor=2, unroll_length=32, update_iterations=3,
                      normalize_obs=True, callback=callback, **CARTPOLE)
    start = 1e-4 + 2 * 2  # the learner's statistics start from the resets of all four envs
    assert seen["count"] == pytest.approx(start + 2 * 64 + 64, abs=1e-3)  # alone: 2 + 128
    stats = observation_stats(run.state.env_state)  # the state of a run of one seed: [1, ...]
    assert float(stats.count[0]) == pytest.approx(start + 6 * 2 * 64, abs=1e-2)
    assert np.all(np.isfinite(np.asarray(stats.mean))) and np.all(np.asarray(stats.var) > 0)


def test_d4pg_actors_feed_the_learners_replay(local_ray, tmp_path):
    """D4PG with K = 2 actor processes: each message is one unroll's N-step transitions, added
    to the learner's replay; the learner waits (NaN losses) until learning_starts are in it,
    then updates. Without num_actors the ray driver says how to get the actor form."""
    with pytest.raises(PgzooError, match="d4pg runs on Ray .*--set num_actors=K"):
        pgzoo.train("d4pg", env="Pendulum-v1", total_steps=2000, driver="ray",
                    run_dir=tmp_path / "no", progress=False)
    run = pgzoo.train("d4pg", env="Pendulum-v1", total_steps=40 * 25, driver="ray",
                      run_dir=tmp_path / "run", progress=False, tensorboard=False,
                      eval_episodes=0, num_actors=2, unroll_length=25, hidden_sizes=(16, 16),
                      batch_size=16, learning_starts=100, num_atoms=11)
    table = rows(run.run_dir)
    assert len(table) == 40 and int(table[-1]["env_steps"]) == 1000
    assert [float(r["replay_size"]) for r in table] == [25.0 * i for i in range(1, 41)]
    assert all(r["critic_loss"] == "nan" for r in table[:3])
    assert all(float(r["critic_loss"]) > 0 for r in table[3:])
    assert max(float(r["staleness"]) for r in table) >= 1  # asynchronous: messages from old θ
