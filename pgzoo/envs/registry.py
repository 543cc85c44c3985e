"""``make(spec)``: from a spec string to a wrapped, batched environment.

Resolution: ``gymnax:ID``, ``brax:NAME``, ``pgzoo:ID`` and ``gymnasium:ID`` name a backend;
``mdp:PATH.npz`` is a finite MDP given as arrays (``pgzoo.envs.tabular``);
``package.module:ClassName`` loads a user's Gymnasium environment class; a plain ``ID`` picks the
JAX-native version when one exists (gymnax, or pgzoo's own tasks, among them the toy-text tasks
built from their tables) and otherwise any registered Gymnasium id through the host bridge.

Options: ``ID@key=value,key=value`` passes keyword arguments to a Gymnasium id or a toy-text task
(``FrozenLake-v1@is_slippery=False``); values are Python literals (True, 3, 0.5) or strings.
"""
from __future__ import annotations

import ast
import importlib
import sys
from functools import lru_cache, partial

from pgzoo.envs import atari, multi_agent, spaces
from pgzoo.envs.quiet import quiet_mujoco_deprecations
from pgzoo.envs.brax_env import BraxEnv
from pgzoo.envs.gymnasium_env import GymnasiumEnv
from pgzoo.envs.gymnax_env import GymnaxEnv
from pgzoo.envs.multigoal import MultiGoalEnv
from pgzoo.envs.protocol import Env
from pgzoo.envs.tabular import TOY_TEXT, from_file, toy_text
from pgzoo.envs.wrappers import (
    ClipReward,
    EpisodeStatistics,
    NormalizeObservation,
    NormalizeReward,
    OneHotObservation,
    RescaleAction,
    ScaleImage,
    is_image,
)
from pgzoo.errors import PgzooError

BACKENDS = {
    "gymnax": "JAX-native, compiled with the algorithm (classic control, MinAtar, bsuite, misc)",
    "pgzoo": "JAX-native tasks of pgzoo's own: MultiGoal-v0 (soft Q-learning's multi-goal task); "
             "FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1, Taxi-v4 from Gymnasium's tables",
    "mdp": "a finite MDP of your own as arrays: mdp:PATH.npz (pgzoo.envs.tabular.save)",
    "brax": "JAX-native physics (brax:halfcheetah, brax:ant, ...; brax:NAME@PIPELINE), "
            "compiled with the algorithm; pip install 'pgzoo[brax]'",
    "gymnasium": "any registered Gymnasium id (MuJoCo, Box2D, ...) through a host bridge; "
                 "Atari (ALE/Pong-v5, ...) with its standard preprocessing: "
                 "pip install 'pgzoo[atari]'",
    "package.module:ClassName": "a user's own gymnasium.Env class, through the host bridge",
    "jaxmarl": "multi-agent, JAX-native (jaxmarl:MPE_simple_spread_v3, ...); "
               "pip install 'pgzoo[marl]'",
    "pettingzoo": "multi-agent, a PettingZoo parallel environment through a host bridge "
                  "(pettingzoo:mpe2.simple_spread_v3, ...); pip install 'pgzoo[marl]'",
}
MULTI_AGENT_BACKENDS = ("jaxmarl", "pettingzoo")


# pgzoo's own JAX-native tasks: id -> factory(num_envs, **options)
OWN = {"MultiGoal-v0": MultiGoalEnv, **{env_id: partial(toy_text, env_id) for env_id in TOY_TEXT}}


