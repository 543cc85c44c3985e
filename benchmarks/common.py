"""Helpers shared by the benchmark scripts (not part of the library)."""
from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import numpy as np

from pgzoo.run.rundir import read_metrics

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"  # run directories and logs; ignored by git
DOCS = ROOT / "docs" / "benchmarks"  # plots and result tables that docs/benchmarks.md shows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}"


def final_return(run_dir: Path, seed: int = 0, min_episodes: int = 10) -> float:
    """Mean return of the last training episodes: those of the final iterations, taken from the
    end until at least ``min_episodes`` episodes are covered."""
    rows = [r for r in read_metrics(run_dir) if r["seed"] == seed]
    total = episodes = 0.0
    for r in reversed(rows):
        if r["episodes"]:
            total += r["episode_return"] * r["episodes"]
            episodes += r["episodes"]
        if episodes >= min_episodes:
            break
    return total / episodes


def steps_to_threshold(run_dir: Path, seed: int, threshold: float, window: int = 20):
    """Environment steps at which the mean return of the last ``window`` episodes (iteration
    means, weighted by their episode counts) first reaches ``threshold``; None if never."""
    recent: list[tuple[float, float]] = []
    for r in read_metrics(run_dir):
        if r["seed"] != seed or not r["episodes"]:
            continue
        recent.append((r["episode_return"], r["episodes"]))
        while sum(n for _, n in recent[1:]) >= window:
            recent.pop(0)
        episodes = sum(n for _, n in recent)
        if episodes >= window and sum(g * n for g, n in recent) / episodes >= threshold:
            return int(r["env_steps"])
    return None


def steady_steps_per_second(run_dir: Path) -> float:
    """Throughput after the first chunk (which includes compilation), from metrics.csv."""
    rows = [r for r in read_metrics(run_dir) if r["seed"] == 0]
    first, last = rows[0], rows[-1]
    seeds = len({r["seed"] for r in read_metrics(run_dir)})
    return (last["env_steps"] - first["env_steps"]) * seeds / (last["wall_time"] - first["wall_time"])


def save_results(name: str, results: dict) -> Path:
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def summary(values) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.1f} ± {values.std():.1f}"
