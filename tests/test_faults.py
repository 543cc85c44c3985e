"""Fault injection through real processes: hard kills at random points of start-up, chunks,
checkpoints and resumes; SIGTERM; a full file system; a raising and a NaN-producing environment;
divergent learning rates; other core counts. After each, the run directory is consistent and a
resume reaches the numbers of an uninterrupted run, bit for bit.
"""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgzoo.cli import main

TESTS = Path(__file__).resolve().parent
STEPS = "150000"
COMMON = ["--set", "num_envs=2", "--set", "num_steps=64", "--set", "num_minibatches=2",
          "--no-progress", "--no-tensorboard", "--eval-episodes", "3",
          "--checkpoint-interval", "0.3"]
TRAIN = ["train", "ppo", "--env", "CartPole-v1", "--steps", STEPS, "--seeds", "2", *COMMON]
RESUME_FLAGS = ["--no-progress", "--no-tensorboard", "--eval-episodes", "3",
                "--checkpoint-interval", "0.3"]


def start(*args, prelude=""):
    """``pgzoo ARGS`` in a new process; ``prelude`` runs first in it (no fork-time hooks: this
    process runs JAX threads)."""
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    code = f"import sys\n{prelude}\nfrom pgzoo.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def metrics(run_dir):
    """Complete rows without wall time (the one column allowed to differ)."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if None not in r.values() and None not in r]
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


def per_seed_eval(run_dir):
    return [s["returns"] for s in json.loads((run_dir / "eval.json").read_text())["per_seed"]]


def checkpoint_iteration(run_dir):
    import numpy as np

    path = run_dir / "checkpoints" / "state.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["__meta__"]))["iteration"]


def assert_consistent(run_dir):
    """metrics.csv holds every iteration up to the checkpoint exactly once per seed, in order."""
    k = checkpoint_iteration(run_dir)
    if k is None or not (run_dir / "metrics.csv").exists():
        return
    rows = metrics(run_dir)
    for seed in ("0", "1"):
        its = [int(r["iteration"]) for r in rows if r["seed"] == seed]
        assert its[:k] == list(range(1, k + 1)), (seed, k, its[:5], len(its))
        assert its == sorted(set(its))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one must equal."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    code, _, err = finish(start(*TRAIN, "--run-dir", str(run_dir)))
    assert code == 0, err
    return metrics(run_dir), per_seed_eval(run_dir)


def wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.05)


@pytest.mark.parametrize("strategy", ["random", "after_metrics_write"])
def test_hard_kills_then_resume_equal_an_uninterrupted_run(tmp_path, reference, strategy):
    rng = random.Random(7 if strategy == "random" else 8)
    run_dir = tmp_path / "run"
    kills = 0
    while True:
        started = (run_dir / "config.json").exists()
        args = (["train", "--resume", str(run_dir), *RESUME_FLAGS] if started
                else [*TRAIN, "--run-dir", str(run_dir)])
        proc = start(*args)
        if kills >= 3:
            break
        if strategy == "random":
            # start-up (before the run directory exists), compilation, chunks, checkpoints
            time.sleep(rng.uniform(0.2, 6.0))
        else:
            metrics_file = run_dir / "metrics.csv"
            before = metrics_file.stat().st_mtime_ns if metrics_file.exists() else None
            wait_for(lambda: metrics_file.exists() and metrics_file.stat().st_mtime_ns != before)
            time.sleep(0.5)
        if proc.poll() is not None:  # it finished before the kill: start again
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        assert_consistent(run_dir)
        if (run_dir / "config.json").exists():
            cfg = json.loads((run_dir / "config.json").read_text())
            assert cfg["status"] == "running" and cfg["pid"] == proc.pid  # killed outright
    code, _, err = finish(proc)
    assert code == 0, err
    assert json.loads((run_dir / "config.json").read_text())["status"] == "finished"
    ref_rows, ref_eval = reference
    assert metrics(run_dir) == ref_rows
    assert per_seed_eval(run_dir) == ref_eval
    assert not list(run_dir.rglob(".*.tmp"))


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    proc = start(*TRAIN, "--run-dir", str(tmp_path / "run"))
    time.sleep(1.5)  # inside start-up: importing JAX, building the experiment, compiling
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().startswith("interrupted") and len(err.strip().splitlines()) == 1, err


ONE_CORE = "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})"
TWO_CORES = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two cores to compare with one")


@TWO_CORES
def test_sigterm_on_one_core_then_resume_on_two_equals_the_reference(tmp_path, reference):
    """The iterations run on one core before SIGTERM and those run on two after the resume give
    the numbers of the uninterrupted two-core run, bit for bit."""
    run_dir = tmp_path / "run"
    proc = start(*TRAIN, "--run-dir", str(run_dir), prelude=ONE_CORE)
    wait_for(lambda: checkpoint_iteration(run_dir) is not None)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert json.loads((run_dir / "config.json").read_text())["status"] == "interrupted"
    assert_consistent(run_dir)
    done = checkpoint_iteration(run_dir)
    assert 0 < done and metrics(run_dir)[:2 * done] == reference[0][:2 * done]
    code, _, err = finish(start("train", "--resume", str(run_dir), *RESUME_FLAGS))
    assert code == 0, err
    assert metrics(run_dir) == reference[0] and per_seed_eval(run_dir) == reference[1]


@TWO_CORES
def test_a_seed_of_seeds_k_equals_the_seed_alone_on_one_core(tmp_path, reference):
    alone = tmp_path / "alone"
    single = [a for a in TRAIN if a not in ("--seeds", "2")] + ["--seed", "1"]
    code, _, err = finish(start(*single, "--run-dir", str(alone), prelude=ONE_CORE))
    assert code == 0, err
    seed1 = [dict(r, seed="0") for r in reference[0] if r["seed"] == "1"]
    assert metrics(alone) == seed1 and per_seed_eval(alone) == reference[1][1:]


def test_full_file_system_fails_cleanly_and_resumes(tmp_path, reference):
    """A file-size limit makes writes past 40 kB fail as a full disk does (EFBIG)."""
    limited = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               "resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))")
    run_dir = tmp_path / "run"
    code, _, err = finish(start(*TRAIN, "--run-dir", str(run_dir), prelude=limited))
    assert code == 1 and err.strip().startswith("error: could not write"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "failed" and "could not write" in cfg["error"]
    assert not list(run_dir.rglob(".*.tmp"))
    assert_consistent(run_dir)
    code, _, err = finish(start("train", "--resume", str(run_dir), *RESUME_FLAGS))
    assert code == 0, err
    assert metrics(run_dir) == reference[0] and per_seed_eval(run_dir) == reference[1]


BROKEN_ENVS = """
import gymnasium, numpy as np