def split_options(env_id: str) -> tuple[str, dict]:
    """``ID@key=value,...`` -> (ID, {key: value}); values are Python literals or strings."""
    env_id, sep, rest = env_id.partition("@")
    options = {}
    for item in rest.split(",") if sep else ():
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise PgzooError(f"environment option {item!r} must be key=value, as in "
                             "FrozenLake-v1@is_slippery=False,map_name=8x8")
        try:
            options[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[key.strip()] = value.strip()
    return env_id, options


@lru_cache
def jax_native_ids() -> tuple[str, ...]:
    """The gymnax ids (pgzoo's own JAX-native tasks are ``OWN``)."""
    import gymnax

    return tuple(gymnax.registered_envs)


def _gymnasium_ids() -> list[str]:
    import gymnasium

    return sorted(gymnasium.envs.registry.keys())


def _unknown(env_id: str, where: str) -> PgzooError:
    examples = ", ".join(jax_native_ids()[:5])
    return PgzooError(
        f"unknown environment {env_id!r} ({where}); valid: a JAX-native id ({examples}, ... "
        "see `pgzoo list`), a registered Gymnasium id (e.g. gymnasium:HalfCheetah-v5), or "
        "package.module:ClassName")


def _registered(env_id: str) -> bool:
    import gymnasium

    if env_id not in gymnasium.envs.registry and atari.looks_like_atari(env_id):
        atari.register()
    return env_id in gymnasium.envs.registry


def _atari_preprocessing(spec_id: str) -> dict | None:
    """The preprocessing options of an Atari spec (``pgzoo.envs.atari``); None for other ids."""
    import gymnasium

    env_id, options = split_options(spec_id)
    if not (_registered(env_id) and atari.is_atari(gymnasium.envs.registry[env_id].entry_point)):
        return None
    return atari.split_options(options)[1]


def _gymnasium_factory(spec_id: str, render_mode: str | None = None):
    import gymnasium

    env_id, options = split_options(spec_id)
    if not _registered(env_id):
        raise _unknown(env_id, "not a registered Gymnasium id")
    entry_point = gymnasium.envs.registry[env_id].entry_point
    prep = None
    if atari.is_atari(entry_point):  # the preprocessing repeats actions: the game itself must not
        options, prep = atari.split_options(options)
        options = {**options, "frameskip": 1}

    def factory():
        try:
            with quiet_mujoco_deprecations(isinstance(entry_point, str) and entry_point.startswith(
                    "gymnasium.envs.mujoco")):
                env = gymnasium.make(env_id, render_mode=render_mode, **options)
                return env if prep is None else atari.preprocess(env, prep)
        except (ImportError, gymnasium.error.DependencyNotInstalled) as err:
            raise PgzooError(f"environment {env_id!r} needs an extra dependency: {err}".replace(
                "\n", " ")) from None
        except TypeError as err:
            raise PgzooError(f"environment {env_id!r} does not take the options "
                             f"{options}: {err}") from None
    return factory


def _user_class_factory(target: str, render_mode: str | None = None):
    import gymnasium

    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise PgzooError(f"environment {target!r} must be package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PgzooError(f"cannot import module {module_name!r} for environment {target!r}: "
                         f"{err}; expected package.module:ClassName") from None
    except Exception as err:  # the module itself failed: a SyntaxError, an error at import
        line = (str(err).strip().splitlines() or [""])[0]
        raise PgzooError(f"importing module {module_name!r} for environment {target!r} raised "
                         f"{type(err).__name__}: {line}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, gymnasium.Env)):
        raise PgzooError(f"{target!r} is not a gymnasium.Env class; expected "
                         "package.module:ClassName naming a subclass of gymnasium.Env")

    def factory():
        return cls(render_mode=render_mode) if render_mode else cls()
    return factory


def imports_code(spec: str) -> str | None:
    """The module that making ``spec`` would import and run (a user's environment class), or
    None when ``spec`` names a registered environment or one whose module is already imported."""
    backend, target = resolve(spec)
    if backend != "class":
        return None
    module = target.partition(":")[0]
    return None if module in sys.modules else module


def resolve(spec: str) -> tuple[str, str]:
    """Split a spec into (backend, id): backend is 'gymnax', 'brax', 'pgzoo' (pgzoo's own
    JAX-native tasks), 'mdp' (a model file), 'gymnasium' or 'class'. The id keeps its
    ``@options``."""
    if not isinstance(spec, str) or not spec.strip():
        raise PgzooError("environment spec must be a non-empty string such as CartPole-v1")
    prefix, sep, rest = spec.partition(":")
    if sep:
        if prefix == "gymnax":
            if rest not in jax_native_ids():
                raise _unknown(rest, "not a gymnax id")
            return "gymnax", rest
        if prefix == "gymnasium":
            return "gymnasium", rest
        if prefix == "brax":
            return "brax", rest
        if prefix == "pgzoo":
            if split_options(rest)[0] not in OWN:
                raise _unknown(rest, f"pgzoo's own tasks are {', '.join(OWN)}")
            return "pgzoo", rest
        if prefix == "mdp":
            return "mdp", rest
        if prefix in MULTI_AGENT_BACKENDS:
            return prefix, rest
        return "class", spec
    if spec in jax_native_ids():
        return "gymnax", spec
    if split_options(spec)[0] in OWN:
        return "pgzoo", spec
    return "gymnasium", spec


def check_known(spec: str) -> None:
    """A one-line error for a spec that names no known environment, without making one (a
    Gymnasium id must be registered; a user's class is not imported; Brax ids are checked when
    the environment is made)."""
    backend, env_id = resolve(spec)
    if backend == "gymnasium" and not _registered(split_options(env_id)[0]):
        raise _unknown(env_id, "not a registered Gymnasium id")


def make_base(spec: str, num_envs: int = 1) -> Env:
    if not isinstance(num_envs, int) or num_envs < 1:
        raise PgzooError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    backend, env_id = resolve(spec)
    if backend == "gymnax":
        return GymnaxEnv(env_id, num_envs)
    if backend == "brax":
        return BraxEnv(env_id, num_envs)
    if backend == "pgzoo":
        name, options = split_options(env_id)
        try:
            return OWN[name](num_envs, **options)
        except TypeError as err:
            raise PgzooError(f"environment {name!r} does not take the options {options}: "
                             f"{err}") from None
    if backend == "mdp":
        return from_file(env_id, num_envs)
    if backend in MULTI_AGENT_BACKENDS:
        name, options = split_options(env_id)
        return multi_agent.make_base(backend, name, num_envs, options)
    if backend == "gymnasium":
        return GymnasiumEnv(_gymnasium_factory(env_id), num_envs, f"gymnasium:{env_id}")
    return GymnasiumEnv(_user_class_factory(env_id), num_envs, env_id)


def make(spec: str, num_envs: int = 1, normalize_obs: bool = False,
         normalize_reward: bool = False, gamma: float = 0.99, one_hot: bool = True) -> Env:
    """A batch of ``num_envs`` copies of ``spec`` with episode statistics, rewards clipped to
    their sign for Atari games (after the statistics), images scaled to [0, 1], [-1, 1] actions for
    bounded boxes, a one-hot encoding of discrete observations (unless ``one_hot`` is False: the
    tabular methods see the state index), and optional observation and reward normalisation."""
    backend, env_id = resolve(spec)
    if backend in MULTI_AGENT_BACKENDS:
        if normalize_obs or normalize_reward:
            raise PgzooError(f"{spec} is a multi-agent task, and observation and reward "
                             "normalisation are not built for those; leave normalize_obs and "
                             "normalize_reward off")
        if not isinstance(num_envs, int) or num_envs < 1:
            raise PgzooError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        name, options = split_options(env_id)
        return multi_agent.make(backend, name, num_envs, options)
    env: Env = EpisodeStatistics(make_base(spec, num_envs))
    if backend == "gymnasium" and (_atari_preprocessing(env_id) or {}).get("clip_reward"):
        env = ClipReward(env)
    if is_image(env.observation_space):
        env = ScaleImage(env)
    if one_hot and isinstance(env.observation_space, spaces.Discrete):
        env = OneHotObservation(env)
    if isinstance(env.action_space, spaces.Box) and env.action_space.bounded:
        env = RescaleAction(env)
    if normalize_obs:
        env = NormalizeObservation(env)
    if normalize_reward:
        env = NormalizeReward(env, gamma=gamma)
    return env


def render_factory(spec: str):
    """A factory for the Gymnasium twin of ``spec`` in rgb_array mode, for videos (for a
    multi-agent task, its PettingZoo parallel twin)."""
    backend, env_id = resolve(spec)
    if backend in MULTI_AGENT_BACKENDS:  # a PettingZoo parallel environment
        return multi_agent.render_factory(backend, *split_options(env_id))
    if backend == "class":
        return _user_class_factory(env_id, render_mode="rgb_array")
    if backend in ("brax", "pgzoo", "mdp") and split_options(env_id)[0] not in TOY_TEXT:
        raise PgzooError(f"environment {spec!r} has no Gymnasium twin to render a video with; "
                         "videos work for Gymnasium ids and their JAX-native versions")
    try:
        return _gymnasium_factory(env_id, render_mode="rgb_array")
    except PgzooError:
        raise PgzooError(f"environment {spec!r} has no Gymnasium twin to render a video with; "
                         "videos work for Gymnasium ids and their JAX-native versions") from None
