"""Search spaces for ``pgzoo tune`` (Optuna), for what a grid cannot cover: continuous and
log-uniform ranges, integers, and choices. Each trial trains one run (all its seeds) and scores
it by the mean over seeds of the final training return (``pgzoo.run.sweep.final_returns``).

    --param learning_rate=log:1e-5:1e-2     log-uniform float
    --param clip_coef=float:0.1:0.3         uniform float
    --param num_envs=int:2:16               integer in [2, 16]
    --param activation=choice:tanh,relu     one of the values
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgzoo.errors import PgzooError

KINDS = ("log", "float", "int", "choice")


def parse_space(pairs: Sequence[str]) -> dict[str, tuple[str, Any]]:
    space: dict[str, tuple[str, Any]] = {}
    for pair in pairs:
        key, sep, rest = pair.partition("=")
        kind, _, spec = rest.partition(":")
        key = key.strip()
        usage = (f"--param expects KEY=KIND:SPEC with KIND one of {', '.join(KINDS)} (e.g. "
                 f"learning_rate=log:1e-5:1e-2, num_envs=int:2:16, activation=choice:tanh,relu), "
                 f"got {pair!r}")
        if not sep or not key or kind not in KINDS or not spec:
            raise PgzooError(usage)
        if key in space:
            raise PgzooError(f"--param names {key!r} twice")
        if kind == "choice":
            values = [v.strip() for v in spec.split(",")]
            if len(values) < 2 or any(not v for v in values):
                raise PgzooError(f"--param {key}=choice: needs two or more values, got {spec!r}")
            space[key] = (kind, values)
            continue
        low_text, _, high_text = spec.partition(":")
        try:
            low, high = (int(low_text), int(high_text)) if kind == "int" else (
                float(low_text), float(high_text))
        except ValueError:
            raise PgzooError(usage) from None
        if not low < high or (kind == "log" and low <= 0):
            raise PgzooError(f"--param {key}: need low < high{' and low > 0' if kind == 'log' else ''}"
                             f", got {low_text}:{high_text}")
        space[key] = (kind, (low, high))
    if not space:
        raise PgzooError("tune needs at least one --param KEY=KIND:SPEC")
    return space


def corners(space: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
    """Points that between them take every bound and every choice of ``space`` (to validate the
    space against the Config before any trial trains)."""
    width = max(len(spec) for _, spec in space.values())
    return [{key: spec[min(i, len(spec) - 1)] for key, (_, spec) in space.items()}
            for i in range(width)]


def suggest(trial, space: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """One point of ``space`` from an Optuna trial."""
    out: dict[str, Any] = {}
    for key, (kind, spec) in space.items():
        if kind == "choice":
            out[key] = trial.suggest_categorical(key, spec)
        elif kind == "int":
            out[key] = trial.suggest_int(key, *spec)
        else:
            out[key] = trial.suggest_float(key, *spec, log=kind == "log")
    return out


def optuna():
    try:
        import optuna as module
    except ImportError:
        raise PgzooError('pgzoo tune needs Optuna: pip install "pgzoo[tune]"') from None
    # a failing trial is reported by pgzoo's own one-line error, not Optuna's traceback
    module.logging.set_verbosity(module.logging.ERROR)
    return module