class Broken(gymnasium.Env):
    '''Runs normally for FAIL_AT steps in all, then fails in step().'''
    FAIL_AT = 3000
    steps = 0

    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        type(self).steps += 1
        self.t += 1
        if type(self).steps > self.FAIL_AT:
            return self.fail()
        return np.zeros(2, np.float32), 1.0, False, self.t >= 20, {}


class Raising(Broken):
    def fail(self):
        raise RuntimeError("simulator crashed")


class NaNReward(Broken):
    def fail(self):
        return np.zeros(2, np.float32), float("nan"), False, False, {}
"""


@pytest.mark.parametrize("cls, fragment", [("Raising", "RuntimeError: simulator crashed"),
                                           ("NaNReward", "non-finite reward")])
def test_a_failing_environment_fails_the_run_and_keeps_its_checkpoint(tmp_path, cls, fragment):
    (tmp_path / "broken_envs.py").write_text(BROKEN_ENVS)
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{TESTS}")
    proc = subprocess.run([sys.executable, "-m", "pgzoo.cli", "train", "ppo", "--env",
                           f"broken_envs:{cls}", "--steps", "20000", "--run-dir", str(run_dir),
                           *COMMON], env=env, capture_output=True, text=True, timeout=600)
    err = proc.stderr.strip()
    assert proc.returncode == 1 and err.startswith("error: ") and fragment in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "failed" and fragment in cfg["error"]
    assert checkpoint_iteration(run_dir) is not None
    assert_one_seed_consistent(run_dir)
    assert not (run_dir / "eval.json").exists()


def assert_one_seed_consistent(run_dir):
    k = checkpoint_iteration(run_dir)
    its = [int(r["iteration"]) for r in metrics(run_dir)]
    assert its[:k] == list(range(1, k + 1))


@pytest.mark.parametrize("algo, args", [
    # Adam and RMSprop bound their steps: PPO and A2C stay finite at 1e6 (and learn nothing)
    ("ppo", ["--set", "learning_rate=1e30", "--steps", "20000"]),
    ("a2c", ["--set", "learning_rate=1e30", "--steps", "20000"]),
    ("sac", ["--env", "Pendulum-v1", "--set", "learning_rate=1e6", "--steps", "600",
             "--set", "learning_starts=100", "--set", "batch_size=32"]),
])
def test_divergence_stops_the_run_as_failed(tmp_path, capsys, algo, args):
    run_dir = tmp_path / "run"
    code = main(["train", algo, *args, "--run-dir", str(run_dir), "--no-progress",
                 "--no-tensorboard"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: training diverged: ") and "\n" not in err, err
    assert " at iteration " in err and " is " in err and "(seed 0)" in err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "failed" and "diverged" in cfg["error"]
    assert not (run_dir / "eval.json").exists()
    # the checkpoint kept is finite, and it loads
    import numpy as np

    with np.load(run_dir / "checkpoints" / "state.npz", allow_pickle=False) as data:
        for name in data.files:
            if data[name].dtype.kind == "f":
                assert np.isfinite(data[name]).all(), name


def test_a_failing_metrics_write_fails_the_run_with_exit_code_1(tmp_path, capsys, monkeypatch):
    """A full disk met while appending metrics (the most frequent write) is a failed run, exit 1,
    also when closing the log fails again."""
    import errno

    from pgzoo.run import rundir

    calls = []
    write = rundir.MetricsLog.write

    class Full:  # the file whose buffered rows can no longer be flushed
        def _fail(self, *args):
            raise OSError(errno.ENOSPC, "No space left on device")

        write = flush = close = _fail

    def failing(self, rows):
        calls.append(1)
        if len(calls) > 2:
            self._file.close()
            self._file = Full()
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        write(self, rows)

    monkeypatch.setattr(rundir.MetricsLog, "write", failing)
    run_dir = tmp_path / "run"
    code = main(["train", "ppo", "--steps", "20000", "--run-dir", str(run_dir), *COMMON])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: could not write") and "\n" not in err, err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "failed" and "No space left" in cfg["error"]


def test_a_full_disk_still_records_the_failure_in_config_json(tmp_path, capsys, monkeypatch):
    """With no block free for a temporary (ENOSPC), config.json is rewritten in place."""
    import errno

    from pgzoo.run import checkpoint, rundir

    real = rundir.atomic_write

    def no_new_blocks(path, write, binary=False):
        if path.name == "config.json" and path.exists() or path.name == checkpoint.FILENAME:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, write, binary)

    monkeypatch.setattr(rundir, "atomic_write", no_new_blocks)
    run_dir = tmp_path / "run"
    code = main(["train", "ppo", "--steps", "20000", "--run-dir", str(run_dir),
                 "--checkpoint-interval", "0", *COMMON[:-2]])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "No space left on device" in err and "\n" not in err, err
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["status"] == "failed" and "No space left" in cfg["error"]
    assert not list(run_dir.rglob(".*.tmp"))
