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
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import __version__
from pgzoo.algos.base import EPISODE_LENGTH_SUM, EPISODE_RETURN_SUM, EPISODE_SUMS, EPISODES
from pgzoo.core.config import to_dict
from pgzoo.run import checkpoint, rundir
from pgzoo.run.evaluation import evaluate, evaluate_seeds
from pgzoo.run.experiment import Experiment
from pgzoo.run.progress import Progress

MAX_CHUNK_STEPS = 250_000


def make_chunk(exp: Experiment, max_iterations: int):
    def chunk(state, n):
        shapes = jax.eval_shape(exp.step, state)[1]
        buffer = jax.tree.map(lambda s: jnp.zeros((max_iterations,) + s.shape, s.dtype), shapes)

        def body(i, carry):
            state, buffer = carry
            state, metrics = exp.step(state)
            return state, jax.tree.map(lambda b, m: b.at[i].set(m), buffer, metrics)

        return jax.lax.fori_loop(0, n, body, (state, buffer))

    return jax.jit(chunk), sorted(jax.eval_shape(exp.step, exp.template())[1])


def _cores() -> int:
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1


def seed_groups(exp: Experiment) -> list[slice]:
    """Split the seed axis into one equal group per CPU core (at most).

    XLA runs one compiled call on one core for networks this small, and batching more seeds into
    one vmapped call gains little on a CPU, so the groups run concurrently in threads instead.
    An algorithm declared with ``vmap_seeds=False`` gets one group per member."""
    members = exp.members
    if not exp.vmapped or members == 1:
        return [slice(None)]
    if not exp.algorithm.vmap_seeds:
        return [slice(i, i + 1) for i in range(members)]
    cores = _cores()
    groups = max(d for d in range(1, min(cores, members) + 1) if members % d == 0)
    size = members // groups
    return [slice(i * size, (i + 1) * size) for i in range(groups)]


class SeedGroups:
    """Runs a chunk on each seed group concurrently and joins the results along the seed axis."""

    def __init__(self, exp: Experiment, chunk):
        self.slices = seed_groups(exp)
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
        if self._pool is None:
            state, buffer = self.chunk(states[0], n)
            return [state], jax.device_get(buffer)
        def run_group(s):
            state, buffer = self.chunk(s, n)
            return state, jax.device_get(buffer)  # the metrics only; the state stays on device

        results = list(self._pool.map(run_group, states))
        buffer = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *[b for _, b in results])
        return [s for s, _ in results], buffer

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
            row.update({k: float(v) for k, v in m.items() if k not in EPISODE_SUMS})
            rows.append(row)
    return rows


