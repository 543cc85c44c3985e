"""The one exception type a user of pgzoo sees for bad input.

Every message is a single line that says what was wrong and what is valid; the command line prints
it and exits with code 2, the Python API raises it (it is a ValueError).
"""


class PgzooError(ValueError):
    """Bad input: an unknown name, an invalid value, a missing or corrupt run directory."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise PgzooError(message)


class RunFailed(PgzooError):
    """A run that stopped on its own: learning diverged, the environment failed, the disk is full.
    Its directory keeps the last checkpoint and every metrics row up to it, and says ``failed``;
    the command line exits with code 1."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a training run after its checkpoint was written."""

    def __init__(self, run_dir, resume_command: str | None = None):
        super().__init__(str(run_dir))
        self.run_dir = run_dir
        self.resume_command = resume_command or f"pgzoo train --resume {run_dir}"
