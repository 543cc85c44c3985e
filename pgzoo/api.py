"""The Python front door::

    import pgzoo
    run = pgzoo.train("ppo", env="CartPole-v1", total_steps=100_000, seed=0)
    print(pgzoo.evaluate(run.policy(), "CartPole-v1", episodes=10))
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pgzoo import algos, envs
from pgzoo.errors import PgzooError
from pgzoo.run import checkpoint, rundir, trainer
from pgzoo.run.evaluation import Policy, evaluate
from pgzoo.run.experiment import Experiment, build

__all__ = ["Run", "evaluate", "load", "resume", "train"]


class Run:
    """A finished (or resumed) training run: its directory, final State and summary."""

    def __init__(self, exp: Experiment, run_dir: Path, state: Any, summary: dict[str, Any]):
        self.experiment, self.run_dir, self.state, self.summary = exp, run_dir, state, summary

    @property
    def config(self):
        return self.experiment.config

    @property
    def params(self):
        """Final parameters (with a leading seed axis on JAX-native environments)."""
        return self.experiment.params(self.state)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return rundir.read_metrics(self.run_dir)

    @property
    def eval(self) -> dict[str, Any] | None:
        return self.summary.get("eval")

    def policy(self, seed: int = 0) -> Policy:
        if not 0 <= seed < self.experiment.members:
            raise PgzooError(f"seed index must be in [0, {self.experiment.members - 1}]")
        return self.experiment.policy(self.state, seed)

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, eval={self.eval and self.eval['mean_return']})"


def _progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


# The drivers an algorithm's contract can name (``Algorithm.driver``).
DRIVERS = {"compiled": trainer.train}


def _driver(exp: Experiment):
    if exp.algorithm.driver not in DRIVERS:
        raise PgzooError(f"{exp.algo} runs on the {exp.algorithm.driver!r} driver, which this "
                         f"installation lacks; available: {', '.join(DRIVERS)}")
    return DRIVERS[exp.algorithm.driver]


def _run_dir(run_dir: Any) -> Path:
    if not isinstance(run_dir, str | Path) or not str(run_dir).strip():
        raise PgzooError(f"run_dir must be a non-empty path, got {run_dir!r}")
    return Path(run_dir)


def _eval_episodes(eval_episodes: Any) -> int:
    if not (isinstance(eval_episodes, int) and not isinstance(eval_episodes, bool)
            and 0 <= eval_episodes <= 100_000):
        raise PgzooError(f"eval_episodes must be an integer in [0, 100000] (0: no final "
                         f"evaluation), got {eval_episodes!r}")
    return eval_episodes


def _interval(seconds: Any) -> None:
    if not (isinstance(seconds, int | float) and not isinstance(seconds, bool)
            and 0 <= seconds < float("inf")):
        raise PgzooError(f"checkpoint_interval must be a number of seconds >= 0, got {seconds!r}")


def train(algo: str, env: str | None = None, total_steps: int | None = None,
          seed: int = 0, *, seeds: int = 1, run_dir: str | Path | None = None,
          root: str | Path = "runs", progress: bool | None = None, tensorboard: bool = True,
          eval_episodes: int = 10, checkpoint_interval: float = 30.0, **overrides: Any) -> Run:
    """Train ``algo`` on ``env`` (the algorithm's default environment when None); keyword
    overrides set fields of the algorithm's Config."""
    env = algos.get(algo).default_env if env is None else env
    eval_episodes = _eval_episodes(eval_episodes)
    _interval(checkpoint_interval)
    exp = build(algo, env, total_steps, seed, seeds, overrides)
    if run_dir is None:
        path = rundir.new_run_dir(_run_dir(root), algo, env)
    else:
        path = _run_dir(run_dir)
        if (path / rundir.CONFIG).exists():
            raise PgzooError(f"{path} already holds a run; continue it with resume() / --resume, "
                             "or choose a new directory")
        if path.exists() and not path.is_dir():
            raise PgzooError(f"--run-dir {path} is a file; give a directory")
    state, summary = _driver(exp)(exp, path, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes,
                                  checkpoint_interval=checkpoint_interval)
    return Run(exp, path, state, summary)


def _experiment_from(run_dir: Path, total_steps: int | None = None,
                     trust: bool = False) -> Experiment:
    """The Experiment a run directory describes. A run directory is data: its config.json may
    name any environment, and a ``package.module:ClassName`` environment means importing (running)
    that module, so that is done only for a module already imported or with ``trust=True``."""
    cfg = rundir.read_config(run_dir)
    try:
        module = envs.imports_code(cfg["env"])
    except PgzooError as err:
        raise PgzooError(f"{run_dir / rundir.CONFIG} is invalid: {err}") from None
    if module is not None and not trust:
        raise PgzooError(
            f"{run_dir / rundir.CONFIG} names the environment {cfg['env']!r}; loading it would "
            f"import and run the module {module!r}. If you trust this run directory, pass "
            "--trust (command line) or trust=True (pgzoo.load / pgzoo.resume), or import the "
            "module yourself first")
    try:
        return build(cfg["algo"], cfg["env"],
                     cfg["total_steps"] if total_steps is None else total_steps, cfg["seed"],
                     cfg["seeds"], cfg["config"])
    except PgzooError as err:
        if total_steps is not None and "total_steps" in str(err):
            raise
        raise PgzooError(f"{run_dir / rundir.CONFIG} is invalid: {err}") from None


def resume(run_dir: str | Path, total_steps: int | None = None, *, progress: bool | None = None,
           tensorboard: bool = True, eval_episodes: int = 10, trust: bool = False,
           checkpoint_interval: float = 30.0) -> Run:
    """Continue the run in ``run_dir`` from its last checkpoint (from the start when it was
    stopped before its first checkpoint), to ``total_steps`` if given."""
    path = _run_dir(run_dir)
    eval_episodes = _eval_episodes(eval_episodes)
    _interval(checkpoint_interval)
    exp = _experiment_from(path, total_steps, trust)
    ckpt = path / rundir.CHECKPOINTS
    if (ckpt / checkpoint.FILENAME).exists():
        done = checkpoint.read_meta(ckpt)["iteration"] * exp.agent.units_per_iteration
        if exp.total_steps < done:
            raise PgzooError(f"total steps {exp.total_steps} (--steps) is below the {done} steps "
                             f"per seed this run has done; give more, or omit it to train to its "
                             f"{rundir.read_config(path)['total_steps']}")
    state, summary = _driver(exp)(exp, path, resume=True, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes,
                                  checkpoint_interval=checkpoint_interval)
    return Run(exp, path, state, summary)


def load(run_dir: str | Path, seed: int = 0, *, trust: bool = False) -> Policy:
    """The policy of seed index ``seed`` from the last checkpoint of ``run_dir``. See
    ``_experiment_from`` (and the README) for what loading a run directory may import."""
    path = _run_dir(run_dir)
    exp = _experiment_from(path, trust=trust)
    if not (isinstance(seed, int) and 0 <= seed < exp.members):
        raise PgzooError(f"seed index must be in [0, {exp.members - 1}] for {path}")
    state, _ = checkpoint.load(path / rundir.CHECKPOINTS, exp.template())
    return exp.policy(state, seed)
