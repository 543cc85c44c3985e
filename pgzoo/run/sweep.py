"""Hyperparameter sweeps: a grid of Config values x seeds, one run directory per grid point, and
a report of each point's final return (mean and IQM with 95% stratified-bootstrap intervals).

When every swept field is one the algorithm declares traceable (``Algorithm.hyperparameters``)
and the environment is JAX-native, the whole grid x seeds trains as one experiment (one compiled
step, ``pgzoo.run.experiment``) in ``SWEEP/all``; it is then split into one ordinary run
directory per point (config, metrics, evaluation, checkpoint), so each point can be loaded,
evaluated, plotted or resumed like any run. Other fields (network sizes, batch shapes) change the
compiled program, so each point then trains as its own run.
"""
from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pgzoo.errors import PgzooError
from pgzoo.run import rundir
from pgzoo.run.stats import summarize

REPORT = "report"  # report.md, report.json, report.png in the sweep directory
ALL = "all"  # the combined run of a compiled grid
MAX_POINTS = 256


def parse_grid(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``["learning_rate=1e-3,3e-4", ...]`` -> {"learning_rate": ["1e-3", "3e-4"], ...}. Values
    are separated by commas, or by semicolons when a value is itself a list
    (``hidden_sizes=64,64;256,256``)."""
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise PgzooError(f"--grid expects KEY=V1,V2,... (or KEY=A;B for list values such as "
                             f"hidden_sizes=64,64;256,256), got {pair!r}")
        if key in grid:
            raise PgzooError(f"--grid names {key!r} twice; give all its values in one --grid")
        split = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if any(not v for v in split):
            raise PgzooError(f"--grid {key} has an empty value in {values!r}")
        if len(set(split)) != len(split):
            raise PgzooError(f"--grid {key} repeats a value in {values!r}")
        grid[key] = split
    if not grid:
        raise PgzooError("sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The cartesian product of the grid, in the order the keys and values were given."""
    out = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if len(out) > MAX_POINTS:
        raise PgzooError(f"the grid has {len(out)} points; at most {MAX_POINTS} in one sweep")
    return out


def point_name(point: Mapping[str, Any]) -> str:
    """A directory name for a grid point: ``learning_rate=0.001_ent_coef=0.0``."""
    return "_".join(f"{k}={str(v).replace(',', '-').replace('/', '-')}"
                    for k, v in point.items())


def final_returns(run_dir: Path, min_episodes: int = 10) -> list[float]:
    """Each seed's mean training return over its last episodes: the final iterations, from the
    end, until at least ``min_episodes`` episodes are covered (NaN: no episode finished)."""
    rows = rundir.read_metrics(run_dir)
    out = []
    for seed in sorted({int(r["seed"]) for r in rows}):
        total = episodes = 0.0
        for r in reversed([r for r in rows if int(r["seed"]) == seed]):
            if r["episodes"] and r["episode_return"] is not None:
                total += r["episode_return"] * r["episodes"]
                episodes += r["episodes"]
            if episodes >= min_episodes:
                break
        out.append(total / episodes if episodes else float("nan"))
    return out


def split_rows(all_dir: Path, point_dir: Path, members: range) -> None:
    """Copy the metrics rows of ``members`` from the combined run, renumbering their seeds."""
    with open(all_dir / rundir.METRICS, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = []
        for row in reader:
            try:
                seed = int(float(row["seed"]))
            except (TypeError, ValueError):
                continue
            if seed in members:
                rows.append({**row, "seed": seed - members.start})

    def write(f):
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)

    rundir.atomic_write(point_dir / rundir.METRICS, write)


def report(sweep_dir: Path, point_dirs: Sequence[tuple[dict[str, str], Path]],
           title: str) -> dict[str, Any]:
    """Per point: the seeds' final training returns and evaluation returns, their mean and IQM
    with 95% stratified-bootstrap intervals (``pgzoo.run.stats``); written as report.json,
    report.md and report.png in ``sweep_dir``."""
    results = []
    for point, run_dir in point_dirs:
        finals = final_returns(run_dir)
        entry: dict[str, Any] = {"point": point, "run_dir": str(run_dir),
                                 "final_return": finals}
        values = [v for v in finals if np.isfinite(v)]
        if values:
            entry["final_return_summary"] = _jsonable(summarize(values))
        eval_path = run_dir / rundir.EVAL
        if eval_path.is_file():
            per_seed = json.loads(eval_path.read_text()).get("per_seed", [])
            entry["eval_return"] = [s["mean_return"] for s in per_seed]
        results.append(entry)
    out = {"title": title, "statistic": "final training return: mean of each seed's last >= 10 "
           "episodes; mean and IQM over seeds with 95% stratified-bootstrap intervals "
           "(percentile method, 2000 replicates)", "points": results}
    rundir.write_json(sweep_dir / f"{REPORT}.json", out)
    table = _table(results)
    rundir.atomic_write(sweep_dir / f"{REPORT}.md", lambda f: f.write(f"# {title}\n\n{table}\n"))
    _plot(sweep_dir / f"{REPORT}.png", results, title)
    out["table"] = table
    return out


def _jsonable(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(map(float, v)) if isinstance(v, tuple | list) else
                (int(v) if isinstance(v, int | np.integer) else float(v)))
            for k, v in summary.items()}


def _table(results: list[dict[str, Any]]) -> str:
    lines = ["| point | seeds | mean final return [95% CI] | IQM [95% CI] | per seed | eval |",
             "|---|---|---|---|---|---|"]
    for r in results:
        s = r.get("final_return_summary")
        point = ", ".join(f"{k}={v}" for k, v in r["point"].items())
        per_seed = ", ".join(f"{v:.1f}" for v in r["final_return"])
        evals = ", ".join(f"{v:.1f}" for v in r.get("eval_return", [])) or "-"
        if s is None:
            lines.append(f"| {point} | {len(r['final_return'])} | - | - | {per_seed} | {evals} |")
            continue
        lines.append(f"| {point} | {s['n']} | {s['mean']:.1f} [{s['mean_ci'][0]:.1f}, "
                     f"{s['mean_ci'][1]:.1f}] | {s['iqm']:.1f} [{s['iqm_ci'][0]:.1f}, "
                     f"{s['iqm_ci'][1]:.1f}] | {per_seed} | {evals} |")
    return "\n".join(lines)


def _plot(out: Path, results: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["\n".join(f"{k}={v}" for k, v in r["point"].items()) for r in results]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(results) + 2), 4.2))
    x = np.arange(len(results))
    for i, r in enumerate(results):
        s = r.get("final_return_summary")
        ax.scatter(np.full(len(r["final_return"]), i + 0.18), r["final_return"], s=12,
                   color="0.5", zorder=3, label="seeds" if i == 0 else None)
        if s is None:
            continue
        for offset, name, color in ((-0.12, "mean", "C0"), (0.0, "iqm", "C1")):
            lo, hi = s[f"{name}_ci"]
            ax.errorbar(i + offset, s[name], yerr=[[s[name] - lo], [hi - s[name]]], fmt="o",
                        color=color, capsize=4,
                        label=(f"{name.upper() if name == 'iqm' else name}, 95% bootstrap CI"
                               if i == 0 else None))
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("final training return")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        rundir.atomic_write(out, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True)
    finally:
        plt.close(fig)
