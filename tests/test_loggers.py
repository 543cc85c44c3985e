"""What a run leaves for the tools a user reads it with: TensorBoard events read back with
TensorBoard's own reader, a Weights & Biases run written offline and read back from its .wandb
file, `pgzoo eval` results that keep the training's eval.json, and videos of MuJoCo tasks on a
machine without a display (as CI is).

Two small runs are shared by the tests of this module: PPO on CartPole with TensorBoard and
wandb, resumed once, and PPO through the Gymnasium bridge on InvertedPendulum."""
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pgzoo.cli import main
from pgzoo.run import rundir

TESTS = Path(__file__).resolve().parent
TINY = ["--env", "CartPole-v1", "--eval-episodes", "2", "--set", "num_envs=2", "--set",
        "num_steps=64", "--set", "num_minibatches=2", "--no-progress"]


def wandb_offline(mp, home: Path) -> None:
    """wandb offline, its own files under ``home``; were anything to try the network, it would
    reach a closed port on this machine."""
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    mp.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    mp.delenv("WANDB_API_KEY", raising=False)
    mp.delenv("WANDB_PROJECT", raising=False)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        mp.setenv(name, str(home / name.lower()))


def clear_gl_env(mp) -> None:
    """Unset what ``prefer_headless_gl`` sets, to be restored after the test (pytest's delenv
    alone does not restore a variable that was absent and is set later)."""
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM"):
        mp.setenv(name, "")
        mp.delenv(name)


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def wandb_records(path: Path):
    """The records of an offline .wandb file: a 7-byte header (":W&B", 0xBEE1, version), then
    LevelDB-log blocks of 32 KiB holding protobuf ``Record``s, split into FULL (1) or FIRST (2),
    MIDDLE (3), LAST (4) pieces, each behind a 7-byte header (crc32, length, type)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1
    block, pos, pieces = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zeros to the end of the block
            pos += block - pos % block
            continue
        pieces += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            yield record
            pieces = b""


def _ends_with_exit(path: Path) -> bool:
    try:
        return [r.WhichOneof("record_type") for r in wandb_records(path)][-1:] == ["exit"]
    except Exception:  # a header or record not written yet (protobuf DecodeError, struct.error)
        return False


def wandb_run(run_dir: Path) -> tuple[list[str], dict[str, str], dict[int, dict[str, float]]]:
    """Every offline wandb run file under ``run_dir``: their run ids, the config, and the logged
    history by step (wandb's own keys, _step, _runtime, _timestamp, left out). The files are
    written by wandb's service, a separate process, which may still be writing when
    ``finish()`` has returned: each file is read once it ends with its exit record (within 30 s,
    else as it is, and the assertions on it fail)."""
    import time

    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (files and all(map(_ends_with_exit, files))):
        time.sleep(0.2)
        files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    ids, config, history = [], {}, {}
    for path in files:
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.append(record.run.run_id)
                config.update({i.key: json.loads(i.value_json) for i in record.run.config.update
                               if not i.key.startswith("_")})
            elif kind == "history":
                values = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                          for i in record.history.item}
                history[record.history.step.num] = {k: v for k, v in values.items()
                                                    if not k.startswith("_")}
    return ids, config, history


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The `trained` fixture's run with TensorBoard on and --wandb (offline), resumed once with
    --wandb to twice its steps."""
    home = tmp_path_factory.mktemp("logged")
    run_dir = home / "ppo"
    with pytest.MonkeyPatch.context() as mp:
        wandb_offline(mp, home)
        assert main(["train", "ppo", "--steps", "1024", "--run-dir", str(run_dir), "--wandb",
                     *TINY]) == 0
        first = json.loads((run_dir / "wandb" / "pgzoo-run.json").read_text())
        assert main(["train", "--resume", str(run_dir), "--steps", "2048", "--wandb",
                     "--no-progress", "--eval-episodes", "0"]) == 0
    return run_dir, first


def test_tensorboard_events_match_metrics(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = logged
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"episode_return", "policy_loss", "value_loss", "entropy"} <= set(tags), tags
    assert not {"iteration", "seed", "env_steps"} & set(tags)  # the step is the x axis
    rows = csv_rows(run_dir)
    assert [int(r["env_steps"]) for r in rows] == list(range(128, 2049, 128))
    for tag in ("episode_return", "value_loss"):
        logged_rows = [r for r in rows if r[tag] != ""]
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [int(r["env_steps"]) for r in logged_rows]
        assert [s.value for s in scalars] == pytest.approx([float(r[tag]) for r in logged_rows],
                                                           rel=1e-6)


def test_wandb_offline_run_holds_the_metrics_and_is_continued_on_resume(logged):
    run_dir, first = logged
    ids, config, history = wandb_run(run_dir)
    # one wandb run for the run directory: the resume continued the same id
    assert first["project"] == "pgzoo" and ids == [first["id"], first["id"]]
    assert json.loads((run_dir / "wandb" / "pgzoo-run.json").read_text()) == first
    saved = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "ppo" and config["env"] == saved["env"]
    assert config["config"] == saved["config"] and config["total_steps"] == saved["total_steps"]
    assert "status" not in config and "pid" not in config  # the run's state is no config
    rows = csv_rows(run_dir)
    assert sorted(history) == [int(r["env_steps"]) for r in rows]
    for r in rows:
        step = history[int(r["env_steps"])]
        assert step.get("episode_return") == (float(r["episode_return"])
                                              if r["episode_return"] else None)
        assert step["value_loss"] == float(r["value_loss"])
        assert "seed" not in step and "env_steps" not in step


def test_wandb_keys_per_seed(tmp_path, monkeypatch):
    """Several seeds: one wandb step per iteration, each seed's values under seed{i}/."""
    wandb_offline(monkeypatch, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"algo": "ppo", "seeds": 2}))
    writer = rundir.WandbWriter(tmp_path, "env_steps", per_seed=True, setting="pgzoo-tests")
    writer.write([{"iteration": i, "seed": s, "env_steps": 128 * i, "episode_return": 10 * i + s,
                   "value_loss": "" if i == 1 else 0.5}
                  for i in (1, 2) for s in (0, 1)])
    writer.close()
    ids, config, history = wandb_run(tmp_path)
    assert len(ids) == 1 and config == {"algo": "ppo", "seeds": 2}
    assert history == {
        128: {"seed0/episode_return": 10, "seed1/episode_return": 11},
        256: {"seed0/episode_return": 20, "seed1/episode_return": 21, "seed0/value_loss": 0.5,
              "seed1/value_loss": 0.5}}
    saved = json.loads((tmp_path / "wandb" / "pgzoo-run.json").read_text())
    assert saved == {"id": ids[0], "project": "pgzoo-tests"}


