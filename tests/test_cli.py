import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgzoo.cli import main

TESTS = Path(__file__).resolve().parent
TINY = ["--set", "num_envs=2", "--set", "num_steps=64", "--set", "num_minibatches=2",
        "--no-progress", "--no-tensorboard"]


def one_line_error(capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert fragment in err, err
    return err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "nope"], "unknown algorithm 'nope'; valid: reinforce, actor_critic, a2c, vpg, ppo"),
    (["train", "maddpg", "--env", "CartPole-v1"], "maddpg is a multi-agent algorithm"),
    (["train", "ppo", "--env", "jaxmarl:MPE_simple_spread_v3"], "multi-agent algorithms: maddpg"),
    (["train", "maddpg", "--set", "critics=ddpg"], "critics must be centralised, independent"),
    (["train", "ppo", "--env", "NoSuchEnv-v9"], "unknown environment 'NoSuchEnv-v9'"),
    (["train", "ppo", "--set", "lr=0.1"], "unknown config key 'lr' for ppo; valid keys: num_envs"),
    (["train", "ppo", "--set", "learning_rate=fast"], "learning_rate must be a number"),
    (["train", "ppo", "--set", "learning_rate=-0.001"], "learning_rate must be > 0"),
    (["train", "ppo", "--set", "num_envs=0"], "num_envs must be > 0"),
    (["train", "ppo", "--set", "norm_adv=maybe"], "norm_adv must be a boolean"),
    (["train", "ppo", "--set", "gamma"], "--set expects KEY=VALUE"),
    (["train", "ppo", "--steps", "0"], "total_steps must be a positive integer"),
    (["train", "ppo", "--steps", "ten"], "invalid int value"),
    (["train", "ppo", "--seeds", "0"], "seeds must be an integer in [1, 4096]"),
    (["train", "ppo", "--steps", "100"], "at least one iteration"),
    (["train", "ppo", "--env", "envs_for_tests:Switches"], "MultiBinary space"),
    (["train", "ppo", "--env", "gymnasium:CartPole-v1", "--seeds", "2"], "JAX-native"),
    (["train"], "needs an algorithm name"),
    (["frobnicate"], "invalid choice"),
    (["eval", "/no/such/run"], "does not exist"),
    (["train", "--resume", "/no/such/run"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, fragment):
    one_line_error(capsys, argv, fragment)


def test_partial_and_corrupt_run_directories(capsys, tmp_path, trained):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, ["eval", str(empty)], "config.json is missing")
    one_line_error(capsys, ["train", "--resume", str(empty)], "config.json is missing")

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((trained / "config.json").read_text())
    one_line_error(capsys, ["eval", str(partial)], "has no checkpoint")
    # a run stopped before its first checkpoint is no dead end: resume trains it from the start
    (partial / "metrics.csv").write_text("iteration,seed,env_steps\n1,0,128\n")
    assert main(["train", "--resume", str(partial), "--no-progress", "--no-tensorboard",
                 "--eval-episodes", "1"]) == 0
    assert json.loads((partial / "config.json").read_text())["status"] == "finished"
    rows = (partial / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 1024 // 128 and rows[1].startswith("1,0,128,")

    (partial / "config.json").write_text('{"algo": "ppo"')
    one_line_error(capsys, ["eval", str(partial)], "is corrupt")
    (partial / "config.json").write_text('{"algo": "ppo"}')
    one_line_error(capsys, ["eval", str(partial)], "is incomplete")

    corrupt = tmp_path / "corrupt"
    (corrupt / "checkpoints").mkdir(parents=True)
    (corrupt / "config.json").write_text((trained / "config.json").read_text())
    (corrupt / "checkpoints" / "state.npz").write_bytes(b"not a zip file at all")
    one_line_error(capsys, ["eval", str(corrupt)], "is corrupt")
    one_line_error(capsys, ["train", "--resume", str(corrupt)], "is corrupt")

    cfg = json.loads((trained / "config.json").read_text())
    cfg["config"]["hidden_sizes"] = [8]  # a checkpoint that no longer matches its config
    mismatch = tmp_path / "mismatch"
    (mismatch / "checkpoints").mkdir(parents=True)
    (mismatch / "config.json").write_text(json.dumps(cfg))
    (mismatch / "checkpoints" / "state.npz").write_bytes(
        (trained / "checkpoints" / "state.npz").read_bytes())
    one_line_error(capsys, ["eval", str(mismatch)], "does not match config.json")


def test_eval_plot_list_and_video(capsys, tmp_path, trained):
    assert main(["eval", str(trained), "--episodes", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 3 and out["mean_return"] > 0
    gif = tmp_path / "cartpole.gif"
    assert main(["eval", str(trained), "--episodes", "1", "--video", str(gif)]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames >= 8 and im.size == (300, 200)
    capsys.readouterr()
    one_line_error(capsys, ["eval", str(trained), "--video", str(tmp_path / "x.mp4")],
                   "give a path ending in .gif")
    assert main(["plot", str(trained), str(trained), "-o", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "ppo" in listing and "discrete, continuous" in listing and "gymnasium" in listing


def test_resume_extends_a_finished_run(capsys, tmp_path, trained):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["train", "--resume", str(run), "--steps", "2048", "--no-progress"]) == 0
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 16


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.Popen([sys.executable, "-m", "pgzoo.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_console_exit_code_for_bad_input():
    proc = _cli("train", "ppo", "--set", "nope=1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().startswith("error: unknown config key") and "Traceback" not in err


def test_ctrl_c_keeps_checkpoint_and_metrics(tmp_path):
    run_dir = tmp_path / "long"
    proc = _cli("train", "ppo", "--steps", "50000000", "--run-dir", str(run_dir), *TINY)
    metrics = run_dir / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or
                                      len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert f"pgzoo train --resume {run_dir}`" in err  # the run's own directory, to copy
    assert (run_dir / "checkpoints" / "state.npz").is_file()
    assert json.loads((run_dir / "config.json").read_text())["status"] == "interrupted"
    assert len(metrics.read_text().splitlines()) >= 3


def test_an_environment_module_in_the_working_directory_is_found(tmp_path, monkeypatch, capsys):
    (tmp_path / "walk_here.py").write_text(
        "from envs_for_tests import Corridor as Env\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))]
                        + [str(TESTS)])
    assert main(["train", "ppo", "--env", "walk_here:Env", "--steps", "300", "--eval-episodes",
                 "1", *TINY]) == 0
    out = capsys.readouterr().out
    assert "done: 256 steps per seed (300 rounded down to whole iterations of 128)" in out
