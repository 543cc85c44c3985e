"""The front door: presets and `pgzoo show`, evaluation during training with the best checkpoint
and early stopping, callbacks, fine-tuning, sweeps with interval reports, and Optuna tuning."""
import json

import jax
import numpy as np
import pytest

import pgzoo
from pgzoo import algos
from pgzoo.algos import presets
from pgzoo.api import _source_state
from pgzoo.cli import main
from pgzoo.core import config as cfg
from pgzoo.run import checkpoint, rundir
from pgzoo.run.experiment import build
from pgzoo.run.sweep import final_returns

SMALL = {"num_envs": 2, "num_steps": 64, "num_minibatches": 2}
TINY = ["--set", "num_envs=2", "--set", "num_steps=64", "--set", "num_minibatches=2",
        "--no-progress", "--no-tensorboard"]


def test_every_preset_is_a_valid_config_of_its_algorithm():
    for (algo, task), preset in presets.PRESETS.items():
        algorithm = algos.get(algo)
        cfg.build(algorithm.config, preset.settings, algo)  # raises on a bad key or value
        assert preset.steps > 0 and presets.task(task) == task
        # a setting equal to the module default would be noise in `pgzoo show`
        defaults = cfg.to_dict(algorithm.config())
        assert all(defaults[k] != v for k, v in preset.settings.items()), (algo, task)


def test_a_preset_belongs_to_the_task_on_every_backend():
    assert presets.find("sac", "Pendulum-v1")[0] == "Pendulum-v1"
    assert presets.find("sac", "gymnasium:Pendulum-v1")[0] == "Pendulum-v1"
    assert presets.find("sac", "gymnax:Pendulum-v1")[0] == "Pendulum-v1"
    assert presets.find("sac", "gymnasium:HalfCheetah-v5")[1].steps == 300_000
    assert presets.find("sac", "Hopper-v5") is None
    assert presets.find("ppo", "tests.envs_for_tests:ConstantEnv") is None


def test_train_applies_the_preset_and_says_so(tmp_path, capsys):
    # a2c on Acrobot: the preset sets 16 environments, normalised observations and lr 1e-3
    assert main(["train", "a2c", "--env", "Acrobot-v1", "--steps", "160", "--run-dir",
                 str(tmp_path / "p"), "--eval-episodes", "0", "--no-tensorboard",
                 "--set", "learning_rate=0.002"]) == 0
    err = capsys.readouterr().err
    assert "preset a2c/Acrobot-v1" in err and "num_envs=16" in err and "--no-preset" in err
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert saved["preset"] == "a2c/Acrobot-v1"
    assert saved["config"]["num_envs"] == 16 and saved["config"]["normalize_obs"] is True
    assert saved["config"]["learning_rate"] == 0.002  # --set wins over the preset

    assert main(["train", "a2c", "--env", "Acrobot-v1", "--steps", "160", "--run-dir",
                 str(tmp_path / "d"), "--eval-episodes", "0", "--no-tensorboard",
                 "--no-preset"]) == 0
    assert "module defaults" in capsys.readouterr().err
    saved = json.loads((tmp_path / "d" / "config.json").read_text())
    assert saved["preset"] is None and saved["config"]["num_envs"] == 8


def test_the_preset_gives_the_budget_of_its_environment():
    assert build("sac", "gymnasium:HalfCheetah-v5", preset=True).total_steps == 300_000
    assert build("sac", "Pendulum-v1", preset=True).total_steps == 20_000
    assert build("ppg", "Acrobot-v1", preset=True).config.n_pi == 8
    assert build("ppg", "Acrobot-v1", preset=False).config.n_pi == 32


