"""Learning-curve plots from one or more run directories' metrics.csv."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pgzoo.errors import PgzooError
from pgzoo.run.rundir import atomic_write, read_config, read_metrics


def _curve(rows, seed: float):
    x_column = list(rows[0])[2]  # the budget column (env_steps, or the algorithm's unit)
    pts = [(r[x_column], r["episode_return"]) for r in rows
           if r["seed"] == seed and r["episode_return"] is not None]
    if not pts:
        return None, None
    x, y = np.array(pts).T
    window = max(1, len(y) // 50)  # light smoothing: about 50 points' worth of averaging
    kernel = np.ones(window) / window
    y_smooth = np.convolve(np.pad(y, (window - 1, 0), mode="edge"), kernel, mode="valid")
    return x, y_smooth


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise PgzooError("plot needs at least one run directory")
    out = Path(out)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    formats = fig.canvas.get_supported_filetypes()
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in formats:
        plt.close(fig)
        raise PgzooError(f"cannot write a plot to {out}: give a file name ending in one of "
                         + ", ".join(f".{f}" for f in sorted(formats)))
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        cfg = read_config(run_dir)
        rows = read_metrics(run_dir)
        seeds = sorted({r["seed"] for r in rows})
        curves = [c for c in (_curve(rows, s) for s in seeds) if c[0] is not None]
        label = f"{cfg['algo']} {cfg['env']} ({run_dir.name})"
        if not curves:
            continue
        if len(curves) == 1:
            ax.plot(*curves[0], label=label)
            continue
        # Several seeds: mean and min-max band on a common grid of steps.
        grid = np.linspace(max(c[0][0] for c in curves), min(c[0][-1] for c in curves), 200)
        ys = np.array([np.interp(grid, x, y) for x, y in curves])
        (line,) = ax.plot(grid, ys.mean(0), label=f"{label}, {len(curves)} seeds")
        ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title or "learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, lambda f: fig.savefig(f, dpi=110, format=fmt), binary=True)
    finally:
        plt.close(fig)
    return out
