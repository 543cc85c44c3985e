"""Atari 2600 games (the Arcade Learning Environment, ``ale-py``) through the Gymnasium bridge.

An ALE id (``ALE/Pong-v5``, ``BreakoutNoFrameskip-v4``, ...) gets the preprocessing of Mnih et al.
(2015) as Gymnasium's ``AtariPreprocessing`` does it -- up to 30 no-op actions at reset, an action
repeated for 4 frames with the max of the last two, the frame resized to 84x84 grey -- and the last
4 frames stacked on the channel axis: observations are [84, 84, 4] images in 0..255, which
``make`` scales to [0, 1]. Rewards are clipped to their sign for learning (``ClipReward``, a JAX
wrapper placed after the episode statistics, so the returns reported are the game's score).

Options, after ``@`` in the spec: ``noop_max``, ``frame_skip``, ``screen_size``, ``frame_stack``,
``terminal_on_life_loss`` (False by default, as Machado et al. 2018 recommend; when True an episode
ends at each lost life, and the returns reported are those of one life), ``clip_reward`` (True);
any other option goes to ``gymnasium.make`` (``repeat_action_probability=0`` turns off the v5
games' sticky actions).
"""
from __future__ import annotations

from pgzoo.errors import PgzooError

PREPROCESSING = {"noop_max": 30, "frame_skip": 4, "screen_size": 84, "frame_stack": 4,
                 "terminal_on_life_loss": False, "clip_reward": True}
ENTRY_POINT = "ale_py.env:AtariEnv"


def looks_like_atari(env_id: str) -> bool:
    """An id of the form ALE registers (before ``ale_py`` is imported, the registry lacks them)."""
    return env_id.startswith("ALE/") or env_id.endswith(("NoFrameskip-v4", "NoFrameskip-v0"))


def register() -> None:
    """Import ``ale_py``, which registers its games with Gymnasium."""
    try:
        import ale_py  # noqa: F401  (registers ALE/... ids)
    except ImportError:
        raise PgzooError("Atari games need ale-py, which ships the ROMs: pip install "
                         "'pgzoo[atari]'") from None


def is_atari(entry_point) -> bool:
    return entry_point == ENTRY_POINT


def split_options(options: dict) -> tuple[dict, dict]:
    """(keyword arguments for ``gymnasium.make``, preprocessing options with defaults filled)."""
    prep, rest = dict(PREPROCESSING), {}
    for key, value in options.items():
        if key not in prep:
            rest[key] = value
            continue
        if isinstance(PREPROCESSING[key], bool):
            ok, valid = isinstance(value, bool), "True or False"
        else:
            least = 0 if key == "noop_max" else 1
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= least
            valid = f"an integer >= {least}"
        if not ok:
            raise PgzooError(f"Atari option {key} must be {valid}, got {value!r}")
        prep[key] = value
    return rest, prep


def preprocess(env, prep: dict):
    """Gymnasium's Atari preprocessing and frame stacking, frames last: [H, W, stack]."""
    import gymnasium
    import numpy as np
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformObservation

    env = AtariPreprocessing(env, noop_max=prep["noop_max"], frame_skip=prep["frame_skip"],
                             screen_size=prep["screen_size"],
                             terminal_on_life_loss=prep["terminal_on_life_loss"],
                             grayscale_obs=True, scale_obs=False)
    env = FrameStackObservation(env, prep["frame_stack"])
    size = prep["screen_size"]
    space = gymnasium.spaces.Box(0, 255, (size, size, prep["frame_stack"]), np.uint8)
    return TransformObservation(env, lambda obs: np.moveaxis(np.asarray(obs), 0, -1), space)