def test_show_lists_every_field_with_its_source(capsys):
    assert main(["show", "ppg", "--env", "Acrobot-v1", "--set", "gamma=0.98"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ppg on Acrobot-v1: preset ppg/Acrobot-v1")
    assert "benchmark bar: mean return >= -100" in out[0]
    rows = {line.split()[0]: line for line in out[1:]}
    assert set(rows) == {"budget"} | {f for f in cfg.to_dict(algos.get("ppg").config())}
    assert "preset (module default 32)" in rows["n_pi"] and rows["n_pi"].split()[1] == "8"
    assert "--set (module default 0.99)" in rows["gamma"]
    assert rows["e_aux"].endswith("module default")
    assert "500,000 env steps (preset" in rows["budget"]
    assert main(["show", "sac", "--env", "Hopper-v5"]) == 0
    assert "no preset for this environment; presets: Pendulum-v1, HalfCheetah-v5" in \
        capsys.readouterr().out


def test_evaluation_during_training_best_checkpoint_and_early_stop(tmp_path, capsys):
    run_dir = tmp_path / "e"
    assert main(["train", "ppo", "--env", "CartPole-v1", "--steps", "8192", "--run-dir",
                 str(run_dir), "--eval-every", "1024", "--eval-every-episodes", "3",
                 "--stop-at-return", "60", "--eval-episodes", "2", *TINY]) == 0
    out = capsys.readouterr().out
    saved = json.loads((run_dir / "config.json").read_text())
    evals = list(rundir._csv_rows(run_dir / rundir.EVALS))
    returns = [float(r["eval_return"]) for r in evals]
    assert [int(r["env_steps"]) for r in evals] == [1024 * (i + 1) for i in range(len(evals))]
    assert all(int(r["eval_episodes"]) == 3 for r in evals)
    # it stopped at the first evaluation that reached 60, and said so
    assert returns[-1] >= 60 and all(r < 60 for r in returns[:-1])
    assert saved["status"] == "finished" and "reached 60" in saved["stopped_early"]
    assert "stopped early" in out
    last = max(int(r["iteration"]) for r in rundir.read_metrics(run_dir))
    assert last * 128 == int(evals[-1]["env_steps"]) < 8192
    # checkpoints/best holds the best evaluation's state
    meta = checkpoint.read_meta(run_dir / "checkpoints" / "best")
    assert meta["eval_return"] == pytest.approx(max(returns))
    assert isinstance(pgzoo.load(run_dir, best=True), pgzoo.api.Policy)
    assert main(["eval", str(run_dir), "--best", "--episodes", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == "best"


def test_a_callback_sees_each_chunk_and_stops_the_run(tmp_path):
    seen = []

    def callback(info):
        seen.append(info)
        return info["iteration"] < 4  # False stops the run

    run = pgzoo.train("ppo", "CartPole-v1", 64 * 2 * 1000, run_dir=tmp_path / "c",
                      progress=False, tensorboard=False, eval_episodes=0, callback=callback,
                      **SMALL)
    assert seen and seen[-1]["iteration"] >= 4 and all(s["iteration"] < 4 for s in seen[:-1])
    assert {"iteration", "env_steps", "rows", "evaluation", "run_dir"} <= set(seen[0])
    assert seen[0]["rows"][0]["iteration"] == 1
    assert run.summary["iteration"] == seen[-1]["iteration"] < 1000
    assert "callback stopped the run" in run.summary["stopped_early"]
    assert json.loads((tmp_path / "c" / "config.json").read_text())["status"] == "finished"
    with pytest.raises(pgzoo.PgzooError, match="callback must be a function"):
        pgzoo.train("ppo", callback=3)


def test_fine_tuning_starts_from_another_runs_parameters(tmp_path, trained, capsys):
    exp = build("ppo", "CartPole-v1", 1024, 0, 2, SMALL)
    state = _source_state(exp, trained, trust=False)
    source = pgzoo.load(trained).params[0]
    for m in range(2):
        jax.tree.map(np.testing.assert_array_equal, source,
                     exp.agent.params(exp.member_state(state, m)))
    fresh = exp.agent.params(exp.member_state(exp.init_state(), 0))
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(fresh), jax.tree.leaves(source)))
    # through the command line: recorded in config.json; other network shapes are refused
    assert main(["train", "ppo", "--env", "CartPole-v1", "--steps", "256", "--init-from",
                 str(trained), "--run-dir", str(tmp_path / "f"), "--eval-episodes", "0",
                 *TINY]) == 0
    assert json.loads((tmp_path / "f" / "config.json").read_text())["init_from"] == str(trained)
    assert main(["train", "ppo", "--env", "CartPole-v1", "--steps", "256", "--init-from",
                 str(trained), "--set", "hidden_sizes=32", *TINY]) == 2
    assert "networks have other shapes" in capsys.readouterr().err


def test_a_2x2_sweep_reports_intervals_around_its_runs(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "ppo", "--env", "CartPole-v1", "--grid", "learning_rate=1e-3,3e-4",
                 "--grid", "ent_coef=0.0,0.01", "--seeds", "3", "--steps", "2048",
                 "--eval-episodes", "2", "--out", str(out), *TINY[:6], "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| learning_rate=1e-3, ent_coef=0.01 | 3 |" in printed
    report = json.loads((out / "report.json").read_text())
    assert len(report["points"]) == 4
    for entry in report["points"]:
        point_dir = out / "_".join(f"{k}={v}" for k, v in entry["point"].items())
        saved = json.loads((point_dir / "config.json").read_text())
        # each point is an ordinary run directory with its own settings and seeds 0..2
        assert saved["status"] == "finished" and saved["seeds"] == 3
        assert saved["config"]["learning_rate"] == float(entry["point"]["learning_rate"])
        values = final_returns(point_dir)
        assert entry["final_return"] == pytest.approx(values)
        s = entry["final_return_summary"]
        for name in ("mean", "iqm"):
            low, high = s[f"{name}_ci"]
            assert min(values) <= low <= s[name] <= high <= max(values)
        assert s["mean"] == pytest.approx(np.mean(values), rel=1e-6)
        assert len(json.loads((point_dir / "eval.json").read_text())["per_seed"]) == 3
        pgzoo.load(point_dir, seed=2)
    assert (out / "report.png").stat().st_size > 10_000 and (out / "report.md").exists()
    # a finished sweep resumes to its report without training again
    mtime = (out / "all" / "checkpoints" / "state.npz").stat().st_mtime
    assert main(["sweep", "--resume", str(out), "--no-progress"]) == 0
    assert (out / "all" / "checkpoints" / "state.npz").stat().st_mtime == mtime


def test_an_interrupted_sweep_resumes_to_its_report(tmp_path, monkeypatch):
    compiled = pgzoo.api.DRIVERS["compiled"]

    def interrupted_at_iteration_3(*args, **kwargs):
        def stop(info):
            if info["iteration"] >= 3:
                raise KeyboardInterrupt
        return compiled(*args, **kwargs, callback=stop)

    monkeypatch.setitem(pgzoo.api.DRIVERS, "compiled", interrupted_at_iteration_3)
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt) as stopped:
        pgzoo.sweep("ppo", "CartPole-v1", {"learning_rate": [1e-3, 3e-4]}, 64 * 2 * 20, seeds=2,
                    out=out, progress=False, eval_episodes=0, **SMALL)
    assert stopped.value.resume_command == f"pgzoo sweep --resume {out}"
    assert json.loads((out / "all" / "config.json").read_text())["status"] == "interrupted"
    monkeypatch.setitem(pgzoo.api.DRIVERS, "compiled", compiled)
    report = pgzoo.resume_sweep(out, progress=False)
    rows = rundir.read_metrics(out / "all")
    assert sorted({r["iteration"] for r in rows}) == list(range(1, 21))  # each iteration once
    assert len(rows) == 20 * 4 and len(report["points"]) == 2
    for entry in report["points"]:
        point_rows = rundir.read_metrics(entry["run_dir"])
        assert len(point_rows) == 20 * 2 and {r["seed"] for r in point_rows} == {0, 1}


@pytest.mark.parametrize("argv, fragment", [
    (["sweep", "ppo", "--grid", "learning_rate"], "--grid expects KEY=V1,V2"),
    (["sweep", "ppo", "--grid", "lr=1,2"], "unknown config key 'lr'"),
    (["sweep", "ppo", "--grid", "learning_rate=1e-3,1e-3"], "repeats a value"),
    (["sweep", "ppo", "--grid", "learning_rate=1e-3", "--set", "learning_rate=1"],
     "both swept (--grid) and set"),
    (["sweep", "ppo"], "at least one --grid"),
    (["sweep", "--resume", "/nonexistent"], "holds no sweep"),
    (["tune", "ppo", "--param", "learning_rate=exp:1:2"], "--param expects KEY=KIND:SPEC"),
    (["tune", "ppo", "--param", "num_envs=int:4:2"], "need low < high"),
    (["tune", "ppo", "--param", "learning_rate=log:0.1:1", "--trials", "0"], "trials must be"),
    (["train", "ppo", "--stop-at-return", "100"], "needs evaluation during training"),
    (["train", "ppo", "--eval-every", "-5"], "eval_every must be"),
    (["train", "ppo", "--init-from", "/nonexistent"], "does not exist"),
    (["train", "ppo", "--step", "1000"], "unrecognized arguments: --step"),
    (["show", "ppo", "--env", "Nope-v0"], "unknown environment 'Nope-v0'"),
    (["tune", "ppo", "--param", "activation=choice:tanh,relux"], "activation must be one of"),
    (["tune", "ppo", "--param", "num_envs=float:2:16"], "num_envs must be an integer"),
    (["sweep", "ppo", "--env", "gymnasium:CartPole-v1", "--grid", "learning_rate=1e-3,1e-4",
      "--seeds", "2"], "needs a JAX-native environment"),
])
def test_front_door_bad_input_is_one_line(capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert fragment in err, err


def test_tune_searches_with_optuna(tmp_path, capsys):
    pytest.importorskip("optuna")
    assert main(["tune", "ppo", "--env", "CartPole-v1", "--param",
                 "learning_rate=log:1e-4:1e-2", "--param", "ent_coef=choice:0.0,0.01",
                 "--trials", "2", "--steps", "1024", "--out", str(tmp_path / "t"),
                 *TINY[:6], "--no-progress"]) == 0
    result = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert len(result["trials"]) == 2
    for trial in result["trials"]:
        assert 1e-4 <= trial["params"]["learning_rate"] <= 1e-2
        assert trial["score"] == pytest.approx(np.mean(final_returns(trial["run_dir"])))
    assert result["best"]["score"] == max(t["score"] for t in result["trials"])
    assert "best of 2 trials" in capsys.readouterr().out


def test_outputs_go_only_to_existing_directories_and_never_over_a_tuning_run(trained, tmp_path,
                                                                          capsys):
    assert main(["plot", str(trained), "-o", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "tune.json").write_text("{}")
    assert main(["tune", "ppo", "--param", "learning_rate=log:1e-4:1e-2", "--out",
                 str(tmp_path / "t")]) == 2
    assert "already holds a tuning run" in capsys.readouterr().err


def test_piping_into_head_is_not_an_error(tmp_path):
    import subprocess
    import sys

    out = subprocess.run(f"{sys.executable} -m pgzoo.cli list | head -1", shell=True,
                         capture_output=True, text=True, executable="/bin/bash",
                         env={**__import__("os").environ, "PYTHONUNBUFFERED": "0"})
    assert out.stdout.startswith("algorithms") and "error" not in out.stderr
