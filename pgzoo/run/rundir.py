"""The run directory: config.json, metrics.csv, TensorBoard events, checkpoints/, eval.json,
curve.png (and video.gif when asked, evaluations/ from `pgzoo eval`, wandb/ with --wandb)."""
from __future__ import annotations

import csv
import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgzoo.errors import PgzooError

CONFIG = "config.json"
METRICS = "metrics.csv"
EVAL = "eval.json"
EVALUATIONS = "evaluations"  # one file per `pgzoo eval`: eval-<UTC time>.json
EVALS = "evals.csv"  # evaluation during training (``--eval-every``), one row per evaluation and seed
BEST = "best"  # checkpoints/best: the state of the best evaluation so far
CURVE = "curve.png"
VALUES = "values.png"  # a tabular run on a grid world: V and the greedy policy
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"
WANDB = "wandb"  # Weights & Biases' own files, and pgzoo-run.json: the wandb run to continue
WANDB_RUN = "pgzoo-run.json"
MAX_CONFIG_BYTES = 1 << 20


def new_run_dir(root: Path, algo: str, env: str) -> Path:
    safe_env = "".join(c if c.isalnum() or c in "-_." else "_" for c in env)
    base = root / f"{algo}-{safe_env}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    path.mkdir(parents=True)
    return path


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def check_not_link(path: Path) -> None:
    """Refuse a symbolic link where pgzoo writes inside a run directory: following it would
    write outside the run directory."""
    if Path(path).is_symlink():
        raise PgzooError(f"{path} is a symbolic link; pgzoo does not write through links inside a "
                         "run directory. Remove it, or use a new run directory")


def safe_dir(path: Path) -> Path:
    """``path`` as a directory inside a run directory (created if missing), never a link."""
    check_not_link(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PgzooError(f"{path} exists and is not a directory") from None
    return path


def open_new(path: Path, binary: bool = False):
    """Create ``path`` afresh for writing: a stale file or a planted link of that name is removed
    first, and the file is created exclusively (``O_EXCL | O_NOFOLLOW``)."""
    _unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="")


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write ``path`` through a temporary beside it, synced and renamed over it: a reader (or a
    kill at any moment) sees the old file or the new one, never a partial one. On failure (a full
    disk) the temporary is removed and the old file stays."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open_new(tmp, binary) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise PgzooError(f"refusing to write {path.name}: it would hold a non-finite number "
                         "(NaN or infinity), which is not valid JSON") from None
    try:
        atomic_write(path, lambda f: f.write(text))
    except OSError as err:
        # A full disk has no block for the temporary; a small file (config.json saying
        # ``failed``) can still be rewritten in place in the blocks it already has.
        if err.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file():
            raise
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.truncate()


def write_evaluation(run_dir: Path, data: dict[str, Any]) -> Path:
    """A `pgzoo eval` result as a new file, evaluations/eval-<UTC time>.json (``-1``, ``-2``, ...
    appended when that name exists): written through a synced temporary that is hard-linked to
    the first free name, so it never replaces eval.json (the training's) or an earlier one."""
    directory = safe_dir(Path(run_dir) / EVALUATIONS)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise PgzooError("refusing to write the evaluation: it would hold a non-finite number "
                         "(NaN or infinity), which is not valid JSON") from None
    tmp = directory / f".eval-{stamp}-{os.getpid()}.json.tmp"
    try:
        with open_new(tmp) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        for i in range(10_000):
            path = directory / (f"eval-{stamp}.json" if i == 0 else f"eval-{stamp}-{i}.json")
            try:
                os.link(tmp, path)  # fails if the name exists: nothing is overwritten
                return path
            except FileExistsError:
                continue
        raise PgzooError(f"{directory} holds too many evaluations of {stamp}")
    finally:
        _unlink(tmp)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporaries left by a process killed while writing (``.NAME.tmp``)."""
    for sub in (run_dir, run_dir / CHECKPOINTS, run_dir / EVALUATIONS):
        if sub.is_dir() and not sub.is_symlink():
            for tmp in sub.glob(".*.tmp"):
                _unlink(tmp)


def read_json(path: Path, what: str = "a pgzoo file") -> dict[str, Any]:
    """A JSON object that pgzoo wrote: a regular file of at most 1 MB, else a one-line error."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
        raise PgzooError(f"{path} is not {what} (not a regular file of at most "
                         f"{MAX_CONFIG_BYTES // 1024} kB)")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        raise PgzooError(f"{path} is corrupt (not valid JSON)") from None
    except OSError as err:
        raise PgzooError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(data, dict):
        raise PgzooError(f"{path} is not {what} (it holds a {type(data).__name__}, "
                         "not an object)")
    return data


