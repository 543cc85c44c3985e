"""Bad input through the command line, as a user gives it: every case gets one ``error: ...``
line and exit code 2, no traceback, and nothing is written outside the run directory.

Each case builds what it needs in a fresh directory (a copy of one small trained run, a broken
environment module, a planted link) and names the argv and a fragment of the expected message.
"""
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pgzoo
from pgzoo.cli import main

TINY = ["--set", "num_envs=2", "--set", "num_steps=64", "--set", "num_minibatches=2",
        "--no-progress", "--no-tensorboard"]


def _run(tmp, trained):
    run = tmp / "run"
    shutil.copytree(trained, run)
    return run


def _config(run, value):
    (run / "config.json").write_text(json.dumps(value))


def _edit_config(run, **changes):
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(changes)
    _config(run, cfg)


def _rewrite_checkpoint(run, edit):
    """Rewrite state.npz with ``edit(dict of arrays)`` applied (no pickle involved)."""
    path = run / "checkpoints" / "state.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _forge_huge_header(run):
    """A checkpoint member whose .npy header claims 10^15 float32s (4 PB)."""
    path = run / "checkpoints" / "state.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    name = next(k for k in arrays if k != "__meta__" and arrays[k].ndim == 2)
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**15,)}
    forged = Path(str(path) + ".new")
    with zipfile.ZipFile(forged, "w") as z:
        for k, v in arrays.items():
            with z.open(k + ".npy", "w") as f:
                if k == name:
                    np.lib.format.write_array_header_1_0(f, header)
                    f.write(b"\0" * 64)
                else:
                    np.lib.format.write_array(f, v, allow_pickle=False)
    os.replace(forged, path)


def _shadow_member(run):
    """A valid NAME.npy beside a raw member NAME whose header claims 10^12 float64s: numpy's
    NpzFile would read the raw one for ``data[NAME]``."""
    path = run / "checkpoints" / "state.npz"
    with zipfile.ZipFile(path, "a") as z:
        name = next(n for n in z.namelist() if n != "__meta__.npy")[:-4]
        with z.open(name, "w") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})


def _write_text(path, text):
    path.write_text(text)


def _env_module(tmp, name, source):
    (tmp / f"{name}.py").write_text(source)
    return f"{name}:Env"


ENV_HEADER = """
import gymnasium, numpy as np
class Base(gymnasium.Env):
    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}
    def step(self, action):
        return np.zeros(2, np.float32), 1.0, False, False, {}
"""


def _case_user_env(kind):
    def setup(tmp, trained):
        name = f"bad_env_{kind}"
        body = {
            "raises_on_import": "raise RuntimeError('cannot import me')",
            "syntax_error": "def broken(:\n    pass",
            "raises_in_init": ENV_HEADER + "class Env(Base):\n"
                              "    def __init__(self, render_mode=None):\n"
                              "        raise ValueError('no simulator licence')",
            "wrong_obs_shape": ENV_HEADER + "class Env(Base):\n    def reset(self, *, seed=None, "
                               "options=None):\n        return np.zeros(3, np.float32), {}",
            "four_tuple_step": ENV_HEADER + "class Env(Base):\n    def step(self, action):\n"
                               "        return np.zeros(2, np.float32), 1.0, False, {}",
            "nan_reset": ENV_HEADER + "class Env(Base):\n    def reset(self, *, seed=None, "
                         "options=None):\n        return np.full(2, np.nan, np.float32), {}",
        }[kind]
        return ["train", "ppo", "--env", _env_module(tmp, name, body), *TINY]
    return setup


def _symlinked(target_name):
    def setup(tmp, trained):
        run = _run(tmp, trained)
        outside = tmp / "outside.txt"
        outside.write_text("precious")
        (run / target_name).unlink(missing_ok=True)
        (run / target_name).symlink_to(outside)
        return ["train", "--resume", str(run), "--steps", "2048", *TINY[-2:]]
    return setup


def _simple(*argv):
    return lambda tmp, trained: list(argv)


