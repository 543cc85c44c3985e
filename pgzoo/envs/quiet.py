"""MuJoCo's model compiler warns of attributes it will drop (settotalmass in Gymnasium's and
Brax's half_cheetah.xml), once per model compiled, on stderr and in ./MUJOCO_LOG.TXT; no user can
act on it. Exactly these are dropped, and only while pgzoo makes a MuJoCo-based task."""
from __future__ import annotations

import re
import sys
from contextlib import contextmanager

_MUJOCO_COMPILER_DEPRECATION = re.compile(r"compiler attribute '\w+' is deprecated")


@contextmanager
def quiet_mujoco_deprecations(active: bool = True):
    if not active:
        yield
        return
    try:
        import mujoco
    except ImportError:
        yield
        return

    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if _MUJOCO_COMPILER_DEPRECATION.match(message):
            return
        if callable(previous):
            previous(message)
        else:  # what MuJoCo does without a handler
            mujoco.mju_writeLog("WARNING", message)
            print(f"WARNING: {message}\n", file=sys.stderr)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


@contextmanager
def quiet_stdout():
    """Standard output dropped, at the level of the file descriptor too: jaxmarl prints about
    its optional submodules when first imported, past ``contextlib.redirect_stdout``."""
    import contextlib
    import io
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
