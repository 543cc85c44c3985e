"""Videos: run a policy in the Gymnasium twin of its environment and write an animated GIF.

MuJoCo renders through OpenGL, and its default (GLFW) needs a display; on a machine without one
(a server, CI) ``prefer_headless_gl`` picks a headless backend first: EGL (a GPU's, or Mesa's in
software), else OSMesa."""
from __future__ import annotations

import ctypes.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from pgzoo import envs
from pgzoo.errors import PgzooError
from pgzoo.run.evaluation import Policy


HEADLESS_HINT = ("to render MuJoCo tasks without a display, set MUJOCO_GL=egl (or "
                 "MUJOCO_GL=osmesa, with OSMesa installed), or run under a virtual display "
                 "(xvfb-run)")


def prefer_headless_gl() -> str | None:
    """With no display and MUJOCO_GL unset (Linux), set MUJOCO_GL (and PyOpenGL's platform) to
    a headless backend this machine has: egl, else osmesa. MuJoCo reads them when it is imported
    and when it makes its first rendering context, so call this before either. Returns the
    backend chosen, or None when nothing was changed."""
    if (not sys.platform.startswith("linux") or os.environ.get("MUJOCO_GL")
            or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if platform in ("", backend) and ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    return None


def _render(env, spec: str):
    """One frame; a failure is one line naming its first cause (GLFW warns of a missing display
    before MuJoCo fails on the context it could not make)."""
    with warnings.catch_warnings(record=True) as caught:
        try:
            frame = env.render()
        except Exception as err:  # OpenGL back ends raise their own types (FatalError, ...)
            cause = caught[0].message if caught else err
            line = (str(cause).strip().splitlines() or [""])[0]
            raise PgzooError(f"cannot render {spec!r} ({type(cause).__name__}: {line}); "
                             f"{HEADLESS_HINT}") from None
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return frame


def record_gif(policy: Policy, out: Path, seed: int = 0, max_frames: int = 1000,
               fps: int = 30) -> dict:
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    prefer_headless_gl()
    env = envs.render_factory(policy.env_spec)()
    play = _play_agents if isinstance(policy.action_space, envs.MultiAgent) else _play
    try:
        frames, total = play(env, policy, seed, max_frames)
    finally:
        env.close()
    out = Path(out)
    if not out.parent.is_dir():
        raise PgzooError(f"cannot write {out}: the directory {out.parent} does not exist")
    frames = [f.resize((f.width // 2, f.height // 2)) for f in frames]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0, optimize=True)
    return {"frames": len(frames), "return": total, "path": str(out)}


def _frame(env, policy: Policy):
    from PIL import Image

    frame = _render(env, policy.env_spec)
    if frame is None:
        raise PgzooError(f"environment {policy.env_spec!r} does not render rgb_array "
                         "frames, so no video can be made")
    return Image.fromarray(np.asarray(frame, np.uint8))


def _play_agents(env, policy: Policy, seed: int, max_frames: int):
    """One episode of a PettingZoo parallel environment; the return is summed over agents."""
    obs, _ = env.reset(seed=seed)
    frames, total = [], 0.0
    while env.agents and len(frames) < max_frames:
        frames.append(_frame(env, policy))
        full = {a: obs.get(a, np.zeros(s.shape, np.float32)) for a, s in zip(
            policy.action_space.agents, policy._train_env.observation_space.spaces)}
        actions = policy(full)
        obs, rewards, _, _, _ = env.step({a: actions[a] for a in env.agents})
        total += float(sum(rewards.values()))
    return frames, total


def _play(env, policy: Policy, seed: int, max_frames: int):
    """One episode of a Gymnasium environment."""
    obs, _ = env.reset(seed=seed)
    frames, total, done = [], 0.0, False
    while not done and len(frames) < max_frames:
        frames.append(_frame(env, policy))
        action = policy(obs)
        if isinstance(policy.action_space, envs.Discrete):
            action = int(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return frames, total