CASES = {
    # run directories that are not what they claim
    "empty state.npz": (lambda tmp, tr: (
        (_run(tmp, tr) / "checkpoints" / "state.npz").write_bytes(b""),
        ["eval", str(tmp / "run")])[1], "is corrupt"),
    "config.json holding 5": (lambda tmp, tr: (_config(_run(tmp, tr), 5),
                                               ["eval", str(tmp / "run")])[1],
                              "not a run's config"),
    "config.json holding null": (lambda tmp, tr: (_config(_run(tmp, tr), None),
                                                  ["eval", str(tmp / "run")])[1],
                                 "not a run's config"),
    "config of a string": (lambda tmp, tr: (_edit_config(_run(tmp, tr), config="abc"),
                                            ["eval", str(tmp / "run")])[1],
                           "config must be a dict"),
    "seeds of a string": (lambda tmp, tr: (_edit_config(_run(tmp, tr), seeds="2"),
                                           ["train", "--resume", str(tmp / "run")])[1],
                          "seeds must be a int"),
    "meta without iteration": (lambda tmp, tr: (_rewrite_checkpoint(
        _run(tmp, tr), lambda a: a.update(__meta__=np.array(json.dumps({"env_steps": 5})))),
        ["eval", str(tmp / "run")])[1], "no valid iteration"),
    "npz header of 10^15 floats": (lambda tmp, tr: (_forge_huge_header(_run(tmp, tr)),
                                                    ["eval", str(tmp / "run")])[1],
                                   "expected"),
    "npz with a shadow member": (lambda tmp, tr: (_shadow_member(_run(tmp, tr)),
                                                  ["eval", str(tmp / "run")])[1], "is corrupt"),
    "meta wall_time of a string": (lambda tmp, tr: (_rewrite_checkpoint(
        _run(tmp, tr), lambda a: a.update(__meta__=np.array(json.dumps(
            {"iteration": 8, "wall_time": "x"})))),
        ["train", "--resume", str(tmp / "run")])[1], "invalid wall_time"),
    "config.json with a 5000-digit number": (lambda tmp, tr: (
        _write_text(_run(tmp, tr) / "config.json", '{"algo": ' + "9" * 5000 + "}"),
        ["eval", str(tmp / "run")])[1], "is corrupt"),
    "config.json is a directory": (lambda tmp, tr: (
        (_run(tmp, tr) / "config.json").unlink(), (tmp / "run" / "config.json").mkdir(),
        ["eval", str(tmp / "run")])[2], "not a regular file"),
    "learning_rate of 10**400 in config.json": (lambda tmp, tr: (
        _edit_config(_run(tmp, tr), config=dict(
            json.loads((tr / "config.json").read_text())["config"], learning_rate=10**400)),
        ["eval", str(tmp / "run")])[1], "learning_rate must be a finite number"),
    "seeds of 10**9 in config.json": (lambda tmp, tr: (_edit_config(_run(tmp, tr), seeds=10**9),
                                                       ["eval", str(tmp / "run")])[1],
                                      "seeds must be an integer in [1, 4096]"),
    "--seed 2**31": (_simple("train", "ppo", "--seed", str(2**31), *TINY),
                     "seed must be an integer in"),
    "eval --seed -1": (lambda tmp, tr: ["eval", str(tr), "--seed", "-1"], "seed must be"),
    "env importing a module": (lambda tmp, tr: (_edit_config(_run(tmp, tr), env="this:Zen"),
                                                ["eval", str(tmp / "run")])[1],
                               "would import and run the module 'this'"),
    "env importing a module (resume)": (lambda tmp, tr: (
        _edit_config(_run(tmp, tr), env="evil_payload:Env"),
        ["train", "--resume", str(tmp / "run")])[1], "pass --trust"),
    "garbage metrics.csv": (lambda tmp, tr: (
        (_run(tmp, tr) / "metrics.csv").write_bytes(b"\x00\xff\xfe garbage \x80" * 50),
        ["plot", str(tmp / "run"), "-o", str(tmp / "c.png")])[1], "not a metrics file"),
    "metrics.csv of another format": (lambda tmp, tr: (
        (_run(tmp, tr) / "metrics.csv").write_text("a,b\n1,2\n"),
        ["plot", str(tmp / "run"), "-o", str(tmp / "c.png")])[1], "header lacks"),
    "plot -o c.xyz": (lambda tmp, tr: ["plot", str(tr), "-o", str(tmp / "c.xyz")],
                      "give a file name ending in one of"),
    "plot -o under a file": (lambda tmp, tr: (
        (tmp / "afile").write_text("x"), ["plot", str(tr), "-o", str(tmp / "afile" / "c.png")])[1],
        "afile"),
    "--video under a file": (lambda tmp, tr: (
        (tmp / "afile").write_text("x"),
        ["eval", str(tr), "--episodes", "1", "--video", str(tmp / "afile" / "v.gif")])[1],
        "afile"),
    "evaluations/ cannot be written": (lambda tmp, tr: (
        (_run(tmp, tr) / "evaluations").write_text("x"),
        ["eval", str(tmp / "run"), "--episodes", "1"])[1], "evaluations exists and is not a"),
    "--run-dir is a file": (lambda tmp, tr: (
        (tmp / "afile").write_text("x"), ["train", "ppo", "--run-dir", str(tmp / "afile"),
                                          *TINY])[1], "is a file"),
    "--run-dir under a file": (lambda tmp, tr: (
        (tmp / "afile").write_text("x"), ["train", "ppo", "--run-dir",
                                          str(tmp / "afile" / "run"), *TINY])[1], "afile"),
    "--run-dir ''": (_simple("train", "ppo", "--run-dir", "", *TINY), "run_dir must be"),
    "metrics.csv is a link": (_symlinked("metrics.csv"), "is a symbolic link"),
    "checkpoints/ is a link": (lambda tmp, tr: (
        shutil.move(str(_run(tmp, tr) / "checkpoints"), str(tmp / "elsewhere")),
        (tmp / "run" / "checkpoints").symlink_to(tmp / "elsewhere"),
        ["train", "--resume", str(tmp / "run"), "--steps", "2048", *TINY[-2:]])[2],
        "is a symbolic link"),
    # a user's environment module
    "env module raises on import": (_case_user_env("raises_on_import"), "RuntimeError"),
    "env module has a SyntaxError": (_case_user_env("syntax_error"), "SyntaxError"),
    "env raises in __init__": (_case_user_env("raises_in_init"), "no simulator licence"),
    "env returns a wrong shape": (_case_user_env("wrong_obs_shape"), "shape (3,)"),
    "env has the old 4-tuple step": (_case_user_env("four_tuple_step"), "returned 4 values"),
    "env resets to NaN": (_case_user_env("nan_reset"), "non-finite observation"),
    "env spec without class": (_simple("train", "ppo", "--env", "os:", *TINY),
                               "package.module:ClassName"),
    # values
    "hidden_sizes=-4": (_simple("train", "ppo", "--set", "hidden_sizes=-4", *TINY),
                        "hidden_sizes must be positive integers"),
    "hidden_sizes=0": (_simple("train", "ppo", "--set", "hidden_sizes=0", *TINY),
                       "hidden_sizes must be positive integers"),
    "learning_rate=inf": (_simple("train", "ppo", "--set", "learning_rate=inf", *TINY),
                          "learning_rate must be a finite number"),
    "learning_rate=nan": (_simple("train", "a2c", "--set", "learning_rate=nan", *TINY[-2:]),
                          "learning_rate must be a finite number"),
    "num_envs=10**12": (_simple("train", "ppo", "--set", "num_envs=1000000000000", *TINY[2:]),
                        "num_envs must be at most"),
    "--steps 1e23": (_simple("train", "ppo", "--steps", "1e23", *TINY), "invalid int value"),
    "--steps 2**63": (_simple("train", "ppo", "--steps", str(2**63), *TINY),
                      "total_steps must be a positive integer of at most"),
    "--steps -5": (_simple("train", "ppo", "--steps", "-5", *TINY), "total_steps must be"),
    "--env ''": (_simple("train", "ppo", "--env", "", *TINY), "non-empty"),
    "batch_size > buffer_size": (_simple("train", "sac", "--set", "batch_size=512", "--set",
                                         "buffer_size=256", "--no-progress"),
                                 "must not exceed buffer_size"),
    "batch_size > the run": (_simple("train", "sac", "--steps", "200", "--no-progress"),
                             "or the run never learns"),
    "--eval-episodes -1": (_simple("train", "ppo", "--eval-episodes", "-1", *TINY),
                           "eval_episodes must be"),
    "--checkpoint-interval -1": (_simple("train", "ppo", "--checkpoint-interval", "-1", *TINY),
                                 "checkpoint_interval must be"),
    "--seed -1": (_simple("train", "ppo", "--seed", "-1", *TINY), "seed must be"),
    # resuming
    "--resume --steps below done": (lambda tmp, tr: ["train", "--resume", str(_run(tmp, tr)),
                                                     "--steps", "512", *TINY[-2:]],
                                    "is below the 1024 steps"),
    "--resume --steps 0": (lambda tmp, tr: ["train", "--resume", str(_run(tmp, tr)),
                                            "--steps", "0", *TINY[-2:]],
                           "total_steps must be a positive integer"),
    "--resume with --set": (lambda tmp, tr: ["train", "--resume", str(_run(tmp, tr)), "--set",
                                             "gamma=0.5"], "drop --set"),
    "--run-dir of an existing run": (lambda tmp, tr: ["train", "ppo", "--run-dir",
                                                      str(_run(tmp, tr)), *TINY],
                                     "already holds a run"),
}


