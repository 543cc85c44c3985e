"""The Python front door::

    import pgzoo
    run = pgzoo.train("ppo", env="CartPole-v1", total_steps=100_000, seed=0)
    print(pgzoo.evaluate(run.policy(), "CartPole-v1", episodes=10))
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pgzoo import algos
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


def train(algo: str, env: str | None = None, total_steps: int | None = None,
          seed: int = 0, *, seeds: int = 1, run_dir: str | Path | None = None,
          root: str | Path = "runs", progress: bool | None = None, tensorboard: bool = True,
          eval_episodes: int = 10, **overrides: Any) -> Run:
    """Train ``algo`` on ``env`` (the algorithm's default environment when None); keyword
    overrides set fields of the algorithm's Config."""
    env = algos.get(algo).default_env if env is None else env
    exp = build(algo, env, total_steps, seed, seeds, overrides)
    if run_dir is None:
        path = rundir.new_run_dir(Path(root), algo, env)
    else:
        path = Path(run_dir)
        if (path / rundir.CONFIG).exists():
            raise PgzooError(f"{path} already holds a run; continue it with resume() / --resume, "
                             "or choose a new directory")
        path.mkdir(parents=True, exist_ok=True)
    state, summary = _driver(exp)(exp, path, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes)
    return Run(exp, path, state, summary)


def _experiment_from(run_dir: Path, total_steps: int | None = None) -> Experiment:
    cfg = rundir.read_config(run_dir)
    try:
        return build(cfg["algo"], cfg["env"], total_steps or cfg["total_steps"], cfg["seed"],
                     cfg["seeds"], cfg["config"])
    except PgzooError as err:
        raise PgzooError(f"{run_dir / rundir.CONFIG} is invalid: {err}") from None


def resume(run_dir: str | Path, total_steps: int | None = None, *, progress: bool | None = None,
           tensorboard: bool = True, eval_episodes: int = 10, **_: Any) -> Run:
    """Continue the run in ``run_dir`` from its last checkpoint, to ``total_steps`` if given."""
    path = Path(run_dir)
    exp = _experiment_from(path, total_steps)
    checkpoint.read_meta(path / rundir.CHECKPOINTS)
    state, summary = _driver(exp)(exp, path, resume=True, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes)
    return Run(exp, path, state, summary)


def load(run_dir: str | Path, seed: int = 0) -> Policy:
    """The policy of seed index ``seed`` from the last checkpoint of ``run_dir``."""
    path = Path(run_dir)
    exp = _experiment_from(path)
    if not 0 <= seed < exp.members:
        raise PgzooError(f"seed index must be in [0, {exp.members - 1}] for {path}")
    state, _ = checkpoint.load(path / rundir.CHECKPOINTS, exp.template())
    return exp.policy(state, seed)