def read_config(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PgzooError(f"run directory {str(run_dir)!r} does not exist; give a directory "
                         "written by `pgzoo train` (runs/<algo>-<env>-<time>)")
    path = run_dir / CONFIG
    if not path.exists():
        raise PgzooError(f"{run_dir} is not a run directory: {CONFIG} is missing")
    data = read_json(path, "a run's config")
    required = {"algo": str, "env": str, "total_steps": int, "seed": int, "seeds": int,
                "config": dict}
    missing = [k for k in required if k not in data]
    if missing:
        raise PgzooError(f"{path} is incomplete: missing {', '.join(missing)}")
    for key, kind in required.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise PgzooError(f"{path} is invalid: {key} must be a {kind.__name__}, got "
                             f"{data[key]!r}")
    return data


class MetricsLog:
    """metrics.csv (one row per iteration and seed), TensorBoard scalars and, when ``wandb`` is
    set, a Weights & Biases run (``WandbWriter``). The third column counts the budget
    (``env_steps``, or the algorithm's ``budget_unit``) and is the x axis.

    Rows are appended and flushed after every chunk. On resume, the rows up to the checkpoint are
    kept and the file is rewritten atomically (a kill during the rewrite leaves the old file, whose
    rows past the checkpoint the next resume drops again), then appended to."""

    def __init__(self, run_dir: Path, columns: list[str], num_seeds: int, tensorboard: bool,
                 keep_until_iteration: int | None = None, filename: str = METRICS,
                 wandb: bool | str = False):
        self.path = run_dir / filename
        self.columns = columns
        rows = []
        if keep_until_iteration is not None and self.path.exists():
            check_not_link(self.path)
            rows = [r for r in _csv_rows(self.path) if _iteration(r) is not None
                    and _iteration(r) <= keep_until_iteration]

        def write_kept(f):
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

        atomic_write(self.path, write_kept)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        self._file = os.fdopen(fd, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        self._writers = []
        if tensorboard:
            sub = [""] if num_seeds == 1 else [f"seed{i}" for i in range(num_seeds)]
            tb = safe_dir(run_dir / TENSORBOARD)
            self._writers = [TensorBoardWriter(safe_dir(tb / s) if s else tb, columns[2])
                             for s in sub]
        self._wandb = WandbWriter(run_dir, columns[2], num_seeds > 1, wandb) if wandb else None

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._csv.writerows(rows)
        self._file.flush()
        for row in rows:
            if self._writers:
                self._writers[row["seed"] if len(self._writers) > 1 else 0].write(row)
        for w in self._writers:
            w.flush()
        if self._wandb is not None:
            self._wandb.write(rows)

    def close(self) -> None:
        # On a full disk the final flush fails again; the error that stopped the run has been
        # reported already, and the rows up to the last checkpoint are on disk.
        closers = [self._file.close] + [w.close for w in self._writers]
        for close in closers + ([self._wandb.close] if self._wandb is not None else []):
            try:
                close()
            except OSError:
                pass


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


def import_wandb():
    """The wandb module, imported only when a run asks for it."""
    try:
        import wandb
    except ImportError:
        raise PgzooError('logging to Weights & Biases needs the wandb package: '
                         'pip install "pgzoo[wandb]"') from None
    return wandb


class WandbWriter:
    """One Weights & Biases run per run directory: its config is config.json's (less the run's
    state: status, pid, error, steps done), each metrics row is logged at step = the budget
    column, the seeds' rows of an iteration in one step under ``seed{i}/`` keys when there are
    several. wandb's files go to RUN_DIR/wandb; the wandb run's id and project are kept there
    (pgzoo-run.json), so a resumed pgzoo run continues the same wandb run. ``setting``: True, or
    a project name (default: $WANDB_PROJECT, else ``pgzoo``). WANDB_MODE=offline logs without
    the network (``wandb sync`` uploads later)."""

    def __init__(self, run_dir: Path, step_column: str, per_seed: bool, setting: bool | str):
        import secrets
        import string

        wandb = import_wandb()
        self._step, self._per_seed = step_column, per_seed
        self._skip = ("iteration", "seed", step_column)
        own = safe_dir(run_dir / WANDB)
        saved = {}
        if (own / WANDB_RUN).is_file():
            try:
                saved = json.loads((own / WANDB_RUN).read_text())
            except (OSError, ValueError, UnicodeDecodeError):
                saved = {}
        saved = saved if isinstance(saved, dict) else {}
        project = (setting if isinstance(setting, str) else saved.get("project")
                   or os.environ.get("WANDB_PROJECT") or "pgzoo")
        run_id = saved.get("id") if saved.get("project") == project else None
        if not (isinstance(run_id, str) and run_id.isalnum()):
            alphabet = string.ascii_lowercase + string.digits
            run_id = "".join(secrets.choice(alphabet) for _ in range(8))
        write_json(own / WANDB_RUN, {"id": run_id, "project": project})
        try:
            config = json.loads((run_dir / CONFIG).read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            config = {}
        state = ("status", "pid", "error", "env_steps_done")
        config = {k: v for k, v in config.items() if k not in state}
        try:
            # wandb puts its files in DIR/wandb; console="off": pgzoo's output is not wrapped
            self._run = wandb.init(project=project, id=run_id, name=run_dir.name, dir=run_dir,
                                   config=config, resume="allow", allow_val_change=True,
                                   reinit="create_new", settings=wandb.Settings(console="off"))
        except Exception as err:  # wandb's errors share no base class (login, network, usage)
            line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise PgzooError(f"could not start a Weights & Biases run: {line}; log in with "
                             "`wandb login`, or set WANDB_MODE=offline to log without the "
                             "network") from None

    def write(self, rows: list[dict[str, Any]]) -> None:
        by_step: dict[int, dict[str, float]] = {}
        for row in rows:
            prefix = f"seed{row['seed']}/" if self._per_seed else ""
            by_step.setdefault(int(row[self._step]), {}).update(
                {prefix + k: float(v) for k, v in row.items() if k not in self._skip and v != ""})
        for step, values in sorted(by_step.items()):
            if step >= self._run.step:  # a resumed online run has logged the steps before
                self._run.log(values, step=step)

    def close(self) -> None:
        try:
            self._run.finish()
        except Exception:  # an upload failing at the end must not hide how the run ended
            pass


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise PgzooError(f"{path} is not a metrics file written by pgzoo ({err})") from None


def _iteration(row: dict[str, str]) -> int | None:
    """A row's iteration, or None for a malformed row (the last row of a killed write)."""
    try:
        return int(row["iteration"]) if None not in row and None not in row.values() else None
    except (KeyError, TypeError, ValueError):
        return None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.csv with numbers as floats (empty cells as None); a malformed
    row (cut short by a kill) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise PgzooError(f"{run_dir} has no {METRICS}; give a run directory written by "
                         "`pgzoo train`")
    rows = _csv_rows(path)
    if rows and not {"iteration", "seed", "episode_return"} <= set(rows[0]):
        raise PgzooError(f"{path} is not a metrics file written by pgzoo: its header lacks "
                         "iteration, seed or episode_return")
    out = []
    for r in rows:
        if _iteration(r) is None:
            continue
        try:
            out.append({k: (float(v) if v != "" else None) for k, v in r.items()})
        except ValueError:
            continue
    return out
