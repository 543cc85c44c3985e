"""Test-session settings.

XLA compiles at its lowest backend optimisation level (below).

One persistent XLA compilation cache for the session: every xdist worker and every process the
fault-injection tests start reads and writes it, so a configuration that many tests train (tiny
PPO on CartPole, above all) compiles once. A cached executable is the same compiled code, so
results are unchanged; the directory is new for each session.
"""
import os
import tempfile

import pytest

# The suite is dominated by compiling small programs that then run for a moment: XLA's lowest
# backend optimisation level compiles them about a quarter faster (the learning tests run a
# little slower). Results stay IEEE arithmetic; a test compares runs made under the same flags.
# The library itself is not affected: this is the test session's environment only.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"pgzoo-test-xla-cache-{_run_id}")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]
else:
    _OWN_CACHE = None


def pytest_sessionfinish(session, exitstatus):
    """The process that chose the cache directory removes it (xdist workers leave it)."""
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        import shutil

        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One small PPO run (CartPole, 1024 steps) that command-line tests read or copy."""
    from pgzoo.cli import main

    run_dir = tmp_path_factory.mktemp("runs") / "ppo"
    assert main(["train", "ppo", "--env", "CartPole-v1", "--steps", "1024", "--run-dir",
                 str(run_dir), "--eval-episodes", "2", "--set", "num_envs=2", "--set",
                 "num_steps=64", "--set", "num_minibatches=2", "--no-progress",
                 "--no-tensorboard"]) == 0
    return run_dir
