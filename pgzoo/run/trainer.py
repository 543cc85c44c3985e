"""The host loop: compiled chunks of iterations, then metrics, progress, checkpoints.

A chunk is one call of a jitted ``fori_loop`` over n iterations of the algorithm's step (vmapped
over seeds); n is a traced argument, so it adapts to aim at ``chunk_seconds`` of work per chunk
without recompiling, and host work stays a few percent of the time. Iterations compute the same
numbers whatever the chunking, so a resumed run equals an uninterrupted one bit for bit on
JAX-native environments.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import __version__
from pgzoo.algos.base import (
    AGENT_RETURN_SUM,
    CONVERGED,
    EPISODE_LENGTH_SUM,
    EPISODE_RETURN_SUM,
    EPISODES,
    is_episode_sum,
)
from pgzoo.core.config import to_dict
from pgzoo.errors import Interrupted, PgzooError, RunFailed
from pgzoo.run import checkpoint, rundir, signals
from pgzoo.run.evaluation import MemberEvaluator, evaluate, evaluate_members
from pgzoo.run.experiment import Experiment
from pgzoo.run.progress import Progress

MAX_CHUNK_STEPS = 250_000
PLANNING_CHUNK = 50  # sweeps per chunk at most: a converged plan stops within this many
EVAL_COLUMNS = ["eval_return", "eval_return_std", "eval_length", "eval_episodes", "wall_time"]


@dataclass(frozen=True)
class EvalSchedule:
    """Evaluation during training: every ``every`` budget units per seed, ``episodes``
    deterministic episodes of each seed's policy on a separate batch of environments; the run
    stops once the mean over seeds reaches ``stop_at``."""

    every: int
    episodes: int = 10
    stop_at: float | None = None


class Evaluations:
    """evals.csv, checkpoints/best, and the early-stopping rule of an ``EvalSchedule``."""

    def __init__(self, exp: Experiment, run_dir: Path, schedule: EvalSchedule, iteration: int,
                 template_state):
        self.exp, self.schedule = exp, schedule
        self.every = max(1, round(schedule.every / exp.agent.units_per_iteration))
        self.next = (iteration // self.every + 1) * self.every
        self.best_dir = run_dir / rundir.CHECKPOINTS / rundir.BEST
        best = (checkpoint.read_meta(self.best_dir)
                if (self.best_dir / checkpoint.FILENAME).exists() else {})
        self.best = float(best.get("eval_return", -math.inf))
        self.evaluator = MemberEvaluator(exp.policy(template_state, 0), schedule.episodes)
        unit = exp.algorithm.budget_unit
        self.log = rundir.MetricsLog(run_dir, ["iteration", "seed", unit] + EVAL_COLUMNS,
                                     exp.members, False, keep_until_iteration=iteration,
                                     filename=rundir.EVALS)

    def until_next(self, iteration: int) -> int:
        return self.next - iteration

    def __call__(self, state, iteration: int, wall_time: float) -> dict[str, Any] | None:
        """Evaluate when ``iteration`` is due: the evaluation's summary, or None."""
        if iteration < self.next:
            return None
        self.next = (iteration // self.every + 1) * self.every
        exp = self.exp
        if exp.vmapped:
            stacked = (exp.params(state), exp.env_state(state))
        else:
            stacked = jax.tree.map(lambda x: x[None], (exp.params(state), exp.env_state(state)))
        per_seed = self.evaluator(stacked, exp.member_seeds() if exp.vmapped else [exp.seed],
                                  salt=iteration)
        unit = exp.algorithm.budget_unit
        spi = exp.agent.units_per_iteration
        self.log.write([{"iteration": iteration, "seed": m, unit: iteration * spi,
                         "eval_return": r["mean_return"], "eval_return_std": r["std_return"],
                         "eval_length": r["mean_length"], "eval_episodes": r["episodes"],
                         "wall_time": round(wall_time, 3)} for m, r in enumerate(per_seed)])
        mean = float(np.mean([r["mean_return"] for r in per_seed]))
        result = {"iteration": iteration, unit: iteration * spi, "mean_return": mean,
                  "per_seed": [r["mean_return"] for r in per_seed], "best": mean > self.best}
        if mean > self.best:
            self.best = mean
            checkpoint.save(self.best_dir, state, {
                "iteration": iteration, "env_steps": iteration * spi, "vmapped": exp.vmapped,
                "wall_time": wall_time, "eval_return": mean})
        return result

    def reached(self, result: dict[str, Any] | None) -> bool:
        stop_at = self.schedule.stop_at
        return result is not None and stop_at is not None and result["mean_return"] >= stop_at

    def close(self) -> None:
        self.log.close()


def _float_leaves(tree) -> list:
    return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


def make_chunk(exp: Experiment, max_iterations: int):
    """The compiled chunk: n iterations, their metrics, and whether each floating-point leaf of
    the state is finite afterwards (the divergence check, computed in the same call)."""
    def chunk(state, n):
        shapes = jax.eval_shape(exp.step, state)[1]
        buffer = jax.tree.map(lambda s: jnp.zeros((max_iterations,) + s.shape, s.dtype), shapes)

        params_ok = jnp.ones((max_iterations,) + _params_finite(exp, state).shape, bool)

        def body(i, carry):
            state, buffer, params_ok = carry
            state, metrics = exp.step(state)
            return (state, jax.tree.map(lambda b, m: b.at[i].set(m), buffer, metrics),
                    params_ok.at[i].set(_params_finite(exp, state)))

        state, buffer, params_ok = jax.lax.fori_loop(0, n, body, (state, buffer, params_ok))
        finite = jnp.stack([jnp.isfinite(x).all() for x in _float_leaves(state)])
        return state, (buffer, params_ok, finite)

    return jax.jit(chunk), sorted(jax.eval_shape(exp.step, exp.template())[1])


def strong_types(state):
    """The state with no weakly typed leaves. A leaf that starts weak (gymnax Pendulum's
    ``last_u = 0.0``) and comes out of a step strong would give the second chunk another input
    signature, and the training step would compile twice."""
    def strong(x):
        return jnp.asarray(x, x.dtype) if isinstance(x, jax.Array) and x.weak_type else x

    return jax.tree.map(strong, state)


def _params_finite(exp: Experiment, state) -> jax.Array:
    """Whether each member's policy parameters are finite (checked every iteration; the whole
    state, replay buffer included, is checked once per chunk)."""
    leaves = _float_leaves(exp.params(state))
    if not exp.vmapped:
        return jnp.stack([jnp.isfinite(x).all() for x in leaves]).all()
    return jnp.stack([jnp.isfinite(x).reshape(x.shape[0], -1).all(1) for x in leaves]).all(0)


def float_leaf_paths(template) -> list[str]:
    """Key paths of the state's floating-point leaves, in the order of the chunk's flags."""
    return [jax.tree_util.keystr(p) for p, x in jax.tree_util.tree_flatten_with_path(template)[0]
            if jnp.issubdtype(x.dtype, jnp.floating)]


def _cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def seed_groups(exp: Experiment) -> list[slice]:
    """Split the member axis (seeds, or grid points x seeds) into groups run as separate calls.

    On a CPU every member is its own group, stepped unbatched: XLA computes a vmapped batch of
    seeds with other instruction orders than a single seed, so grouping seeds by core count made a
    seed's numbers depend on the machine and on which seeds shared its run. One member per group
    makes member k of ``--seeds K`` equal ``--seed k`` alone, bit for bit, on any core count; the
    groups run concurrently in threads, one per core. On an accelerator (where one vmapped call is
    what makes many seeds cheap) an algorithm declared with ``vmap_seeds=True`` keeps all its
    members in one vmapped call: each member is then reproducible for the same ``--seeds K`` and
    device, but not equal to a single-seed run (README, "Reproducibility")."""
    members = exp.members
    if not exp.vmapped or members == 1:
        return [slice(None)]
    if exp.algorithm.vmap_seeds and jax.default_backend() != "cpu":
        return [slice(None)]
    return [slice(i, i + 1) for i in range(members)]


class SeedGroups:
    """Runs a chunk on each seed group concurrently and joins the results along the seed axis."""

    def __init__(self, exp: Experiment, chunk):
        self.slices = seed_groups(exp)
        self.members = [range(exp.members)[s] for s in self.slices]  # member indices per group
        self.chunk = chunk
        self._pool = (ThreadPoolExecutor(min(len(self.slices), _cores())) if len(self.slices) > 1
                      else None)

    def split(self, state) -> list:
        if self._pool is None:
            return [state]
        return [jax.tree.map(lambda x, s=s: x[s], state) for s in self.slices]

    def join(self, states: list):
        if len(states) == 1:
            return states[0]
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *states)

    def run(self, states: list, n: int):
        """One chunk on every group: (new states, metrics joined along the member axis, for each
        group the finiteness of its state's floating-point leaves)."""
        def run_group(s):
            state, out = self.chunk(strong_types(s), n)
            return state, jax.device_get(out)  # metrics and flags only; the state stays on device

        if self._pool is None:
            results = [run_group(states[0])]
        else:
            results = list(self._pool.map(run_group, states))
        def joined(parts):
            return (parts[0] if len(parts) == 1 else
                    jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *parts))

        buffer = joined([b for _, (b, _, _) in results])
        params_ok = joined([p for _, (_, p, _) in results])
        return [s for s, _ in results], buffer, params_ok, [f for _, (_, _, f) in results]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _rows(exp: Experiment, buffer: dict[str, np.ndarray], n: int, first_iteration: int,
          wall_time: float) -> list[dict[str, Any]]:
    rows = []
    spi = exp.agent.units_per_iteration
    unit = exp.algorithm.budget_unit
    for i in range(n):
        it = first_iteration + i + 1
        for s in range(exp.members):
            m = {k: (v[i, s] if exp.vmapped else v[i]) for k, v in buffer.items()}
            episodes = float(m[EPISODES])
            row = {"iteration": it, "seed": s, unit: it * spi, "episodes": int(episodes),
                   "episode_return": float(m[EPISODE_RETURN_SUM]) / episodes if episodes else "",
                   "episode_length": float(m[EPISODE_LENGTH_SUM]) / episodes if episodes else "",
                   "wall_time": round(wall_time, 3)}
            row.update({k: float(v) for k, v in m.items() if not is_episode_sum(k)})
            row.update({k[len(AGENT_RETURN_SUM):] + "/episode_return":
                        float(v) / episodes if episodes else ""
                        for k, v in m.items() if k.startswith(AGENT_RETURN_SUM)})
            rows.append(row)
    return rows


