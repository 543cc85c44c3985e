"""Learning-curve plots from one or more run directories.

The training panel draws ``episode_return`` from metrics.csv against the budget column (its third
column: ``env_steps``, or the algorithm's unit; a planning run, which plays no episodes, draws
``start_value``, the value of the start states); a run directory that holds evals.csv gets a second
panel, the deterministic evaluation return, beside it. With several seeds the line is the mean (or
IQM) over seeds on a common grid of the budget, and the band its 95% percentile-bootstrap interval
over seeds at each grid point (``pgzoo.run.stats.bootstrap_curve``); with one seed, the line alone.

``value_map`` draws a grid world's values and greedy policy from a Q table (the tabular methods).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pgzoo.errors import PgzooError
from pgzoo.run.rundir import EVALS as EVALS_FILE
from pgzoo.run.rundir import atomic_write, read_config, read_metrics
from pgzoo.run.stats import bootstrap_curve

STATS = ("mean", "iqm")
CONFIDENCE = 0.95
GRID_POINTS = 300  # at most this many points per curve: finer than a figure's resolution
BUDGET_LABELS = {"env_steps": "environment steps"}
PLANNING_VALUE = "start_value"  # the metric of a planning run: the value of the start states
Y_LABELS = {"episode_return": "episode return", PLANNING_VALUE: "value of the start state"}


def format_count(x: float, _pos=None) -> str:
    """A tick label in k/M/B: 250000 -> '250k', 1500000 -> '1.5M', 40 -> '40'."""
    x = float(f"{x:.3g}")  # round first, so that 999999 reads 1M rather than 1e+03k
    for suffix, unit in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= unit:
            return f"{x / unit:.3g}{suffix}"
    return f"{x:.3g}"


def moving_average(y: np.ndarray, k: int) -> np.ndarray:
    """Trailing mean over the last ``k`` points (fewer at the start: no padding, no lag shift of
    the first points towards a made-up value); ``k`` 0 or 1 leaves ``y`` as it is."""
    if k <= 1 or len(y) == 0:
        return y
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(1, len(y) + 1)
    start = np.maximum(i - k, 0)
    return (c[i] - c[start]) / (i - start)


def read_evals(run_dir: Path) -> list[dict[str, float]] | None:
    """The rows of a run's evals.csv (deterministic evaluations during training) with numbers as
    floats, or None when the run has none. Tolerant: a row cut short by a kill, or one with a
    non-numeric cell, is skipped."""
    path = Path(run_dir) / EVALS_FILE
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise PgzooError(f"{path} is not an evaluation file written by pgzoo ({err})") from None
    if header is None:
        return []
    if len(header) < 4 or not {"seed", "eval_return"} <= set(header):
        raise PgzooError(f"{path} is not an evaluation file written by pgzoo: its header lacks "
                         "seed or eval_return, or the budget column")
    out = []
    for row in rows:
        if len(row) != len(header):
            continue
        try:
            values = dict(zip(header, (float(v) for v in row)))
        except ValueError:
            continue
        if all(np.isfinite(values[k]) for k in (header[2], "seed", "eval_return")):
            out.append(values)
    return out


def _seed_curves(rows: list[dict], x_column: str, y_column: str,
                 smooth: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (x, y) curve per seed, sorted by x, rows without a y value left out."""
    by_seed: dict[float, list[tuple[float, float]]] = {}
    for r in rows:
        if r.get(y_column) is not None and r.get(x_column) is not None:
            by_seed.setdefault(r["seed"], []).append((r[x_column], r[y_column]))
    curves = []
    for seed in sorted(by_seed):
        x, y = np.array(sorted(by_seed[seed])).T
        curves.append((x, moving_average(y, smooth)))
    return curves


