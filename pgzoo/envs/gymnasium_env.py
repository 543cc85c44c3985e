"""The host bridge: any Gymnasium environment behind pgzoo's functional protocol.

The simulators live on the host; ``reset`` and ``step`` are JAX ``io_callback``s, so an algorithm's
rollout is the same compiled code for this backend and for JAX-native ones. The JAX-side state is
only a step counter: the simulator state itself cannot be checkpointed, which is why resuming a run
on this backend starts fresh episodes (``resume``) while keeping every learned statistic.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from pgzoo.envs import spaces, tabular
from pgzoo.envs.protocol import Env, TimeStep, initial_timestep
from pgzoo.errors import PgzooError


def _describe(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _check_step_tuple(out) -> None:
    if not (isinstance(out, tuple) and len(out) == 5):
        got = f"{len(out)} values" if isinstance(out, tuple) else f"a {type(out).__name__}"
        raise PgzooError("step() must return (observation, reward, terminated, truncated, info) "
                         f"as in the Gymnasium API; it returned {got}")


class GymnasiumEnv(Env):
    jax_native = False

    def __init__(self, make_env: Callable[[], object], num_envs: int, spec: str):
        self.spec = spec
        self.num_envs = num_envs
        self._make_env = make_env
        self._error: Exception | None = None
        self._envs = [self._create() for _ in range(num_envs)]
        first = self._envs[0]
        try:
            self.observation_space = spaces.from_gymnasium(first.observation_space)
            self.action_space = spaces.from_gymnasium(first.action_space)
        except TypeError as err:
            raise PgzooError(
                f"environment {spec!r} has a {err} space; pgzoo supports Box or Discrete "
                "observations and Discrete or Box actions") from None
        gym_spec = getattr(first, "spec", None)
        self.max_episode_steps = getattr(gym_spec, "max_episode_steps", None)
        obs_shape = self.observation_space.shape
        n = num_envs
        self._obs_struct = jax.ShapeDtypeStruct((n, *obs_shape), jnp.float32)
        self._step_struct = (
            self._obs_struct, jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((n,), jnp.bool_), jax.ShapeDtypeStruct((n,), jnp.bool_),
            self._obs_struct)
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        self._probe(first)

    def _create(self):
        try:
            return self._make_env()
        except PgzooError:
            raise
        except Exception as err:
            raise PgzooError(f"environment {self.spec!r} raised {_describe(err)} when created"
                             ) from None

    def _probe(self, env) -> None:
        """One reset and one step of the first copy before training, so that an environment that
        breaks the Gymnasium API fails here with one line (and not inside a compiled call)."""
        where = "reset"
        try:
            out = env.reset(seed=0)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise PgzooError("reset() must return (observation, info)")
            self._check_obs(out[0], "reset")
            where = "step"
            sample = env.action_space.sample()
            out = env.step(sample)
            _check_step_tuple(out)
            self._check_obs(out[0], "step")
            self._check_reward(out[1])
        except PgzooError as err:
            raise PgzooError(f"environment {self.spec!r}: {err}") from None
        except Exception as err:
            raise PgzooError(f"environment {self.spec!r} raised {_describe(err)} in {where}()"
                             ) from None

    def _check_obs(self, obs, where: str) -> np.ndarray:
        try:
            arr = np.asarray(obs, np.float32)
        except (TypeError, ValueError):
            raise PgzooError(f"{where}() returned an observation that is not an array of numbers"
                             ) from None
        if arr.shape != self.observation_space.shape:
            raise PgzooError(f"{where}() returned an observation of shape {arr.shape}; its "
                             f"observation space has shape {self.observation_space.shape}")
        if not np.isfinite(arr).all():
            raise PgzooError(f"{where}() returned a non-finite observation (NaN or infinity); "
                             "pgzoo needs finite observations")
        return arr

    def _check_reward(self, reward) -> float:
        try:
            r = float(reward)
        except (TypeError, ValueError):
            raise PgzooError(f"step() returned a reward that is not a number: {reward!r}"
                             ) from None
        if not np.isfinite(r):
            raise PgzooError(f"step() returned a non-finite reward ({r}); pgzoo needs finite "
                             "rewards")
        return r

    def tabular_model(self):
        """The toy-text tables of the simulator (``P``), where it has them."""
        return tabular.from_gymnasium(self._envs[0]) if tabular.has_table(self._envs[0]) else None

    def host_error(self) -> Exception | None:
        return self._error

    def _guard(self, fn, *args, empty):
        """Run a host callback. If the simulator fails, the error is recorded and the callback
        returns zeros from then on: raising inside a compiled call would only surface as a JAX
        runtime error with a logged traceback. The caller checks ``host_error`` after the call
        and discards what it computed."""
        if self._error is None:
            try:
                return fn(*args)
            except Exception as err:
                self._error = (PgzooError(f"environment {self.spec!r}: {err}")
                               if isinstance(err, PgzooError) else
                               PgzooError(f"environment {self.spec!r} raised {_describe(err)}"))
        return empty()

    # --- host side -------------------------------------------------------------------------
    def _host_reset(self, seed):
        return self._guard(self._reset_all, seed,
                           empty=lambda: np.zeros(self._obs_struct.shape, np.float32))

    def _reset_all(self, seed):
        seed = int(seed)
        obs = [self._check_obs(env.reset(seed=seed + i)[0], "reset")
               for i, env in enumerate(self._envs)]
        return np.asarray(obs, np.float32).reshape(self._obs_struct.shape)

    def _host_step(self, actions):
        return self._guard(self._step_all, actions, empty=self._empty_step)

    def _empty_step(self):
        obs, flags = np.zeros(self._obs_struct.shape, np.float32), np.zeros(self.num_envs, bool)
        return obs, np.zeros(self.num_envs, np.float32), flags, flags, obs

    def _step_all(self, actions):
        actions = np.asarray(actions)
        n = self.num_envs
        obs = np.empty(self._obs_struct.shape, np.float32)
        final = np.empty_like(obs)
        rewards = np.empty(n, np.float32)
        terminated = np.empty(n, bool)
        truncated = np.empty(n, bool)
        for i, env in enumerate(self._envs):
            action = int(actions[i]) if self._discrete else actions[i]
            out = env.step(action)
            _check_step_tuple(out)
            o, r, term, trunc, _ = out
            final[i] = self._check_obs(o, "step")
            rewards[i], terminated[i] = self._check_reward(r), term
            truncated[i] = trunc and not term
            obs[i] = self._check_obs(env.reset()[0], "reset") if (term or trunc) else final[i]
        return obs, rewards, terminated, truncated, final

    # --- JAX side --------------------------------------------------------------------------
    def reset(self, key):
        seed = jax.random.randint(key, (), 0, 2**30)
        obs = io_callback(self._host_reset, self._obs_struct, seed, ordered=True)
        return jnp.zeros((), jnp.int32), initial_timestep(obs, self.num_envs)

    def step(self, state, action, key):
        obs, reward, terminated, truncated, final = io_callback(
            self._host_step, self._step_struct, action, ordered=True)
        return state + 1, TimeStep(obs, reward, terminated, truncated, final, {})

    def close(self) -> None:
        for env in self._envs:
            env.close()
