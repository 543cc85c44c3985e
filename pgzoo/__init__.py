"""pgzoo: the policy-gradient family of reinforcement-learning algorithms in JAX."""
__version__ = "0.1.0"

from pgzoo.api import Run, evaluate, load, resume, train  # noqa: E402
from pgzoo.errors import PgzooError  # noqa: E402

__all__ = ["PgzooError", "Run", "evaluate", "load", "resume", "train", "__version__"]