def write_config(exp: Experiment, run_dir: Path, record: dict[str, Any], status: str,
                 **extra: Any) -> None:
    rundir.write_json(run_dir / rundir.CONFIG, {
        "algo": exp.algo, "env": exp.env_spec, "total_steps": exp.total_steps, "seed": exp.seed,
        "seeds": exp.num_seeds, "config": to_dict(exp.config), "preset": exp.preset,
        **({"grid": [dict(p) for p in exp.grid]} if exp.grid else {}), "status": status,
        "pgzoo_version": __version__, "pid": os.getpid(), **record, **extra})


def divergence(buffer: dict[str, np.ndarray], params_ok: np.ndarray, n: int,
               first_iteration: int, groups: list[tuple[range, np.ndarray]], paths: list[str]
               ) -> tuple[int, int, str, float, str] | None:
    """Where a chunk diverged: (iteration, member, metric, value, state leaf), or None.

    ``params_ok[i, m]``: member m's policy parameters were finite after the chunk's iteration i;
    ``groups`` pairs each seed group's member indices with the finiteness flags of its state's
    floating-point leaves (named by ``paths``) at the end of the chunk.

    A metric that is infinite diverged. NaN is also how an algorithm reports a metric that has no
    value in an iteration (no update yet, a skipped epoch), so a NaN metric alone is not taken for
    divergence. Parameters that turn non-finite at iteration i are, and the message names the
    metrics of that member that are non-finite at i; a non-finite value elsewhere in the state
    (optimiser moments, critics, normalisation statistics, replay buffer) is found at the end of
    the chunk."""
    values = {k: v[:n].reshape(n, -1) for k, v in buffer.items()}
    params_ok = params_ok[:n].reshape(n, -1)
    hits = []
    for name, v in values.items():
        if np.isinf(v).any():
            i, m = np.argwhere(np.isinf(v))[0]
            hits.append((first_iteration + int(i) + 1, int(m), name, float(v[i, m]), ""))
    for members, finite in groups:
        leaf = "" if finite.all() else paths[int(np.flatnonzero(~finite)[0])]
        for m in members:
            bad = np.flatnonzero(~params_ok[:, m])
            if bad.size == 0 and not leaf:
                continue
            i = int(bad[0]) if bad.size else n - 1
            named = [(k, float(v[i, m])) for k, v in values.items() if not np.isfinite(v[i, m])]
            metric, value = named[0] if named else (
                "a policy parameter" if bad.size else "the training state", float("nan"))
            hits.append((first_iteration + i + 1, m, metric, value, leaf))
    return min(hits) if hits else None


