"""Interval estimates for few-run results, after rliable.

Agarwal et al. (2021), "Deep reinforcement learning at the edge of the statistical precipice"
(rliable), recommend reporting an aggregate score with a stratified bootstrap confidence interval,
and the interquartile mean (IQM) beside the mean:

    IQM(x)  = mean of the middle 50% of the scores x (the lowest and highest 25% dropped),
              scipy.stats.trim_mean(x, 0.25) over all runs x tasks, as rliable computes it;
    mean(x) = mean over tasks of each task's mean over runs.

Stratified percentile bootstrap, for scores ``x[i, m]`` of run i = 1..N on task m = 1..M:

    replicate b = 1..B:  x*_b[i, m] = x[j_bim, m],  j_bim ~ Uniform{1..N} independently for each
                         task m (runs are resampled with replacement within each task);
    interval:            [q_(1-c)/2, q_(1+c)/2] of the B replicate statistics T(x*_b), c the
                         confidence; the point estimate is T(x) on the data themselves.

The ``rliable`` package (1.2.0) installs but fails at import with current pandas (its pinned
``arch`` 5.3.0 raises ``TypeError: deprecate_kwarg() missing 1 required positional argument``), so
this module is our own implementation of its method: ``bootstrap_interval`` follows
``rliable.library.get_interval_estimates`` (``StratifiedBootstrap``, percentile method) and the
named statistics follow ``rliable.metrics`` (aggregate_mean, aggregate_median, aggregate_iqm). The
replicates are drawn as one (B, N, M) index array, so a named statistic costs a few numpy calls;
the same ``seed`` gives the same interval.

``summarize(values)`` gives the mean and IQM with intervals in one dict (for reports);
``bootstrap_curve`` gives an interval at every point of a learning curve (for plots).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.stats

from pgzoo.errors import PgzooError

Statistic = str | Callable[[np.ndarray], float]
STATISTICS = ("mean", "median", "iqm")


def iqm(x, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50% of ``x`` (rliable's aggregate IQM:
    ``scipy.stats.trim_mean(x, 0.25)``; over all elements when ``axis`` is None). With fewer than
    four values nothing is trimmed and it is the mean."""
    return scipy.stats.trim_mean(np.asarray(x, dtype=float), 0.25, axis=axis)


def _aggregate(name: str, x: np.ndarray) -> np.ndarray:
    """A named statistic of scores ``x[..., runs, tasks]``, reducing the last two axes."""
    if name == "mean":
        return x.mean(axis=(-2, -1))
    if name == "median":  # rliable: the median over tasks of each task's mean
        return np.median(x.mean(axis=-2), axis=-1)
    return iqm(x.reshape(*x.shape[:-2], -1), axis=-1)  # rliable: IQM of all runs x tasks


