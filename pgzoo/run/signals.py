"""Ctrl-C (SIGINT) and SIGTERM as a request to stop, shared by the command line and the trainer.

Before training starts, a signal interrupts at once (KeyboardInterrupt). JAX can swallow a
KeyboardInterrupt raised inside its own callbacks (a garbage-collection hook prints "Exception
ignored" and goes on), so the request is also kept in ``STOP``, which the trainer checks before
its first chunk and after every chunk. While training, a signal only sets ``STOP`` (the loop stops
at the end of the running chunk and writes its checkpoint); a second one interrupts at once.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

STOP = threading.Event()
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt_now(signum, frame):
    STOP.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_during_start_up():
    """Around the command line's work: a signal before training interrupts at once (and one
    swallowed by JAX is still seen by the trainer)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt_now) for sig in SIGNALS}
    hook = sys.unraisablehook

    def quiet(unraisable):
        # a KeyboardInterrupt that a callback swallowed is not lost: STOP holds it
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()


@contextlib.contextmanager
def stop_at_chunk_end():
    """While training: the first signal asks the loop to stop at the end of the running chunk,
    a second stops at once. Yields the event the loop checks; it is cleared when training ends."""
    if threading.current_thread() is not threading.main_thread():
        yield threading.Event()
        return

    def handler(signum, frame):
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield STOP
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        STOP.clear()