def _common_grid(curves: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The budget values where every seed has data (the span all curves cover): the seeds' own x
    values when they are few, else an even grid of GRID_POINTS over that span."""
    start, stop = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if start > stop:  # the seeds' spans do not overlap: nothing can be compared
        return np.array([])
    xs = np.unique(np.concatenate([x[(x >= start) & (x <= stop)] for x, _ in curves]))
    return xs if len(xs) <= GRID_POINTS else np.linspace(start, stop, GRID_POINTS)


def _draw(ax, curves, color, stat: str, per_seed: bool, label: str):
    """Draw one run directory's seeds on ``ax``; return (legend handle, legend label) or None."""
    if not curves:
        return None
    marker = "o" if max(len(x) for x, _ in curves) <= 30 else None  # sparse curves (evaluations)
    if len(curves) == 1:
        (line,) = ax.plot(*curves[0], color=color, lw=1.6, marker=marker, ms=3)
        return line, f"{label} (1 seed)"
    grid = _common_grid(curves)
    if per_seed:
        for x, y in curves:
            ax.plot(x, y, color=color, lw=0.7, alpha=0.35)
    if len(grid) == 0:
        return None
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    point, low, high = bootstrap_curve(ys, stat, confidence=CONFIDENCE)
    band = ax.fill_between(grid, low, high, color=color, alpha=0.22, lw=0)
    (line,) = ax.plot(grid, point, color=color, lw=1.8, marker=marker, ms=3)
    text = (f"{label}: {'IQM' if stat == 'iqm' else 'mean'} of {len(curves)} seeds, "
            f"{CONFIDENCE:.0%} bootstrap CI" + (" (thin lines: each seed)" if per_seed else ""))
    return (band, line), text


def _budget_label(columns: list[str]) -> str:
    names = list(dict.fromkeys(BUDGET_LABELS.get(c, c.replace("_", " ")) for c in columns))
    return " / ".join(names) or "environment steps"


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, *, stat: str = "mean",
              per_seed: bool = False, smooth: int = 0) -> Path:
    """Plot the learning curves of ``run_dirs`` into ``out`` (its suffix names the format: .png,
    .pdf, .svg, ...), written atomically.

    stat: ``"mean"`` or ``"iqm"`` over seeds, with its 95% bootstrap interval as a band.
    per_seed: also draw each seed's curve, thin and faint, in the run's colour.
    smooth: trailing moving average over this many points of each seed's training curve (0 or 1:
    none); evaluation curves, already averages over episodes, are drawn as recorded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.ticker import FuncFormatter

    if not run_dirs:
        raise PgzooError("plot needs at least one run directory")
    if stat not in STATS:
        raise PgzooError(f"unknown statistic {stat!r} for the plot; give one of "
                         + ", ".join(STATS))
    if not isinstance(smooth, (int, np.integer)) or isinstance(smooth, bool) or smooth < 0:
        raise PgzooError(f"smooth must be an integer >= 0 (points in the moving average; 0: "
                         f"none), got {smooth!r}")
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise PgzooError(f"cannot write a plot to {out}: give a file name ending in one of "
                         + ", ".join(f".{f}" for f in sorted(formats)))

    runs = []
    y_columns = set()
    for run_dir in map(Path, run_dirs):
        cfg, rows = read_config(run_dir), read_metrics(run_dir)
        x_column = list(rows[0])[2] if rows else "env_steps"
        # planning runs (dynamic programming) play no episodes: their curve is V(s_0)
        y_column = (PLANNING_VALUE if rows and PLANNING_VALUE in rows[0]
                    and not any(r["episodes"] for r in rows) else "episode_return")
        y_columns.add(y_column)
        evals = read_evals(run_dir)
        runs.append({"dir": run_dir, "algo": cfg["algo"], "env": cfg["env"], "x": x_column,
                     "train": _seed_curves(rows, x_column, y_column, smooth),
                     "evals": (_seed_curves(evals, list(evals[0])[2], "eval_return", 0)
                               if evals else [])})
    one_env = len({r["env"] for r in runs}) == 1
    names = [r["algo"] if one_env and len(runs) > 1 else f"{r['algo']} {r['env']}" for r in runs]
    for r, name in zip(runs, names):  # the same algorithm and task twice: name the directories
        r["label"] = f"{name} ({r['dir'].name})" if names.count(name) > 1 else name
    if title is None:
        one_algo = len({r["algo"] for r in runs}) == 1
        title = (f"{runs[0]['algo']} on {runs[0]['env']}" if one_algo and one_env
                 else runs[0]["env"] if one_env else "learning curves")

    with_evals = any(r["evals"] for r in runs)
    fig, axes = plt.subplots(1, 2 if with_evals else 1, figsize=(12.5 if with_evals else 7, 4.6),
                             squeeze=False, sharex=with_evals)
    axes = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles, labels = [], []
    for i, r in enumerate(runs):
        color = colors[i % len(colors)]
        drawn = _draw(axes[0], r["train"], color, stat, per_seed, r["label"])
        if with_evals:  # the legend shows the training entry, or the evaluation one if alone
            eval_drawn = _draw(axes[1], r["evals"], color, stat, per_seed, r["label"])
            drawn = drawn or eval_drawn
        if drawn:
            handles.append(drawn[0])
            labels.append(drawn[1])
    ylabel = " / ".join(Y_LABELS[c] for c in sorted(y_columns)) + (
        f" (moving average of {smooth})" if smooth > 1 else "")
    axes[0].set_ylabel(ylabel)
    if with_evals:
        axes[0].set_title("training episodes", fontsize=10)
        axes[1].set_title("deterministic evaluation return", fontsize=10)
        axes[1].set_ylabel("evaluation return")
        fig.suptitle(title)
    else:
        axes[0].set_title(title)
    for ax in axes:
        ax.set_xlabel(_budget_label([r["x"] for r in runs]))
        ax.xaxis.set_major_formatter(FuncFormatter(format_count))
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    if handles:
        axes[0].legend(handles, labels, fontsize=8, loc="best", frameon=False, handleheight=1.6,
                       handlelength=2.4)
    fig.tight_layout()
    try:
        if not out.parent.is_dir():
            raise PgzooError(f"cannot write {out}: the directory {out.parent} does not exist")
        atomic_write(out, lambda f: fig.savefig(f, dpi=150, format=fmt), binary=True)
    finally:
        plt.close(fig)
    return out


def value_map(model, q: np.ndarray, out: Path, title: str) -> Path:
    """A grid world's state values V(s) = max_a Q(s, a) as a heat map, with the greedy action as
    an arrow in each cell that is not a terminal one (hole, goal, cliff) and the map's letters
    in the corners; ``model`` is a ``pgzoo.envs.tabular.TabularModel`` with a ``grid``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = model.grid
    q = np.asarray(q, np.float64)
    greedy = q.argmax(axis=-1)
    labels = model.labels or "." * (rows * cols)
    # cells the agent never acts in: terminal ones (holes, the goal) and the cliff; left blank
    ends = np.asarray(model.terminates) * np.asarray(model.transitions)
    absorbing = np.isclose(ends.sum(-1), 1.0).all(-1) | np.array([c in "HGC" for c in labels])
    values = np.where(absorbing, np.nan, q.max(axis=-1)).reshape(rows, cols)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.62 * cols + 1.6), max(3.0, 0.62 * rows + 0.9)))
    image = ax.imshow(values, cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="V(s) = max_a Q(s, a)")
    low = float(np.nanmin(values)) if np.isfinite(values).any() else 0.0
    spread = (float(np.nanmax(values)) - low if np.isfinite(values).any() else 0.0) or 1.0
    for s in range(rows * cols):
        r, c = divmod(s, cols)
        dark = not absorbing[s] and values[r, c] < low + 0.5 * spread
        color = "white" if dark else "black"
        if labels[s] not in ".F":  # frozen or plain cells need no letter
            ax.text(c - 0.42, r - 0.42, labels[s], ha="left", va="top", fontsize=7, color=color,
                    fontweight="bold")
        if model.moves is not None and not absorbing[s]:
            dr, dc = model.moves[greedy[s]]
            ax.arrow(c - 0.22 * dc, r - 0.22 * dr, 0.3 * dc, 0.3 * dr, head_width=0.16,
                     head_length=0.12, length_includes_head=False, color=color)
    ax.set_xticks([])
    ax.set_yticks([])
    import textwrap

    ax.set_title(textwrap.fill(title, max(30, int(9 * cols))), fontsize=9)
    fig.tight_layout()
    try:
        atomic_write(Path(out), lambda f: fig.savefig(f, dpi=150, format="png"), binary=True)
    finally:
        plt.close(fig)
    return Path(out)
