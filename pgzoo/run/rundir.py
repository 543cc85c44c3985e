"""The run directory: config.json, metrics.csv, TensorBoard events, checkpoints/, eval.json,
curve.png (and video.gif when asked)."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from pgzoo.errors import PgzooError

CONFIG = "config.json"
METRICS = "metrics.csv"
EVAL = "eval.json"
CURVE = "curve.png"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"


def new_run_dir(root: Path, algo: str, env: str) -> Path:
    safe_env = "".join(c if c.isalnum() or c in "-_." else "_" for c in env)
    base = root / f"{algo}-{safe_env}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    path.mkdir(parents=True)
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_config(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PgzooError(f"run directory {str(run_dir)!r} does not exist; give a directory "
                         "written by `pgzoo train` (runs/<algo>-<env>-<time>)")
    path = run_dir / CONFIG
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PgzooError(f"{run_dir} is not a run directory: {CONFIG} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PgzooError(f"{path} is corrupt (not valid JSON)") from None
    required = ("algo", "env", "total_steps", "seed", "seeds", "config")
    missing = [k for k in required if k not in data]
    if not isinstance(data, dict) or missing:
        raise PgzooError(f"{path} is incomplete: missing {', '.join(missing)}")
    return data


class MetricsLog:
    """metrics.csv (one row per iteration and seed) and TensorBoard scalars. The third column
    counts the budget (``env_steps``, or the algorithm's ``budget_unit``) and is the x axis."""

    def __init__(self, run_dir: Path, columns: list[str], num_seeds: int, tensorboard: bool,
                 keep_until_iteration: int | None = None):
        self.path = run_dir / METRICS
        self.columns = columns
        rows = []
        if keep_until_iteration is not None and self.path.exists():
            # Resuming: drop rows written after the checkpoint we continue from.
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= keep_until_iteration]
        self._file = open(self.path, "w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        self._csv.writeheader()
        self._csv.writerows(rows)
        self._writers = []
        if tensorboard:
            sub = [""] if num_seeds == 1 else [f"seed{i}" for i in range(num_seeds)]
            self._writers = [TensorBoardWriter(run_dir / TENSORBOARD / s, columns[2]) for s in sub]

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._csv.writerows(rows)
        self._file.flush()
        for row in rows:
            if self._writers:
                self._writers[row["seed"] if len(self._writers) > 1 else 0].write(row)
        for w in self._writers:
            w.flush()

    def close(self) -> None:
        self._file.close()
        for w in self._writers:
            w.close()


class TensorBoardWriter:
    """One TensorBoard event per metrics row, all its scalars in one Summary, written in the
    caller's thread (tensorboardX's SummaryWriter queues every scalar through a multiprocessing
    queue, which costs more than the training itself for fast runs)."""

    def __init__(self, logdir: Path, step_column: str = "env_steps"):
        from tensorboardX.event_file_writer import EventsWriter

        self._step, self._skip = step_column, ("iteration", "seed", step_column)

        logdir.mkdir(parents=True, exist_ok=True)
        self._writer = EventsWriter(str(logdir / "events"))

    def write(self, row: dict[str, Any]) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in row.items()
                  if k not in self._skip and v != ""]
        self._writer.write_event(Event(wall_time=time.time(), step=int(row[self._step]),
                                       summary=Summary(value=values)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise PgzooError(f"{run_dir} has no {METRICS}; give a run directory written by "
                         "`pgzoo train`")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return out