@contextlib.contextmanager
def stop_on_sigint():
    """Ctrl-C asks the loop to stop at the end of the running chunk (a second Ctrl-C stops at
    once). The request is a flag the loop checks, because a KeyboardInterrupt raised while JAX
    waits for a result can be lost inside it."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def write_config(exp: Experiment, run_dir: Path, status: str, **extra: Any) -> None:
    rundir.write_json(run_dir / rundir.CONFIG, {
        "algo": exp.algo, "env": exp.env_spec, "total_steps": exp.total_steps, "seed": exp.seed,
        "seeds": exp.num_seeds, "config": to_dict(exp.config), "status": status,
        "pgzoo_version": __version__, **extra})


def train(exp: Experiment, run_dir: Path, *, resume: bool = False, progress: bool = True,
          tensorboard: bool = True, eval_episodes: int = 10, checkpoint_interval: float = 30.0,
          chunk_seconds: float = 2.0, on_chunk: Callable[[dict], None] | None = None):
    """Train to ``exp.total_steps``; returns (final state, run summary)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    elapsed_before = 0.0
    if resume:
        state, meta = checkpoint.load(ckpt_dir, exp.template())
        iteration, elapsed_before = int(meta["iteration"]), float(meta.get("wall_time", 0.0))
        if not exp.vmapped:
            state = exp.restart_episodes(state, jax.random.PRNGKey(exp.seed + 10_000 + iteration))
    else:
        state, iteration = exp.init_state(), 0
    write_config(exp, run_dir, "running")

    spi = exp.agent.units_per_iteration
    unit = exp.algorithm.budget_unit
    max_chunk = max(1, min(exp.num_iterations, math.ceil(MAX_CHUNK_STEPS / spi)))
    chunk, metric_names = make_chunk(exp, max_chunk)
    groups = SeedGroups(exp, chunk)
    states = groups.split(state)
    columns = (["iteration", "seed", unit, "episode_return", "episode_length", "episodes"]
               + [k for k in metric_names if k not in EPISODE_SUMS] + ["wall_time"])
    log = rundir.MetricsLog(run_dir, columns, exp.members, tensorboard,
                            keep_until_iteration=iteration if resume else None)
    bar = Progress(exp.total_steps, enabled=progress, description=f"{exp.algo} {exp.env_spec}")
    bar.update(iteration * spi, None, None)
    start, last_ckpt, n = time.time(), time.time(), 1
    saved_iteration = iteration if resume else -1

    def save(status: str):
        nonlocal saved_iteration, last_ckpt
        if iteration != saved_iteration:
            checkpoint.save(ckpt_dir, groups.join(states), {
                "iteration": iteration, "env_steps": iteration * spi, "vmapped": exp.vmapped,
                "wall_time": elapsed_before + time.time() - start})
            saved_iteration, last_ckpt = iteration, time.time()
        write_config(exp, run_dir, status, env_steps_done=iteration * spi)

    try:
        first = True
        with stop_on_sigint() as stop_requested:
            while iteration < exp.num_iterations:
                n = min(n, exp.num_iterations - iteration)
                t0 = time.time()
                new_states, buffer = groups.run(states, n)
                dt = time.time() - t0
                rows = _rows(exp, buffer, n, iteration, elapsed_before + time.time() - start)
                log.write(rows)
                states, iteration = new_states, iteration + n
                bar.update(iteration * spi, n * spi * exp.members / dt, rows)
                # The first chunk includes compilation; later chunks are sized by measured speed.
                n = 2 if first else max(1, min(max_chunk, int(chunk_seconds * n / max(dt, 1e-6))))
                first = False
                if time.time() - last_ckpt >= checkpoint_interval:
                    save("running")
                if on_chunk is not None:
                    on_chunk({"iteration": iteration, "env_steps": iteration * spi})
                if stop_requested.is_set():
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        save("interrupted")
        raise
    except BaseException:
        save("failed")
        raise
    finally:
        bar.close()
        log.close()
        groups.close()

    save("finished")
    state = groups.join(states)
    summary: dict[str, Any] = {"iteration": iteration, "env_steps": iteration * spi,
                               "wall_time": elapsed_before + time.time() - start}
    if eval_episodes:
        summary["eval"] = evaluate_run(exp, state, eval_episodes)
        rundir.write_json(run_dir / rundir.EVAL, summary["eval"])
    from pgzoo.run.plot import plot_runs

    plot_runs([run_dir], run_dir / rundir.CURVE)
    return state, summary


def evaluate_run(exp: Experiment, state, episodes: int) -> dict[str, Any]:
    """Deterministic evaluation of each seed's final policy."""
    if exp.vmapped and exp.members > 1:
        policy = exp.policy(state, 0)
        stacked = (exp.params(state), exp.env_state(state))
        per_seed = evaluate_seeds(policy, stacked, episodes, exp.seed)
    else:
        per_seed = [evaluate(exp.policy(state, 0), exp.env_spec, episodes, seed=exp.seed)]
    means = [r["mean_return"] for r in per_seed]
    return {"episodes_per_seed": episodes, "mean_return": float(np.mean(means)),
            "per_seed": per_seed}