def _siblings(tmp_path):
    """Modification times of everything beside the case's directory (pytest's own links aside)."""
    return {p: p.stat().st_mtime_ns for p in tmp_path.parent.rglob("*")
            if tmp_path not in p.parents and p != tmp_path and not p.is_symlink()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path, trained, capsys, monkeypatch):
    setup, fragment = CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = _siblings(tmp_path)
    argv = setup(tmp_path, trained)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert fragment in err, err
    # nothing written outside the case's directory (the planted link targets stay untouched)
    if (tmp_path / "outside.txt").exists():
        assert (tmp_path / "outside.txt").read_text() == "precious"
    assert _siblings(tmp_path) == before
    assert "this" not in sys.modules or case != "env importing a module"


def test_a_run_directory_imports_a_module_only_when_trusted(tmp_path, trained, monkeypatch):
    """`trust=True` (or a module already imported) lets a run directory name a user's class."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    run = pgzoo.train("ppo", "envs_for_tests:Corridor", 1024, run_dir=tmp_path / "r",
                      progress=False, eval_episodes=0, num_envs=2, num_steps=64,
                      num_minibatches=2, tensorboard=False)
    # already imported in this process: loading runs no new code, so it is allowed
    assert pgzoo.load(run.run_dir)([0.0, 0.0]) in (0, 1)
    monkeypatch.delitem(sys.modules, "envs_for_tests")
    with pytest.raises(pgzoo.PgzooError, match="would import and run the module"):
        pgzoo.load(run.run_dir)
    assert pgzoo.load(run.run_dir, trust=True)([0.0, 0.0]) in (0, 1)


def test_api_bad_input(tmp_path, trained):
    with pytest.raises(pgzoo.PgzooError, match="run_dir must be a non-empty path"):
        pgzoo.train("ppo", run_dir=123)
    policy = pgzoo.load(trained)
    with pytest.raises(pgzoo.PgzooError, match=r"takes an observation of shape \(4,\)"):
        policy([1.0, 2.0, 3.0])
    with pytest.raises(pgzoo.PgzooError, match="takes an observation array"):
        policy("left")
    assert policy([0.0, 0.0, 0.0, 0.0]) in (0, 1)


def test_planted_temporary_links_are_not_followed(tmp_path, trained, capsys):
    """A link planted where pgzoo writes a temporary is replaced, never written through."""
    run = _run(tmp_path, trained)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (run / ".eval.json.tmp").symlink_to(outside)
    (run / "checkpoints" / ".state.npz.tmp").symlink_to(outside)
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert main(["train", "--resume", str(run), "--steps", "2048", *TINY[-2:]]) == 0
    assert outside.read_text() == "precious"
    assert not (run / ".eval.json.tmp").exists() and not (run / ".eval.json.tmp").is_symlink()


def test_malformed_metrics_rows_are_skipped_by_plot(tmp_path, trained, capsys):
    run = _run(tmp_path, trained)
    with open(run / "metrics.csv", "a") as f:
        f.write("17,0,88")  # a row cut short by a kill
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 0