def test_wandb_missing_is_one_line_before_the_run_starts(tmp_path, monkeypatch, capsys):
    import pgzoo

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    run_dir = tmp_path / "run"
    assert main(["train", "ppo", "--run-dir", str(run_dir), "--wandb", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and 'pip install "pgzoo[wandb]"' in err
    assert not run_dir.exists()
    with pytest.raises(pgzoo.PgzooError, match="wandb must be True, False or a Weights"):
        pgzoo.resume(tmp_path, wandb="")
    with pytest.raises(TypeError):
        pgzoo.resume(tmp_path, wandb_project="x")  # resume takes its keywords only


def test_eval_writes_a_new_file_and_keeps_the_trainings_eval_json(tmp_path, trained, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    # other tests on this worker may have evaluated the shared run already
    shutil.rmtree(run / "evaluations", ignore_errors=True)
    training_eval = (run / "eval.json").read_bytes()
    paths = []
    for seed in (3, 4):  # within one second: the second gets a suffix, nothing is overwritten
        assert main(["eval", str(run), "--episodes", "2", "--seed", str(seed)]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["episodes"] == 2
        assert err.startswith("evaluation written to ")
        paths.append(Path(err.strip().removeprefix("evaluation written to ")))
    assert (run / "eval.json").read_bytes() == training_eval
    assert paths[0] != paths[1] and {p.parent for p in paths} == {run / "evaluations"}
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == sorted(p.name for p in paths)
    for path, seed in zip(paths, (3, 4)):
        assert path.name.startswith("eval-") and path.suffix == ".json"
        saved = json.loads(path.read_text())
        assert saved["env"] == json.loads((run / "config.json").read_text())["env"]
        assert saved["seed"] == seed
        assert saved["episodes"] == 2 and len(saved["returns"]) == 2


def test_video_of_an_unrenderable_env_fails_before_evaluating(tmp_path, trained, capsys,
                                                              monkeypatch):
    """A run directory on Brax (config.json only: no checkpoint to load) is refused for a video
    at once, not after a long evaluation."""
    clear_gl_env(monkeypatch)
    fake = tmp_path / "brax-run"
    fake.mkdir()
    cfg = json.loads((trained / "config.json").read_text())
    (fake / "config.json").write_text(json.dumps({**cfg, "env": "brax:inverted_pendulum"}))
    assert main(["eval", str(fake), "--video", str(tmp_path / "v.gif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "no Gymnasium twin" in err, err


def test_headless_backend_is_chosen_only_without_a_display(monkeypatch):
    import ctypes.util

    from pgzoo.run.video import prefer_headless_gl

    clear_gl_env(monkeypatch)
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert prefer_headless_gl() is None and "MUJOCO_GL" not in os.environ
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    assert prefer_headless_gl() is None and os.environ["MUJOCO_GL"] == "glfw"
    monkeypatch.delenv("MUJOCO_GL")
    expected = ("egl" if ctypes.util.find_library("EGL")
                else "osmesa" if ctypes.util.find_library("OSMesa") else None)
    assert prefer_headless_gl() == expected
    assert os.environ.get("MUJOCO_GL") == expected == os.environ.get("PYOPENGL_PLATFORM")


def test_mujoco_deprecation_warnings_are_dropped_where_envs_are_made(tmp_path, monkeypatch,
                                                                      capfd):
    """HalfCheetah's model file uses settotalmass, which MuJoCo's compiler calls deprecated on
    stderr and in ./MUJOCO_LOG.TXT, once per copy. pgzoo drops exactly that while it makes the
    environment; MuJoCo's warning handler is its own again afterwards."""
    import mujoco

    from pgzoo import envs

    monkeypatch.chdir(tmp_path)
    before = mujoco.get_mju_user_warning()
    env = envs.make("gymnasium:HalfCheetah-v5", num_envs=2)
    env.unwrapped.close()
    out, err = capfd.readouterr()
    assert "deprecated" not in out + err and "settotalmass" not in out + err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert mujoco.get_mju_user_warning() is before


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory):
    """PPO through the Gymnasium bridge on a MuJoCo task, one iteration."""
    run_dir = tmp_path_factory.mktemp("bridge") / "pendulum"
    assert main(["train", "ppo", "--env", "gymnasium:InvertedPendulum-v5", "--steps", "256",
                 "--set", "num_envs=2", "--set", "num_steps=128", "--set", "num_minibatches=2",
                 "--eval-episodes", "0", "--no-progress", "--no-tensorboard",
                 "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_mujoco_video_without_a_display(pendulum, tmp_path):
    """`pgzoo eval --video` as on a server: no DISPLAY and no MUJOCO_GL. It picks a headless
    OpenGL backend itself; with one that cannot work here (GLFW needs a display) it fails in one
    line that names what to set."""
    bare = {k: v for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM")}

    def eval_video(gif, **env):
        return subprocess.Popen([sys.executable, "-m", "pgzoo.cli", "eval", str(pendulum),
                                 "--episodes", "1", "--video", str(gif)],
                                env={**bare, **env}, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    headless = eval_video(tmp_path / "pendulum.gif")
    glfw = eval_video(tmp_path / "never.gif", MUJOCO_GL="glfw")
    out, err = headless.communicate(timeout=300)
    assert headless.returncode == 0, err
    assert "Traceback" not in err and "DeprecationWarning" not in err and "deprecated" not in err
    assert json.loads(out)["video"]["frames"] >= 5
    from PIL import Image

    with Image.open(tmp_path / "pendulum.gif") as im:
        assert im.n_frames >= 5 and im.size == (240, 240)
        im.seek(2)
        darkest, brightest = im.convert("L").getextrema()
        assert brightest - darkest > 50  # a picture, not a blank frame
    _, err = glfw.communicate(timeout=300)
    assert glfw.returncode == 2, err
    err = err.strip()
    assert err.startswith("error: cannot render 'gymnasium:InvertedPendulum-v5'"), err
    assert "\n" not in err and "MUJOCO_GL=egl" in err and "DISPLAY" in err
    assert not (tmp_path / "never.gif").exists()
