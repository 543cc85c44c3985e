"""Videos: run a policy in the Gymnasium twin of its environment and write an animated GIF."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pgzoo import envs
from pgzoo.errors import PgzooError
from pgzoo.run.evaluation import Policy


def record_gif(policy: Policy, out: Path, seed: int = 0, max_frames: int = 1000,
               fps: int = 30) -> dict:
    from PIL import Image

    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = envs.render_factory(policy.env_spec)()
    try:
        obs, _ = env.reset(seed=seed)
        frames, total, done = [], 0.0, False
        while not done and len(frames) < max_frames:
            frame = env.render()
            if frame is None:
                raise PgzooError(f"environment {policy.env_spec!r} does not render rgb_array "
                                 "frames, so no video can be made")
            frames.append(Image.fromarray(np.asarray(frame, np.uint8)))
            action = policy(obs)
            if isinstance(policy.action_space, envs.Discrete):
                action = int(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
    finally:
        env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = [f.resize((f.width // 2, f.height // 2)) for f in frames]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0, optimize=True)
    return {"frames": len(frames), "return": total, "path": str(out)}
