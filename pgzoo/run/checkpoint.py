"""Checkpoints: the State pytree as a NumPy ``.npz`` archive (no pickle) plus JSON metadata.

Leaves are stored under their pytree key paths; loading maps them back onto a template of the
same structure (from ``jax.eval_shape`` of the algorithm's init), checking names, shapes and dtypes,
so a partial or foreign file is reported rather than half-loaded. Writes are atomic: the archive
is written beside its destination and renamed over it.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from pgzoo.errors import PgzooError

FILENAME = "state.npz"
_META = "__meta__"


def _flatten(tree) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def save(directory: Path, state: Any, meta: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = _flatten(jax.device_get(state))
    arrays[_META] = np.array(json.dumps(meta))
    final = directory / FILENAME
    tmp = directory / f".{FILENAME}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / FILENAME
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data[_META]))
    except FileNotFoundError:
        raise PgzooError(f"{directory.parent} has no checkpoint ({path} is missing); "
                         "give a run directory written by `pgzoo train`") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise PgzooError(f"checkpoint {path} is corrupt ({type(err).__name__}); "
                         "give a run directory with an intact checkpoint") from None


def load(directory: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a State shaped like ``template`` (arrays or ShapeDtypeStructs)."""
    meta = read_meta(directory)
    path = directory / FILENAME
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    restored = []
    try:
        with np.load(path, allow_pickle=False) as data:
            for key_path, leaf in leaves:
                name = jax.tree_util.keystr(key_path)
                if name not in data.files:
                    raise PgzooError(f"checkpoint {path} lacks {name}; it was written by a "
                                     "different configuration or is partial")
                value = data[name]
                if value.shape != tuple(leaf.shape) or value.dtype != leaf.dtype:
                    raise PgzooError(
                        f"checkpoint {path} has {name} of shape {value.shape} {value.dtype}, "
                        f"expected {tuple(leaf.shape)} {leaf.dtype}; it does not match config.json")
                restored.append(value)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, PgzooError):
            raise
        raise PgzooError(f"checkpoint {path} is corrupt ({type(err).__name__}); "
                         "give a run directory with an intact checkpoint") from None
    return jax.tree_util.tree_unflatten(treedef, restored), meta
