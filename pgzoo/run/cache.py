"""JAX's persistent compilation cache, on by default: the compiled training step of a
configuration is kept on disk, so a second run of it starts without compiling again.

The directory is ``$PGZOO_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/pgzoo/jax`` (by default
``~/.cache/pgzoo/jax``), kept under ``MAX_BYTES`` by JAX (least recently used entries go first).
``PGZOO_CACHE_DIR=off`` turns it off; a ``JAX_COMPILATION_CACHE_DIR`` set in the environment
is JAX's own setting and is left as it is. A cache that cannot be created is skipped silently:
it only saves time.
"""
from __future__ import annotations

import os
from pathlib import Path

MAX_BYTES = 2 * 1024**3
OFF = ("off", "0", "none", "false", "no")


def directory() -> Path | None:
    """Where the cache lives, or None when it is off or set through JAX's own variable."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    setting = os.environ.get("PGZOO_CACHE_DIR")
    if setting is not None:
        return None if setting.strip().lower() in OFF or not setting.strip() else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pgzoo" / "jax"


def enable() -> Path | None:
    import jax

    path = directory()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            return None
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # the first chunk of a small run compiles in about a second; cache those too
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return path