def _open_run(exp: Experiment, run_dir: Path, resume: bool, start_state=None):
    """The state to continue from and its iteration (0 and a fresh state when the run has no
    checkpoint yet, e.g. one killed during its first chunk)."""
    try:
        rundir.safe_dir(run_dir)
        rundir.remove_stale_temporaries(run_dir)
    except OSError as err:
        raise PgzooError(f"cannot use {run_dir} as a run directory: {err.strerror}") from None
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    if resume and (ckpt_dir / checkpoint.FILENAME).exists():
        state, meta = checkpoint.load(ckpt_dir, exp.template())
        iteration = int(meta["iteration"])
        if not exp.vmapped:
            state = exp.restart_episodes(state, jax.random.PRNGKey(exp.seed + 10_000 + iteration))
        return state, iteration, float(meta.get("wall_time", 0.0))
    return (exp.init_state() if start_state is None else start_state), 0, 0.0


def train(exp: Experiment, run_dir: Path, *, resume: bool = False,
          progress: str | bool | None = "bar", tensorboard: bool = True, eval_episodes: int = 10,
          checkpoint_interval: float = 30.0, wandb: bool | str = False, chunk_seconds: float = 2.0, evaluation: EvalSchedule | None = None,
          callback: Callable[[dict], Any] | None = None, start_state=None, **record: Any):
    """Train to ``exp.total_steps``; returns (final state, run summary).

    ``evaluation`` evaluates during training (``EvalSchedule``); ``callback(info)`` is called
    after every compiled chunk with ``info`` = {"iteration", the budget unit (e.g. "env_steps"),
    "rows": the chunk's metrics rows, "evaluation": the evaluation of this chunk or None,
    "run_dir"}; returning False stops the run (as Stable-Baselines3's callbacks do), which then
    finishes normally. ``start_state`` is the State of a fresh run (fine-tuning); ``record``
    adds keys to config.json. ``wandb`` (True, or a project name) also logs the metrics rows to
    Weights & Biases (``rundir.WandbWriter``).

    Whatever ends the run, its directory stays consistent: metrics.csv holds every iteration up to
    the last checkpoint exactly once, and config.json's status says what happened (``finished``,
    ``interrupted`` by Ctrl-C or SIGTERM, ``failed`` with the error; a run killed outright still
    says ``running``, with the pid that no longer exists). An infinite metric or a non-finite value
    in the state stops the run (``RunFailed``, see ``divergence``) and keeps the last finite state
    as its checkpoint."""
    state, iteration, elapsed_before = _open_run(exp, run_dir, resume, start_state)
    ckpt_dir = run_dir / rundir.CHECKPOINTS

    def starting(write):
        """A write before training starts; a failure (a full disk) marks the run failed."""
        try:
            return write()
        except OSError as err:
            message = (f"could not write {err.filename or run_dir}: {err.strerror or err}; the "
                       "run did not start")
            with contextlib.suppress(OSError):
                write_config(exp, run_dir, record, "failed", error=message)
            raise RunFailed(f"{message}. Free space, then continue with `pgzoo train --resume "
                            f"{run_dir}`") from None

    starting(lambda: write_config(exp, run_dir, record, "running",
                                  env_steps_done=iteration * exp.agent.units_per_iteration))

    try:  # set-up traces the step and opens the logs: a Ctrl-C here still marks the run
        spi = exp.agent.units_per_iteration
        unit = exp.algorithm.budget_unit
        max_chunk = max(1, min(exp.num_iterations, math.ceil(MAX_CHUNK_STEPS / spi)))
        if exp.algorithm.budget_unit == "sweeps":  # planning: see convergence soon after it
            max_chunk = min(max_chunk, PLANNING_CHUNK)
        chunk, metric_names = make_chunk(exp, max_chunk)
        paths = float_leaf_paths(exp.template())
        groups = SeedGroups(exp, chunk)
        states = groups.split(state)
        columns = (["iteration", "seed", unit, "episode_return", "episode_length", "episodes"]
                   + [k[len(AGENT_RETURN_SUM):] + "/episode_return" for k in metric_names
                      if k.startswith(AGENT_RETURN_SUM)]
                   + [k for k in metric_names if not is_episode_sum(k)] + ["wall_time"])
        log = starting(lambda: rundir.MetricsLog(run_dir, columns, exp.members, tensorboard,
                                                 keep_until_iteration=iteration, wandb=wandb))
        evals = (starting(lambda: Evaluations(exp, run_dir, evaluation, iteration, state))
                 if evaluation is not None else None)
        stopped: str | None = None
        bar = Progress(exp.num_iterations * spi, progress, f"{exp.algo} {exp.env_spec}",
                       unit="steps" if unit == "env_steps" else unit)
        bar.update(iteration * spi, None, None)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            write_config(exp, run_dir, record, "interrupted",
                         env_steps_done=iteration * exp.agent.units_per_iteration)
        raise Interrupted(run_dir) from None
    start, last_ckpt, n = time.time(), time.time(), 1
    saved_iteration = iteration if resume and iteration > 0 else -1

    def save(status: str, **extra: Any):
        nonlocal saved_iteration, last_ckpt
        try:
            if iteration != saved_iteration:
                checkpoint.save(ckpt_dir, groups.join(states), {
                    "iteration": iteration, "env_steps": iteration * spi,
                    "vmapped": exp.vmapped, "wall_time": elapsed_before + time.time() - start})
                saved_iteration, last_ckpt = iteration, time.time()
            write_config(exp, run_dir, record, status, env_steps_done=saved_iteration * spi, **extra)
        except OSError as err:
            with contextlib.suppress(OSError):
                write_config(exp, run_dir, record, "failed", env_steps_done=max(saved_iteration, 0) * spi,
                             error=f"could not write the checkpoint: {err.strerror}")
            kept = (f"the checkpoint of iteration {saved_iteration} is kept"
                    if saved_iteration >= 0 else "no checkpoint was written yet")
            raise RunFailed(f"could not write the checkpoint in {ckpt_dir}: {err.strerror}; "
                            f"{kept}. Free space, then continue with `pgzoo train --resume "
                            f"{run_dir}`") from None

    def fail(message: str):
        message = f"{message}; the run stopped at iteration {iteration}"
        save("failed", error=message)
        raise RunFailed(f"{message}, and its checkpoint of iteration {saved_iteration} is kept "
                        f"in {ckpt_dir}")

    try:
        first = True
        with signals.stop_at_chunk_end() as stop_requested:
            if stop_requested.is_set():  # a signal during start-up that JAX swallowed
                raise KeyboardInterrupt
            while iteration < exp.num_iterations and stopped is None:
                n = min(n, exp.num_iterations - iteration)
                if evals is not None:  # a chunk ends where an evaluation is due
                    n = min(n, evals.until_next(iteration))
                t0 = time.time()
                new_states, buffer, params_ok, finite = groups.run(states, n)
                if exp.env.host_error() is not None:
                    fail(f"the environment failed during iterations {iteration + 1}.."
                         f"{iteration + n}: {exp.env.host_error()}")
                dt = time.time() - t0
                rows = _rows(exp, buffer, n, iteration, elapsed_before + time.time() - start)
                bad = divergence(buffer, params_ok, n, iteration,
                                 list(zip(groups.members, finite)), paths)
                if bad is not None:
                    it, member, metric, value, leaf = bad
                    log.write([r for r in rows if r["iteration"] <= it])
                    point = (f"grid point {exp.grid[member // exp.num_seeds]}, " if exp.grid
                             else "")
                    where = f", and the state's {leaf} holds NaN or infinity" if leaf else ""
                    fail(f"training diverged: {metric} is {value} at iteration {it} "
                         f"({point}seed {exp.member_seeds()[member]}){where}; lower the learning "
                         "rate, or check the environment's observations and rewards")
                log.write(rows)
                states, iteration = new_states, iteration + n
                bar.update(iteration * spi, n * spi * exp.members / max(dt, 1e-6), rows)
                # The first chunk includes compilation; later chunks are sized by measured speed.
                n = 2 if first else max(1, min(max_chunk, int(chunk_seconds * n / max(dt, 1e-6))))
                first = False
                if time.time() - last_ckpt >= checkpoint_interval:
                    save("running")
                evaluated = None
                if evals is not None and evals.until_next(iteration) <= 0:  # join only when due
                    evaluated = evals(groups.join(states), iteration,
                                      elapsed_before + time.time() - start)
                    if evals.reached(evaluated):
                        stopped = (f"the evaluation return {evaluated['mean_return']:.1f} reached "
                                   f"{evals.schedule.stop_at:g} at iteration {iteration}")
                if (rows and iteration < exp.num_iterations
                        and all(r.get(CONVERGED) == 1.0 for r in rows[-exp.members:])):
                    at = max(min(r["iteration"] for r in rows
                                 if r["seed"] == m and r[CONVERGED] == 1.0)
                             for m in range(exp.members))
                    one = {"sweeps": "sweep", "generations": "generation"}.get(unit, "step")
                    stopped = f"converged by {one} {at * spi} (every seed)"
                if callback is not None and callback(
                        {"iteration": iteration, unit: iteration * spi, "rows": rows,
                         "evaluation": evaluated, "run_dir": run_dir}) is False:
                    stopped = stopped or f"the callback stopped the run at iteration {iteration}"
                if stop_requested.is_set():
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        save("interrupted")
        raise Interrupted(run_dir) from None
    except RunFailed:
        raise
    except OSError as err:  # a write failed: a full disk, a removed directory
        message = f"could not write {err.filename or 'the run directory'}: {err.strerror or err}"
        save("failed", error=message)
        raise RunFailed(f"{message}; the run stopped, and its checkpoint of iteration "
                        f"{saved_iteration} is kept. Free space, then continue with "
                        f"`pgzoo train --resume {run_dir}`") from None
    except BaseException as err:
        save("failed", error=f"{type(err).__name__}: {err}".splitlines()[0][:500])
        raise
    finally:
        bar.close()
        log.close()
        groups.close()
        if evals is not None:
            evals.close()

    save("finished", **({"stopped_early": stopped} if stopped else {}))
    state = groups.join(states)
    summary: dict[str, Any] = {"iteration": iteration, "env_steps": iteration * spi,
                               "wall_time": elapsed_before + time.time() - start}
    if stopped:
        summary["stopped_early"] = stopped
    if evals is not None and math.isfinite(evals.best):
        summary["best_eval_return"] = evals.best
    if eval_episodes:
        summary["eval"] = evaluate_run(exp, state, eval_episodes)
        rundir.write_json(run_dir / rundir.EVAL, summary["eval"])
    from pgzoo.run.plot import plot_runs

    plot_runs([run_dir], run_dir / rundir.CURVE)
    write_value_map(exp, state, run_dir)
    return state, summary


