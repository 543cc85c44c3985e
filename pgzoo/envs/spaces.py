"""The two space kinds pgzoo's algorithms understand, independent of the backend."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Discrete:
    n: int
    kind: str = field(default="discrete", init=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Box:
    low: np.ndarray
    high: np.ndarray
    kind: str = field(default="continuous", init=False)

    def __post_init__(self):
        object.__setattr__(self, "low", np.asarray(self.low, np.float32))
        object.__setattr__(self, "high", np.asarray(self.high, np.float32))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.low.shape)

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))


Space = Discrete | Box


@dataclass(frozen=True, eq=False)
class MultiAgent:
    """One space per agent of a multi-agent task (``pgzoo.envs.multi_agent``). Where every
    agent's space is the same (``homogeneous``), values are stacked on an agent axis, [N, A, ...];
    otherwise they are a tuple of per-agent arrays, each [N, ...]."""

    agents: tuple[str, ...]
    spaces: tuple[Space, ...]

    @property
    def kind(self) -> str:
        kinds = {s.kind for s in self.spaces}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    @property
    def homogeneous(self) -> bool:
        first = self.spaces[0]
        return all(s.kind == first.kind and s.shape == first.shape
                   and getattr(s, "n", None) == getattr(first, "n", None) for s in self.spaces)

    @property
    def shape(self) -> tuple:
        """(A, *shape) where homogeneous, else the tuple of the agents' shapes."""
        if self.homogeneous:
            return (len(self.agents), *self.spaces[0].shape)
        return tuple(s.shape for s in self.spaces)

    @property
    def n(self) -> tuple[int, ...]:
        return tuple(getattr(s, "n", 0) for s in self.spaces)


def from_gymnasium(space) -> Space:
    import gymnasium

    if isinstance(space, gymnasium.spaces.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.Box):
        return Box(space.low, space.high)
    raise TypeError(f"{type(space).__name__}")


def from_gymnax(space) -> Space:
    name = type(space).__name__
    if name == "Discrete":
        return Discrete(int(space.n))
    if name == "Box":
        shape = tuple(space.shape)
        return Box(np.broadcast_to(np.asarray(space.low, np.float32), shape),
                   np.broadcast_to(np.asarray(space.high, np.float32), shape))
    raise TypeError(name)