def _sorted_statistic(name: str, s: np.ndarray) -> np.ndarray:
    """Median or IQM over the last axis of ``s``, already sorted along it (as np.median and
    scipy.stats.trim_mean(s, 0.25) compute them, without sorting again)."""
    n = s.shape[-1]
    if name == "median":
        return (s[..., (n - 1) // 2] + s[..., n // 2]) / 2
    cut = int(0.25 * n)
    return s[..., cut:n - cut].mean(axis=-1)


def _scores(scores, what: str = "scores") -> np.ndarray:
    x = np.asarray(scores, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.size == 0:
        raise PgzooError(f"{what} must be a non-empty array of runs (1-D) or runs x tasks (2-D), "
                         f"got shape {np.shape(scores)}")
    if not np.isfinite(x).all():
        raise PgzooError(f"{what} hold a non-finite value (NaN or infinity); drop failed runs "
                         "before computing intervals")
    return x


def _check(statistic: Statistic, reps: int, confidence: float) -> None:
    if not callable(statistic) and statistic not in STATISTICS:
        raise PgzooError(f"unknown statistic {statistic!r}; give one of {', '.join(STATISTICS)} "
                         "or a function of a runs x tasks array")
    if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or reps < 1:
        raise PgzooError(f"reps must be an integer >= 1, got {reps!r}")
    if not 0 < confidence < 1:
        raise PgzooError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The (1-c)/2 and (1+c)/2 quantiles over axis 0, as ``np.percentile`` (linear method)
    computes them, from one partial sort (about three times faster for a curve's replicates)."""
    n = replicates.shape[0]
    position = np.array([(1 - confidence) / 2, (1 + confidence) / 2]) * (n - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, n - 1)
    part = np.partition(replicates, np.unique(np.concatenate([below, above])), axis=0)
    frac = (position - below).reshape(-1, *([1] * (replicates.ndim - 1)))
    a, b = part[below], part[above]
    low, high = a + (b - a) * frac  # exact where a == b (a constant curve gives a point)
    return low, high


def bootstrap_interval(scores, statistic: Statistic, reps: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and stratified percentile-bootstrap confidence interval of ``statistic``.

    ``scores``: runs x tasks (a 1-D array is the runs of one task). ``statistic``: ``"mean"``,
    ``"median"`` or ``"iqm"`` (rliable's aggregate metrics, computed for all replicates at once),
    or a function of a runs x tasks array returning a float (called once per replicate). Each of
    the ``reps`` replicates resamples the runs with replacement independently within each task.
    Returns ``(point, low, high)``; the same ``seed`` gives the same interval."""
    _check(statistic, reps, confidence)
    x = _scores(scores)
    runs, tasks = x.shape
    rng = np.random.default_rng(seed)
    index = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = x[index, np.arange(tasks)]  # (reps, runs, tasks): x[index[b, i, m], m]
    if callable(statistic):
        point = float(statistic(x))
        replicates = np.array([statistic(r) for r in resampled], dtype=float)
    else:
        point = float(_aggregate(statistic, x))
        replicates = _aggregate(statistic, resampled)
    low, high = _percentiles(replicates, confidence)
    return point, float(low), float(high)


def summarize(values, reps: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> dict[str, Any]:
    """Mean and IQM of ``values`` (runs, or runs x tasks), each with its stratified bootstrap
    interval: ``{"mean": m, "mean_ci": (low, high), "iqm": q, "iqm_ci": (low, high), "n": runs,
    "tasks": tasks, "confidence": confidence}`` (plain floats and ints, ready for JSON once the
    tuples are lists). Non-finite values are refused: drop failed runs first."""
    x = _scores(values, "values")
    out: dict[str, Any] = {}
    for name in ("mean", "iqm"):
        point, low, high = bootstrap_interval(x, name, reps, confidence, seed)
        out[name], out[f"{name}_ci"] = point, (low, high)
    out.update(n=x.shape[0], tasks=x.shape[1], confidence=confidence)
    return out


def bootstrap_curve(curves, statistic: str = "mean", reps: int = 1000, confidence: float = 0.95,
                    seed: int = 0, chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """``statistic`` over runs at every point of a learning curve, with its percentile-bootstrap
    interval at each point: ``curves`` is runs x points (every run evaluated on one grid);
    returns ``(point, low, high)``, each of length points.

    Each point is a separate one-task bootstrap over runs; all points use the same resampled run
    indices (reps x runs), so the band is as smooth as the curves. ``statistic`` is ``"mean"``,
    ``"median"`` or ``"iqm"``; ``chunk`` bounds the elements resampled at once."""
    _check(statistic, reps, confidence)
    if callable(statistic):
        raise PgzooError("bootstrap_curve takes a named statistic: "
                         + ", ".join(STATISTICS))
    y = np.asarray(curves, dtype=float)
    if y.ndim != 2 or y.size == 0:
        raise PgzooError(f"curves must be a non-empty runs x points array, got shape "
                         f"{np.shape(curves)}")
    runs, points = y.shape
    index = np.random.default_rng(seed).integers(0, runs, size=(reps, runs))
    if statistic == "mean":
        # The mean of a resample is a weighted sum: how often each run was drawn, over runs.
        counts = np.zeros((reps, runs))
        np.add.at(counts, (np.arange(reps)[:, None], index), 1.0)
        replicates = counts @ y / runs
        point = y.mean(axis=0)
    else:
        point = _sorted_statistic(statistic, np.sort(y.T, axis=-1))
        replicates = np.empty((points, reps))
        step = max(1, chunk // (reps * runs))
        for start in range(0, points, step):
            part = y.T[start:start + step][:, index]  # (part, reps, runs), runs contiguous
            replicates[start:start + step] = _sorted_statistic(statistic, np.sort(part, axis=-1))
        replicates = replicates.T
    low, high = _percentiles(replicates, confidence)
    return point, low, high
