"""pgzoo: the policy-gradient family of reinforcement-learning algorithms in JAX."""
__version__ = "0.1.0"

from pgzoo.errors import PgzooError, RunFailed  # noqa: E402

_API = ("Run", "describe", "evaluate", "load", "resume", "resume_sweep", "sweep", "train", "tune")


def __getattr__(name: str):
    # The API (and with it JAX) is imported on first use, so that `pgzoo --help`, bad command
    # lines and a Ctrl-C during start-up are handled by the command line's own error handling.
    if name in _API:
        from pgzoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'pgzoo' has no attribute {name!r}")

__all__ = ["PgzooError", "Run", "RunFailed", "describe", "evaluate", "load", "resume",
           "resume_sweep", "sweep", "train", "tune", "__version__"]
