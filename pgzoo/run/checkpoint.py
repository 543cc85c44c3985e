"""Checkpoints: the State pytree as a NumPy ``.npz`` archive (no pickle) plus JSON metadata.

Leaves are stored under their pytree key paths; loading maps them back onto a template of the
same structure (from ``jax.eval_shape`` of the algorithm's init), checking names, shapes and dtypes,
so a partial or foreign file is reported rather than half-loaded. Writes are atomic: the archive
is written beside its destination and renamed over it.
"""
from __future__ import annotations

import json
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
    from pgzoo.run import rundir

    rundir.safe_dir(directory)
    arrays = _flatten(jax.device_get(state))
    arrays[_META] = np.array(json.dumps(meta))
    final = directory / FILENAME
    rundir.atomic_write(final, lambda f: np.savez(f, **arrays), binary=True)
    return final


def _member(archive: zipfile.ZipFile, name: str, path: Path, expect=None) -> np.ndarray:
    """The array stored as ``NAME.npy``: its header (shape and dtype) is read and checked by
    ``expect(shape, dtype)`` before its data is read from that same member."""
    if name + ".npy" not in archive.namelist():
        raise PgzooError(f"checkpoint {path} lacks {name}; it was written by a different "
                         "configuration or is partial")
    with archive.open(name + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(f)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed")
        if expect is not None:
            expect(tuple(shape), dtype)
    with archive.open(name + ".npy") as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _archive(path: Path) -> zipfile.ZipFile:
    """The checkpoint's zip, refused if it holds anything but ``.npy`` members."""
    archive = zipfile.ZipFile(path)
    if any(not n.endswith(".npy") for n in archive.namelist()):
        archive.close()
        raise ValueError("unexpected members")
    return archive


def _corrupt(path: Path, err: BaseException) -> PgzooError:
    return PgzooError(f"checkpoint {path} is corrupt ({type(err).__name__}); give a run directory "
                      "with an intact checkpoint")


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / FILENAME
    if not path.is_file():
        raise PgzooError(f"{directory.parent} has no checkpoint ({path} is missing); "
                         "give a run directory written by `pgzoo train`")
    def short_string(shape, dtype):
        if shape != () or dtype.kind != "U" or dtype.itemsize > 1 << 20:
            raise ValueError("metadata is not a short string")

    try:
        with _archive(path) as archive:
            meta = json.loads(str(_member(archive, _META, path, short_string)))
    except PgzooError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise _corrupt(path, err) from None
    iteration = meta.get("iteration") if isinstance(meta, dict) else None
    if not (isinstance(iteration, int) and not isinstance(iteration, bool) and iteration >= 0):
        raise PgzooError(f"checkpoint {path} has no valid iteration in its metadata; give a run "
                         "directory with an intact checkpoint")
    wall_time = meta.get("wall_time", 0.0)
    if not (isinstance(wall_time, int | float) and not isinstance(wall_time, bool)
            and 0 <= wall_time < float("inf")):
        raise PgzooError(f"checkpoint {path} has an invalid wall_time in its metadata; give a "
                         "run directory with an intact checkpoint")
    return meta


def load(directory: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restore a State shaped like ``template`` (arrays or ShapeDtypeStructs). Every array's
    header is checked against the template before its data is read, so a foreign or forged file
    is reported, never half-loaded or allowed to allocate what its header claims."""
    meta = read_meta(directory)
    path = directory / FILENAME
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    restored = []
    try:
        with _archive(path) as archive:
            for key_path, leaf in leaves:
                name = jax.tree_util.keystr(key_path)

                def matches(shape, dtype, name=name, leaf=leaf):
                    if shape != tuple(leaf.shape) or dtype != leaf.dtype:
                        raise PgzooError(
                            f"checkpoint {path} has {name} of shape {shape} {dtype}, expected "
                            f"{tuple(leaf.shape)} {leaf.dtype}; it does not match config.json")

                restored.append(_member(archive, name, path, matches))
    except PgzooError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise _corrupt(path, err) from None
    return jax.tree_util.tree_unflatten(treedef, restored), meta
