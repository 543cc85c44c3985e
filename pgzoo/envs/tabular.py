"""Finite MDPs: the tables p(s', r | s, a) that dynamic programming plans with, and a JAX-native
environment that samples them.

A ``TabularModel`` holds, for S states and A actions,

    transitions[s, a, s'] = P(s' | s, a)
    rewards[s, a, s']     = E[r | s, a, s']
    terminates[s, a, s']  = P(the episode terminates | s, a, s')   (0 or 1 for every task here)
    initial[s]            = P(s_0 = s)

and, for grid worlds, the grid's shape, the cell letters (``S`` start, ``G`` goal, ``H`` hole,
``C`` cliff) and each action's move (d_row, d_col), which the value heat maps draw. Models come
from Gymnasium's toy-text tasks (their ``P`` tables: FrozenLake, CliffWalking, Taxi), from a
user's arrays (``from_arrays``), or from an ``.npz`` file (``save``/``load``: plain arrays, no
pickle).

``TabularEnv`` is the JAX-native environment of a model: its observation is the state index (a
``Discrete`` space; the environment layer one-hot encodes it for the deep algorithms), and it
steps inside ``jit``, so tabular learners over many seeds are one compiled call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.envs import spaces
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep
from pgzoo.errors import PgzooError

# Gymnasium's toy-text tasks that get a JAX-native version from their own tables
TOY_TEXT = ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4")
# the actions' moves on the grid, (d_row, d_col), of the grid worlds among them
MOVES = {"FrozenLakeEnv": ((0, -1), (1, 0), (0, 1), (-1, 0)),  # left, down, right, up
         "CliffWalkingEnv": ((-1, 0), (0, 1), (1, 0), (0, -1))}  # up, right, down, left


OUTCOME_ARRAYS = ("outcome_next", "outcome_prob", "outcome_reward", "outcome_terminates")


class TabularModel(NamedTuple):
    transitions: np.ndarray  # [S, A, S'] P(s'|s, a)
    rewards: np.ndarray  # [S, A, S'] E[r | s, a, s']
    terminates: np.ndarray  # [S, A, S'] P(terminated | s, a, s')
    initial: np.ndarray  # [S] P(s_0)
    grid: tuple[int, int] | None = None  # (rows, cols) of a grid world, state = row * cols + col
    labels: str | None = None  # one letter per state (grid worlds): S, G, H, C or .
    moves: tuple[tuple[int, int], ...] | None = None  # per action (d_row, d_col) on the grid
    # what the environment samples, where one (s, a, s') has several rewards (a Gymnasium table
    # lists each outcome): [S, A, K] next state, probability, reward, termination; None: the
    # expected tables above, one outcome per s'
    outcomes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]


def from_arrays(transitions, rewards, initial=None, terminates=None, grid=None, labels=None,
                moves=None) -> TabularModel:
    """A model from arrays: ``transitions`` [S, A, S'] (rows sum to 1), ``rewards`` [S, A, S']
    or [S, A], ``initial`` [S] (default: state 0), ``terminates`` [S, A, S'] or a terminal-state
    mask [S] (default: no termination)."""
    try:
        p = np.asarray(transitions, np.float64)
        r = np.asarray(rewards, np.float64)
    except (TypeError, ValueError):
        raise PgzooError("transitions and rewards must be arrays of numbers") from None
    if p.ndim != 3 or p.shape[0] != p.shape[2] or 0 in p.shape:
        raise PgzooError(f"transitions must have shape [S, A, S] with S, A >= 1, got {p.shape}")
    s, a, _ = p.shape
    if r.shape == (s, a):
        r = np.broadcast_to(r[:, :, None], p.shape)
    if r.shape != p.shape:
        raise PgzooError(f"rewards must have shape {p.shape} or {(s, a)}, got {r.shape}")
    if not (np.isfinite(p).all() and np.isfinite(r).all()):
        raise PgzooError("transitions and rewards must be finite")
    if (p < 0).any() or not np.allclose(p.sum(-1), 1.0, atol=1e-6):
        raise PgzooError("every transitions[s, a, :] must be a probability distribution "
                         "(non-negative, summing to 1)")
    init = np.eye(s)[0] if initial is None else np.asarray(initial, np.float64)
    if init.shape != (s,) or (init < 0).any() or not np.isclose(init.sum(), 1.0, atol=1e-6):
        raise PgzooError(f"initial must be a probability distribution over the {s} states")
    if terminates is None:
        term = np.zeros(p.shape)
    else:
        term = np.asarray(terminates, np.float64)
        if term.shape == (s,):  # a terminal-state mask: entering one ends the episode
            term = np.broadcast_to(term[None, None, :], p.shape)
        if term.shape != p.shape or (term < 0).any() or (term > 1).any():
            raise PgzooError(f"terminates must be a mask of shape {(s,)} or probabilities of "
                             f"shape {p.shape}")
    if grid is not None:
        grid = (int(grid[0]), int(grid[1]))
        if grid[0] * grid[1] != s:
            raise PgzooError(f"grid {grid} must have rows x cols = {s} cells")
    if labels is not None and len(labels) != s:
        raise PgzooError(f"labels must have one letter per state ({s}), got {len(labels)}")
    if moves is not None and len(moves) != a:
        raise PgzooError(f"moves must give one (d_row, d_col) per action ({a})")
    f32 = np.float32
    return TabularModel(p.astype(f32), np.array(r, f32), np.array(term, f32), init.astype(f32),
                        grid, labels, None if moves is None else tuple(map(tuple, moves)))


def _outcome_tables(entries: list[list[list[tuple]]]):
    """[S][A] lists of (probability, next_state, reward, terminated) as [S, A, K] arrays."""
    k = max(len(e) for row in entries for e in row)
    s, a = len(entries), len(entries[0])
    nxt = np.zeros((s, a, k), np.int32)
    prob, reward, term = (np.zeros((s, a, k), np.float32) for _ in range(3))
    for i, row in enumerate(entries):
        for j, outcomes in enumerate(row):
            for m, (pr, n, r, d) in enumerate(outcomes):
                prob[i, j, m], nxt[i, j, m], reward[i, j, m], term[i, j, m] = pr, n, r, float(d)
    return nxt, prob, reward, term


def has_table(env: Any) -> bool:
    """Whether a Gymnasium environment exposes a toy-text ``P`` table over Discrete spaces that
    describes it whole (Taxi's fickle passenger changes the destination outside ``P``)."""
    u = env.unwrapped
    return (isinstance(getattr(u, "P", None), dict) and hasattr(u.observation_space, "n")
            and hasattr(u.action_space, "n") and not getattr(u, "fickle_passenger", False))


def from_gymnasium(env: Any) -> TabularModel:
    """The model of a Gymnasium environment with a ``P`` table (the toy-text tasks): ``P[s][a]``
    lists ``(probability, next_state, reward, terminated)``; the start distribution is its
    ``initial_state_distrib`` (state 0 when it has none)."""
    u = env.unwrapped
    s, a = int(u.observation_space.n), int(u.action_space.n)
    p, r, term = np.zeros((s, a, s)), np.zeros((s, a, s)), np.zeros((s, a, s))
    for state in range(s):
        for action in range(a):
            for prob, nxt, reward, done in u.P[state][action]:
                p[state, action, nxt] += prob
                r[state, action, nxt] += prob * reward  # averaged below
                term[state, action, nxt] += prob * float(done)
    nonzero = np.where(p > 0, p, 1.0)
    r, term = r / nonzero, term / nonzero
    desc = getattr(u, "desc", None)
    grid, labels = None, None
    if desc is not None and np.size(desc) == s:  # FrozenLake: the map's letters
        grid = desc.shape
        labels = "".join(c.decode() if isinstance(c, bytes) else str(c) for c in desc.ravel())
    elif hasattr(u, "shape") and int(np.prod(u.shape)) == s:  # CliffWalking: 4 x 12
        grid = tuple(u.shape)
        cells = ["."] * s
        for i in np.flatnonzero(np.asarray(getattr(u, "_cliff", np.zeros(u.shape))).ravel()):
            cells[i] = "C"
        cells[int(u.start_state_index)] = "S"
        cells[s - 1] = "G"
        labels = "".join(cells)
    moves = MOVES.get(type(u).__name__) if grid is not None else None
    model = from_arrays(p, r, getattr(u, "initial_state_distrib", None), term, grid, labels, moves)
    outcomes = _outcome_tables([[list(u.P[i][j]) for j in range(a)] for i in range(s)])
    return model._replace(outcomes=outcomes)


def save(model: TabularModel, path) -> None:
    """Write a model as an ``.npz`` of plain arrays (loadable without pickle)."""
    extra = {}
    if model.grid is not None:
        extra["grid"] = np.asarray(model.grid, np.int64)
    if model.labels is not None:
        extra["labels"] = np.asarray(model.labels)
    if model.moves is not None:
        extra["moves"] = np.asarray(model.moves, np.int64)
    if model.outcomes is not None:
        extra.update(zip(OUTCOME_ARRAYS, model.outcomes, strict=True))
    np.savez(path, transitions=model.transitions, rewards=model.rewards,
             terminates=model.terminates, initial=model.initial, **extra)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PgzooError(f"MDP file {str(path)!r} does not exist") from None
    except (OSError, ValueError, EOFError) as err:
        raise PgzooError(f"MDP file {str(path)!r} is not a readable .npz of arrays: "
                         f"{(str(err).splitlines() or [type(err).__name__])[0]}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise PgzooError(f"MDP file {str(path)!r} is not a readable .npz of arrays: it holds "
                         "one array; write named arrays with pgzoo.envs.tabular.save or np.savez")
    try:
        with data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise PgzooError(f"MDP file {str(path)!r} is not a readable .npz of arrays: "
                         f"{(str(err).splitlines() or [type(err).__name__])[0]}") from None


def load(path) -> TabularModel:
    """A model from an ``.npz`` file with arrays ``transitions``, ``rewards`` and optionally
    ``initial``, ``terminates``, ``grid``, ``labels``, ``moves`` (as ``from_arrays``)."""
    return _model_of(_read_npz(Path(path)), Path(path))


def _model_of(arrays: dict[str, np.ndarray], path: Path) -> TabularModel:
    missing = {"transitions", "rewards"} - set(arrays)
    if missing:
        raise PgzooError(f"MDP file {str(path)!r} lacks the arrays {', '.join(sorted(missing))}; "
                         "it needs transitions [S, A, S] and rewards [S, A, S] or [S, A]")
    labels = arrays.get("labels")
    model = from_arrays(arrays["transitions"], arrays["rewards"], arrays.get("initial"),
                        arrays.get("terminates"), arrays.get("grid"),
                        None if labels is None else str(labels), arrays.get("moves"))
    if all(name in arrays for name in OUTCOME_ARRAYS):
        nxt, prob, reward, term = (arrays[name] for name in OUTCOME_ARRAYS)
        shape = model.transitions.shape[:2]
        if not (nxt.ndim == 3 and nxt.shape[:2] == shape and prob.shape == reward.shape
                == term.shape == nxt.shape and nxt.dtype.kind in "iu"
                and ((nxt >= 0) & (nxt < shape[0])).all()
                and np.allclose(prob.sum(-1), 1.0, atol=1e-6)):
            raise PgzooError(f"MDP file {str(path)!r}: the outcome arrays "
                             f"{', '.join(OUTCOME_ARRAYS)} must be [S, A, K] with valid states "
                             "and probabilities")
        model = model._replace(outcomes=(nxt.astype(np.int32), prob.astype(np.float32),
                                         reward.astype(np.float32), term.astype(np.float32)))
    return model


class TabularState(NamedTuple):
    state: jax.Array  # [N] int32, the current state index
    t: jax.Array  # [N] int32, steps into the episode


class TabularEnv(Env):
    """A batch of ``num_envs`` copies of a finite MDP, stepping inside ``jit``."""

    jax_native = True

    def __init__(self, model: TabularModel, num_envs: int, spec: str,
                 max_episode_steps: int | None = None):
        self.model = model
        self.num_envs = num_envs
        self.spec = spec
        self.max_episode_steps = max_episode_steps
        self.observation_space = spaces.Discrete(model.num_states)
        self.action_space = spaces.Discrete(model.num_actions)
        if model.outcomes is None:  # one outcome per next state, with its expected reward
            num_states = model.num_states
            nxt = np.broadcast_to(np.arange(num_states, dtype=np.int32), model.transitions.shape)
            outcomes = (nxt, model.transitions, model.rewards, model.terminates)
        else:
            outcomes = model.outcomes
        self._next, log_p, self._rewards, self._terminates = map(jnp.asarray, outcomes)
        self._log_p = jnp.log(log_p)
        self._log_initial = jnp.log(jnp.asarray(model.initial))

    def tabular_model(self) -> TabularModel:
        return self.model

    def _start(self, key):
        return jax.random.categorical(key, self._log_initial, shape=(self.num_envs,))

    def reset(self, key):
        s = self._start(key).astype(jnp.int32)
        zeros = jnp.zeros(self.num_envs, jnp.int32)
        return TabularState(s, zeros), initial_timestep(s.astype(jnp.float32), self.num_envs)

    def step(self, state, action, key):
        next_key, end_key, reset_key = jax.random.split(key, 3)
        s, a = state.state, action.astype(jnp.int32)
        outcome = jax.random.categorical(next_key, self._log_p[s, a])  # one of P's entries
        nxt = self._next[s, a, outcome]
        reward = self._rewards[s, a, outcome]
        terminated = jax.random.uniform(end_key, (self.num_envs,)) < self._terminates[s, a, outcome]
        t = state.t + 1
        truncated = jnp.zeros_like(terminated)
        if self.max_episode_steps is not None:
            truncated = (t >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        start = self._start(reset_key).astype(jnp.int32)
        new_s = jnp.where(done, start, nxt)
        ts = TimeStep(new_s.astype(jnp.float32), reward, terminated, truncated,
                      nxt.astype(jnp.float32), {})
        return TabularState(new_s, jnp.where(done, 0, t)), ts


def toy_text(env_id: str, num_envs: int = 1, **options) -> TabularEnv:
    """The JAX-native version of a Gymnasium toy-text task, built from its own tables, with its
    registered time limit; ``options`` are the task's keyword arguments (``is_slippery``, ...)."""
    import gymnasium

    try:
        env = gymnasium.make(env_id, **options)
    except TypeError as err:
        raise PgzooError(f"environment {env_id!r} does not take these options: {err}") from None
    spec = env_id + ("@" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
    if not has_table(env):
        raise PgzooError(f"{spec} changes outside its transition table (Taxi's fickle "
                         f"passenger), so it has no JAX-native version; train a model-free "
                         f"method on gymnasium:{spec}")
    model = from_gymnasium(env)
    return TabularEnv(model, num_envs, spec, env.spec.max_episode_steps)


def from_file(path: str, num_envs: int = 1) -> TabularEnv:
    """The environment of an ``.npz`` model file (``mdp:PATH``); episodes have no time limit
    unless the file has a scalar ``max_episode_steps``."""
    arrays = _read_npz(Path(path))
    limit = arrays.get("max_episode_steps")
    if limit is not None and (limit.shape != () or limit.dtype.kind not in "iu" or limit < 1):
        raise PgzooError(f"MDP file {path!r}: max_episode_steps must be a positive integer")
    return TabularEnv(_model_of(arrays, Path(path)), num_envs, f"mdp:{path}",
                      None if limit is None else int(limit))
