"""The Python front door::

    import pgzoo
    run = pgzoo.train("ppo", env="CartPole-v1", total_steps=100_000, seed=0)
    print(pgzoo.evaluate(run.policy(), "CartPole-v1", episodes=10))
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import algos, envs
from pgzoo.algos import presets
from pgzoo.errors import Interrupted, PgzooError
from pgzoo.run import cache, checkpoint, rundir, trainer
from pgzoo.run.evaluation import Policy, evaluate
from pgzoo.run.experiment import Experiment, build

cache.enable()

__all__ = ["Run", "describe", "evaluate", "load", "resume", "resume_sweep", "sweep", "train", "tune"]


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


def _progress(progress: bool | None) -> str | None:
    """The progress mode: None chooses a live bar on a terminal and plain lines in a pipe or log;
    True the bar, False none."""
    if progress is None:
        return "bar" if sys.stderr.isatty() else "lines"
    return "bar" if progress else None


def _ray_train(exp: Experiment, run_dir: Path, **kwargs):
    from pgzoo.distributed import driver  # Ray itself is imported only there, when used

    return driver.train(exp, run_dir, **kwargs)


# The drivers an algorithm's contract can name (``Algorithm.driver``). Every algorithm runs on
# the compiled loop (an actor-learner one with its actors as slices of one batch); those with an
# actor-learner form also on Ray.
DRIVERS = {"compiled": trainer.train, "ray": _ray_train}


def _driver(exp: Experiment, name: str | None = None, ray_address: str | None = None):
    """The training function of driver ``name`` (the algorithm's own when None)."""
    name = exp.algorithm.driver if name is None else name
    if name not in DRIVERS:
        raise PgzooError(f"unknown driver {name!r}; valid: {', '.join(DRIVERS)}")
    if name == "ray" and exp.agent.actor_learner is None:
        if exp.algorithm.ray_hint:
            raise PgzooError(f"{exp.algo} runs on Ray in its actor-learner form: "
                             f"{exp.algorithm.ray_hint}")
        raise PgzooError(f"{exp.algo} has no actor-learner form to run on Ray; valid drivers for "
                         f"it: compiled")
    if ray_address is not None and name != "ray":
        raise PgzooError("--ray-address needs the ray driver (an actor-learner algorithm such as "
                         "impala or a3c)")
    train_fn = DRIVERS[name]
    if name != "ray":
        return train_fn
    return lambda *args, **kwargs: train_fn(*args, ray_address=ray_address, **kwargs)


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


def _wandb(setting: Any) -> None:
    if not (isinstance(setting, bool) or isinstance(setting, str) and setting.strip()):
        raise PgzooError(f"wandb must be True, False or a Weights & Biases project name, got "
                         f"{setting!r}")
    if setting:
        rundir.import_wandb()  # a missing package is an error before the run starts


def _schedule(eval_every: Any, episodes: Any, stop_at_return: Any) -> trainer.EvalSchedule | None:
    if not (isinstance(eval_every, int) and not isinstance(eval_every, bool)
            and 0 <= eval_every <= 2**31 - 1):
        raise PgzooError(f"eval_every must be a number of steps >= 0 (0: no evaluation during "
                         f"training), got {eval_every!r}")
    if not (isinstance(episodes, int) and not isinstance(episodes, bool)
            and 1 <= episodes <= 10_000):
        raise PgzooError(f"eval_every_episodes must be an integer in [1, 10000], got "
                         f"{episodes!r}")
    if stop_at_return is not None:
        if not (isinstance(stop_at_return, int | float) and not isinstance(stop_at_return, bool)
                and math.isfinite(stop_at_return)):
            raise PgzooError(f"stop_at_return must be a finite number, got {stop_at_return!r}")
        if not eval_every:
            raise PgzooError("stop_at_return needs evaluation during training: give eval_every "
                             "(--eval-every STEPS) too")
    if not eval_every:
        return None
    return trainer.EvalSchedule(eval_every, episodes,
                                None if stop_at_return is None else float(stop_at_return))


def _callback(callback: Any):
    if callback is not None and not callable(callback):
        raise PgzooError(f"callback must be a function of one argument (a dict), got "
                         f"{type(callback).__name__}")
    return callback


def announce_preset(exp: Experiment, preset: bool, given: dict[str, Any],
                    steps_given: bool) -> str:
    """The line that says which preset a run uses, or that none applies."""
    found = presets.find(exp.algo, exp.env_spec)
    unit = exp.algorithm.budget_unit.replace("_", " ")
    budget = f"{exp.total_steps:,} {unit}" + (" (given)" if steps_given else "")
    if found is None:
        listed = ", ".join(presets.for_algorithm(exp.algo)) or "none"
        return (f"{exp.algo} on {exp.env_spec}: module defaults, {budget}"
                + ("" if not preset else f" (no preset for this environment; presets: {listed})"))
    task, p = found
    if not preset:
        return f"{exp.algo} on {task}: module defaults, {budget} (--no-preset)"
    shown = " ".join(f"{k}={v}" for k, v in p.settings.items() if k not in given)
    if not p.settings:
        return (f"preset {exp.algo}/{task} ({p.source}): the module defaults and {budget}; "
                "--set and --steps override it")
    return (f"preset {exp.algo}/{task} ({p.source}): {shown or 'all overridden'}, {budget}; "
            "--set and --steps override it, --no-preset gives the module defaults")


def describe(algo: str, env: str | None = None, overrides: dict[str, Any] | None = None,
             preset: bool = True) -> str:
    """Every Config field of ``algo`` with its value and where the value comes from (module
    default, the preset of (algo, env), or an override), and the budget: ``pgzoo show``."""
    from pgzoo.core import config as cfg

    algorithm = algos.get(algo)
    env = algorithm.default_env if env is None else env
    envs.check_known(env)
    overrides = dict(overrides or {})
    found = presets.find(algo, env) if presets.check_choice(preset) else None
    settings = found[1].settings if found else {}
    config = cfg.to_dict(cfg.build(algorithm.config, {**settings, **overrides}, algo))
    default = cfg.to_dict(algorithm.config())
    unit = algorithm.budget_unit.replace("_", " ")
    if found:
        head = f"{algo} on {env}: preset {algo}/{found[0]} ({found[1].source})"
        bar = found[1].bar
        if bar is not None:
            head += f"; benchmark bar: mean return >= {bar:g} (docs/benchmarks.md)"
        budget = f"{found[1].steps:,} {unit} (preset; module default {algorithm.default_budget:,})"
    else:
        why = "--no-preset" if not preset else (
            "no preset for this environment; presets: "
            + (", ".join(presets.for_algorithm(algo)) or "none"))
        head = f"{algo} on {env}: module defaults ({why})"
        budget = f"{algorithm.default_budget:,} {unit} (module default)"
    width = max(len(k) for k in config)
    lines = [head, f"  {'budget':<{width}}  {budget}"]
    for key, value in config.items():
        if key in overrides:
            source = f"--set (module default {default[key]!r}"
            source += f", preset {settings[key]!r})" if key in settings else ")"
        elif key in settings:
            source = f"preset (module default {default[key]!r})"
        else:
            source = "module default"
        lines.append(f"  {key:<{width}}  {value!r:<14} {source}")
    return "\n".join(lines)


def _source_state(exp: Experiment, init_from: Any, trust: bool):
    """A fresh State of ``exp`` holding the policy parameters of the run in ``init_from``
    (fine-tuning): member m takes the source's member m when both have as many members, else
    every member takes the source's member 0."""
    src_dir = _run_dir(init_from)
    src = _experiment_from(src_dir, trust=trust)
    if src.algo != exp.algo:
        raise PgzooError(f"init_from {src_dir} is a run of {src.algo}; fine-tuning {exp.algo} "
                         f"needs a run of {exp.algo}")
    src_state, _ = checkpoint.load(src_dir / rundir.CHECKPOINTS, src.template())
    members = range(exp.members) if exp.vmapped else range(1)
    picks = [m if src.members == exp.members else 0 for m in members]
    params = [src.agent.params(src.member_state(src_state, m)) for m in picks]
    state = exp.init_state()
    own = exp.params(state)
    own_one = jax.tree.map(lambda x: x[0], own) if exp.vmapped else own
    same = (jax.tree.structure(own_one) == jax.tree.structure(params[0]) and all(
        a.shape == b.shape for a, b in zip(jax.tree.leaves(own_one), jax.tree.leaves(params[0]))))
    if not same:
        raise PgzooError(f"cannot initialise from {src_dir}: its networks have other shapes "
                         "(another hidden_sizes, policy_dist or environment); fine-tune with the "
                         "same network settings")
    new = (jax.tree.map(lambda *xs: jnp.stack(xs), *params) if exp.vmapped else params[0])
    return exp.with_params(state, new)


def train(algo: str, env: str | None = None, total_steps: int | None = None,
          seed: int = 0, *, seeds: int = 1, run_dir: str | Path | None = None,
          root: str | Path = "runs", progress: bool | None = None, tensorboard: bool = True,
          eval_episodes: int = 10, checkpoint_interval: float = 30.0, preset: bool = True,
          eval_every: int = 0, eval_every_episodes: int = 10,
          stop_at_return: float | None = None, callback: Callable[[dict], Any] | None = None,
          init_from: str | Path | None = None, trust: bool = False, wandb: bool | str = False,
          driver: str | None = None, ray_address: str | None = None, **overrides: Any) -> Run:
    """Train ``algo`` on ``env`` (the algorithm's default environment when None).

    The tuned preset of (algo, env) gives the budget and settings unless ``preset=False``;
    keyword ``overrides`` set fields of the algorithm's Config over it. ``eval_every`` steps (per
    seed) evaluates ``eval_every_episodes`` deterministic episodes during training, keeps the
    best state in checkpoints/best and stops at ``stop_at_return``; ``callback(info)`` runs after
    each compiled chunk and stops the run by returning False (``pgzoo.run.trainer.train``);
    ``init_from`` starts from another run's policy parameters (fine-tuning); ``wandb`` (True, or
    a project name) also logs to Weights & Biases (``pip install "pgzoo[wandb]"``). ``driver``
    ("compiled" or "ray") overrides the algorithm's own (``pgzoo.distributed`` runs A3C's and
    IMPALA's actors as Ray processes; ``ray_address`` joins a running Ray cluster)."""
    env = algos.get(algo).default_env if env is None else env
    eval_episodes = _eval_episodes(eval_episodes)
    _interval(checkpoint_interval)
    _wandb(wandb)
    schedule = _schedule(eval_every, eval_every_episodes, stop_at_return)
    exp = build(algo, env, total_steps, seed, seeds, overrides, preset=preset)
    start = _source_state(exp, init_from, trust) if init_from is not None else None
    if run_dir is None:
        path = rundir.new_run_dir(_run_dir(root), algo, env)
    else:
        path = _run_dir(run_dir)
        if (path / rundir.CONFIG).exists():
            raise PgzooError(f"{path} already holds a run; continue it with resume() / --resume, "
                             "or choose a new directory")
        if path.exists() and not path.is_dir():
            raise PgzooError(f"--run-dir {path} is a file; give a directory")
    if progress is not False:
        print(announce_preset(exp, preset, overrides, total_steps is not None), file=sys.stderr)
    run_with = _driver(exp, driver, ray_address)
    record = {"eval_schedule": _record(schedule), "driver": driver or exp.algorithm.driver}
    if init_from is not None:
        record["init_from"] = str(init_from)
    state, summary = run_with(exp, path, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes, wandb=wandb,
                                  checkpoint_interval=checkpoint_interval, evaluation=schedule,
                                  callback=_callback(callback), start_state=start, **record)
    return Run(exp, path, state, summary)


def _record(schedule: trainer.EvalSchedule | None) -> dict[str, Any] | None:
    return None if schedule is None else {"every": schedule.every, "episodes": schedule.episodes,
                                          "stop_at": schedule.stop_at}


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
        grid = cfg.get("grid")
        if grid is not None and not (isinstance(grid, list)
                                     and all(isinstance(p, dict) for p in grid)):
            raise PgzooError("grid must be a list of {field: value} points")
        exp = build(cfg["algo"], cfg["env"],
                    cfg["total_steps"] if total_steps is None else total_steps, cfg["seed"],
                    cfg["seeds"], cfg["config"], grid=grid)
    except PgzooError as err:
        if total_steps is not None and "total_steps" in str(err):
            raise
        raise PgzooError(f"{run_dir / rundir.CONFIG} is invalid: {err}") from None
    exp.preset = cfg.get("preset") if isinstance(cfg.get("preset"), str) else None
    return exp


def _saved_schedule(run_dir: Path) -> trainer.EvalSchedule | None:
    """The evaluation schedule config.json records (None when it records none)."""
    saved = rundir.read_config(run_dir).get("eval_schedule")
    if not isinstance(saved, dict):
        return None
    try:
        return _schedule(saved.get("every"), saved.get("episodes"), saved.get("stop_at"))
    except PgzooError as err:
        raise PgzooError(f"{run_dir / rundir.CONFIG} is invalid: {err}") from None


def resume(run_dir: str | Path, total_steps: int | None = None, *, progress: bool | None = None,
           tensorboard: bool = True, eval_episodes: int = 10, trust: bool = False,
           checkpoint_interval: float = 30.0, callback: Callable[[dict], Any] | None = None,
           wandb: bool | str = False, ray_address: str | None = None) -> Run:
    """Continue the run in ``run_dir`` from its last checkpoint (from the start when it was
    stopped before its first checkpoint), to ``total_steps`` if given, with the evaluation
    schedule it was started with; with ``wandb``, in the same Weights & Biases run as before."""
    path = _run_dir(run_dir)
    eval_episodes = _eval_episodes(eval_episodes)
    _interval(checkpoint_interval)
    _wandb(wandb)
    exp = _experiment_from(path, total_steps, trust)
    ckpt = path / rundir.CHECKPOINTS
    if (ckpt / checkpoint.FILENAME).exists():
        meta = checkpoint.read_meta(ckpt)
        done = meta.get("env_steps", meta["iteration"] * exp.agent.units_per_iteration)
        if exp.total_steps < done:
            raise PgzooError(f"total steps {exp.total_steps} (--steps) is below the {done} steps "
                             f"per seed this run has done; give more, or omit it to train to its "
                             f"{rundir.read_config(path)['total_steps']}")
    schedule = _saved_schedule(path)
    cfg = rundir.read_config(path)
    driver = cfg.get("driver", exp.algorithm.driver)
    run_with = _driver(exp, driver if isinstance(driver, str) else None, ray_address)
    record = {"eval_schedule": _record(schedule), "driver": driver}
    start = None
    if isinstance(cfg.get("init_from"), str):
        record["init_from"] = cfg["init_from"]
        if not (ckpt / checkpoint.FILENAME).exists():  # stopped before its first checkpoint
            start = _source_state(exp, cfg["init_from"], trust)
    state, summary = run_with(exp, path, resume=True, progress=_progress(progress),
                                  tensorboard=tensorboard, eval_episodes=eval_episodes, wandb=wandb,
                                  checkpoint_interval=checkpoint_interval, evaluation=schedule,
                                  callback=_callback(callback), start_state=start, **record)
    return Run(exp, path, state, summary)


def load(run_dir: str | Path, seed: int = 0, *, trust: bool = False, best: bool = False
         ) -> Policy:
    """The policy of seed index ``seed`` from the last checkpoint of ``run_dir`` (with ``best``,
    from checkpoints/best: the best evaluation during training). See ``_experiment_from`` (and
    the README) for what loading a run directory may import."""
    path = _run_dir(run_dir)
    exp = _experiment_from(path, trust=trust)
    if not (isinstance(seed, int) and 0 <= seed < exp.members):
        raise PgzooError(f"seed index must be in [0, {exp.members - 1}] for {path}")
    directory = path / rundir.CHECKPOINTS / (rundir.BEST if best else "")
    if best and not (directory / checkpoint.FILENAME).exists():
        raise PgzooError(f"{path} has no best checkpoint: it is written by evaluation during "
                         "training (--eval-every STEPS)")
    state, _ = checkpoint.load(directory, exp.template())
    return exp.policy(state, seed)


SWEEP_FILE = "sweep.json"


def sweep(algo: str, env: str | None = None, grid: Any = None, total_steps: int | None = None,
          seed: int = 0, *, seeds: int | None = None, out: str | Path | None = None,
          root: str | Path = "runs", progress: bool | None = None, eval_episodes: int = 10,
          preset: bool = True, tensorboard: bool = False, **overrides: Any) -> dict[str, Any]:
    """Train every point of ``grid`` ({field: [values]}, or ``--grid`` strings KEY=V1,V2) x
    ``seeds`` and report each point's final return (``pgzoo.run.sweep``). Returns the report
    (its ``table``, and ``points`` with per-seed values and intervals); the sweep directory
    holds one run directory per point and report.md / report.json / report.png. ``seeds``
    defaults to 3 on a JAX-native environment and 1 on the Gymnasium bridge."""
    from pgzoo.run import sweep as sw

    env = algos.get(algo).default_env if env is None else env
    if seeds is None:
        seeds = 3 if envs.resolve(env)[0] in ("gymnax", "brax", "pgzoo") else 1
    if isinstance(grid, Mapping):
        grid = {str(k): [str(v) for v in (vs if isinstance(vs, list | tuple) else [vs])]
                for k, vs in grid.items()}
        for key, values in grid.items():
            if not values or len(set(values)) != len(values):
                raise PgzooError(f"grid {key}: give distinct values, got {values}")
    elif isinstance(grid, list | tuple) and all(isinstance(g, str) for g in grid):
        grid = sw.parse_grid(grid)
    else:
        raise PgzooError("grid must be {field: [values]} or a list of 'KEY=V1,V2' strings")
    both = sorted(set(grid) & set(overrides))
    if both:
        raise PgzooError(f"{both[0]} is both swept (--grid) and set (--set); give it once")
    pts = sw.points(grid)
    eval_episodes = _eval_episodes(eval_episodes)
    # each point's Experiment validates its values (and the budget) before anything trains
    exps = [build(algo, env, total_steps, seed, seeds, {**overrides, **p}, preset=preset)
            for p in pts]
    path = (rundir.new_run_dir(_run_dir(root), f"sweep-{algo}", env) if out is None
            else _run_dir(out))
    if (path / SWEEP_FILE).exists():
        raise PgzooError(f"{path} already holds a sweep; continue it with "
                         f"`pgzoo sweep --resume {path}`, or choose a new directory")
    compiled = (exps[0].vmapped
                and set(grid) <= set(exps[0].algorithm.hyperparameters))
    rundir.safe_dir(path)
    rundir.write_json(path / SWEEP_FILE, {
        "algo": algo, "env": env, "grid": grid, "total_steps": exps[0].total_steps,
        "seed": seed, "seeds": seeds, "overrides": {k: str(v) for k, v in overrides.items()},
        "preset": preset, "compiled": compiled, "eval_episodes": eval_episodes})
    if progress is not False:
        print(announce_preset(exps[0], preset, {**overrides, **grid}, total_steps is not None)
              + f"\nsweep: {len(pts)} points x {seeds} seeds "
              + ("in one compiled experiment" if compiled else "as one run per point"),
              file=sys.stderr)
    return _sweep_run(path, progress, tensorboard, resume=False)


def resume_sweep(sweep_dir: str | Path, *, progress: bool | None = None,
                 tensorboard: bool = False) -> dict[str, Any]:
    """Finish an interrupted sweep: resume its unfinished runs, then split and report."""
    path = _run_dir(sweep_dir)
    if not (path / SWEEP_FILE).is_file():
        raise PgzooError(f"{path} holds no sweep ({SWEEP_FILE} is missing); give a directory "
                         "written by `pgzoo sweep`")
    return _sweep_run(path, progress, tensorboard, resume=True)


def _sweep_run(path: Path, progress: bool | None, tensorboard: bool,
               resume: bool) -> dict[str, Any]:
    try:
        return _sweep_steps(path, progress, tensorboard, resume)
    except Interrupted:
        raise Interrupted(path, f"pgzoo sweep --resume {path}") from None


def _sweep_steps(path: Path, progress: bool | None, tensorboard: bool,
                 resume: bool) -> dict[str, Any]:
    from pgzoo.run import sweep as sw

    try:
        spec = rundir.read_json(path / SWEEP_FILE)
        algo, env, grid = spec["algo"], spec["env"], spec["grid"]
        steps, seed, seeds = spec["total_steps"], spec["seed"], spec["seeds"]
        overrides, preset, compiled = spec["overrides"], spec["preset"], spec["compiled"]
        episodes = spec["eval_episodes"]
        pts = sw.points(grid)
    except (KeyError, TypeError, AttributeError) as err:
        raise PgzooError(f"{path / SWEEP_FILE} is invalid: {err}") from None

    def status(run_dir: Path) -> str | None:
        return (rundir.read_config(run_dir).get("status")
                if (run_dir / rundir.CONFIG).is_file() else None)

    dirs = [(p, path / sw.point_name(p)) for p in pts]
    kwargs = {"progress": _progress(progress), "tensorboard": tensorboard,
              "eval_episodes": episodes}
    if compiled:
        all_dir = path / sw.ALL
        exp = build(algo, env, steps, seed, seeds, overrides, grid=pts, preset=preset)
        if status(all_dir) == "finished":
            state, _ = checkpoint.load(all_dir / rundir.CHECKPOINTS, exp.template())
            summary = {"eval": rundir.read_json(all_dir / rundir.EVAL)
                       if (all_dir / rundir.EVAL).is_file() else None}
        else:
            state, summary = _driver(exp, "compiled")(exp, all_dir, resume=resume, **kwargs)
        _split(exp, state, summary.get("eval"), all_dir, dirs, overrides, preset)
    else:
        for p, run_dir in dirs:
            if status(run_dir) == "finished":
                continue
            if status(run_dir) is not None:
                resume_run = resume
                exp = _experiment_from(run_dir)
            else:
                resume_run = False
                exp = build(algo, env, steps, seed, seeds, {**overrides, **p}, preset=preset)
            _driver(exp, "compiled")(exp, run_dir, resume=resume_run, **kwargs)
    title = f"{algo} on {env}: {len(pts)} points x {seeds} seeds, {steps:,} steps"
    result = sw.report(path, dirs, title)
    result["sweep_dir"] = str(path)
    return result


def _split(exp: Experiment, state: Any, evaluation: dict[str, Any] | None, all_dir: Path,
           dirs: list[tuple[dict[str, str], Path]], overrides: dict[str, Any],
           preset: bool) -> None:
    """One ordinary run directory per grid point, cut from the combined run."""
    from pgzoo.run import sweep as sw

    k = exp.num_seeds
    meta = checkpoint.read_meta(all_dir / rundir.CHECKPOINTS)
    for index, (point, run_dir) in enumerate(dirs):
        point_exp = build(exp.algo, exp.env_spec, exp.total_steps, exp.seed, k,
                          {**overrides, **point}, preset=preset)
        rundir.safe_dir(run_dir)
        checkpoint.save(run_dir / rundir.CHECKPOINTS, exp.point_state(state, index),
                        {**meta, "wall_time": meta.get("wall_time", 0.0)})
        sw.split_rows(all_dir, run_dir, range(index * k, (index + 1) * k))
        if evaluation is not None:
            per_seed = evaluation["per_seed"][index * k:(index + 1) * k]
            rundir.write_json(run_dir / rundir.EVAL, {
                "episodes_per_seed": evaluation["episodes_per_seed"],
                "mean_return": float(np.mean([s["mean_return"] for s in per_seed])),
                "per_seed": per_seed})
        trainer.write_config(point_exp, run_dir, {"sweep": str(all_dir.parent), "point": point},
                             "finished", env_steps_done=int(meta["env_steps"]))
        from pgzoo.run.plot import plot_runs

        plot_runs([run_dir], run_dir / rundir.CURVE)


def tune(algo: str, env: str | None = None, space: Any = None, trials: int = 10,
         total_steps: int | None = None, seed: int = 0, *, seeds: int = 1,
         out: str | Path | None = None, root: str | Path = "runs", progress: bool | None = None,
         preset: bool = True, **overrides: Any) -> dict[str, Any]:
    """Optuna's TPE search over ``space`` (``--param`` strings, ``pgzoo.run.tune``): each trial
    trains one run of ``seeds`` seeds in OUT/trial-N and scores it by the mean final training
    return over seeds. Returns {"best": {...}, "trials": [...]}, also written to tune.json."""
    from pgzoo.run import sweep as sw
    from pgzoo.run import tune as tn

    env = algos.get(algo).default_env if env is None else env
    space = tn.parse_space(space) if isinstance(space, list | tuple) else None
    if space is None:
        raise PgzooError("space must be a list of 'KEY=KIND:SPEC' strings")
    if not (isinstance(trials, int) and not isinstance(trials, bool) and 1 <= trials <= 10_000):
        raise PgzooError(f"trials must be an integer in [1, 10000], got {trials!r}")
    both = sorted(set(space) & set(overrides))
    if both:
        raise PgzooError(f"{both[0]} is both searched (--param) and set (--set); give it once")
    optuna = tn.optuna()
    # validate first: the fixed settings, and every bound and choice of the space
    for values in tn.corners(space):
        build(algo, env, total_steps, seed, seeds, {**overrides, **values}, preset=preset)
    path = (rundir.new_run_dir(_run_dir(root), f"tune-{algo}", env) if out is None
            else _run_dir(out))
    if (path / "tune.json").exists():
        raise PgzooError(f"{path} already holds a tuning run (tune.json); choose a new --out")
    rundir.safe_dir(path)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    results: list[dict[str, Any]] = []

    def objective(trial):
        values = tn.suggest(trial, space)
        run_dir = path / f"trial-{trial.number:04d}"
        exp = build(algo, env, total_steps, seed, seeds, {**overrides, **values}, preset=preset)
        _driver(exp, "compiled")(exp, run_dir, progress=_progress(progress), tensorboard=False,
                     eval_episodes=0)
        finals = sw.final_returns(run_dir)
        score = float(np.nanmean(finals))
        results.append({"trial": trial.number, "params": values, "final_return": finals,
                        "score": score, "run_dir": str(run_dir)})
        rundir.write_json(path / "tune.json", {"algo": algo, "env": env, "trials": results})
        return score

    study.optimize(objective, n_trials=trials, catch=())
    best = max(results, key=lambda r: r["score"])
    summary = {"algo": algo, "env": env, "score": "mean over seeds of the final training return",
               "best": best, "trials": results}
    rundir.write_json(path / "tune.json", summary)
    summary["tune_dir"] = str(path)
    return summary