def write_value_map(exp: Experiment, state, run_dir: Path) -> None:
    """values.png for a tabular method (its params are a Q table over state indices) on a grid
    world: seed 0's V(s) = max_a Q(s, a) and greedy policy."""
    model = exp.env.tabular_model()
    if model is None or model.grid is None or exp.env.observation_space.kind != "discrete":
        return
    from pgzoo.run.plot import value_map

    q = np.asarray(exp.agent.params(exp.member_state(state, 0)))
    seeds = f", seed {exp.seed}" if exp.members > 1 else ""
    value_map(model, q, run_dir / rundir.VALUES, f"{exp.algo} on {exp.env_spec}{seeds}: V(s) and "
              "the greedy policy")


def evaluate_run(exp: Experiment, state, episodes: int) -> dict[str, Any]:
    """Deterministic evaluation of each seed's final policy."""
    if exp.vmapped:
        policy = exp.policy(state, 0)
        stacked = (exp.params(state), exp.env_state(state))
        per_seed = evaluate_members(policy, stacked, episodes, exp.member_seeds())
    else:
        per_seed = [evaluate(exp.policy(state, 0), exp.env_spec, episodes, seed=exp.seed)]
    means = [r["mean_return"] for r in per_seed]
    return {"episodes_per_seed": episodes, "mean_return": float(np.mean(means)),
            "per_seed": per_seed}
