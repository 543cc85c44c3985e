"""Progress output: the compile phase, plain lines for pipes and logs, a bar that fits the
terminal, losses; one real `pgzoo train` with stderr piped."""
import io
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

import pgzoo
from pgzoo.api import _progress
from pgzoo.cli import main
from pgzoo.errors import PgzooError
from pgzoo.run.progress import Progress, clock_time, short

TESTS = Path(__file__).resolve().parent
ESCAPE = "\x1b"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def rows(ret=212.3, **metrics):
    """One metrics row as the trainer writes it (PPO's metric names by default)."""
    metrics = metrics or {"policy_loss": 0.41, "value_loss": 3.2}
    return [{"iteration": 1, "seed": 0, "env_steps": 128, "episode_return": ret,
             "episode_length": 20.0, "episodes": 2, "approx_kl": 0.01, "entropy": 0.6,
             **metrics, "wall_time": 1.0}]


def lines_progress(total=500_000, description="ppo CartPole-v1", **kw):
    clock, out = Clock(), io.StringIO()
    return Progress(total, "lines", description, file=out, clock=clock, **kw), clock, out


def printed(out):
    return out.getvalue().splitlines()


def test_numbers_are_short():
    assert [short(x) for x in (512, 4096, 225_280, 500_000, 999_999, 1_500_000, 2e9)] == [
        "512", "4.1k", "225k", "500k", "1M", "1.5M", "2G"]
    assert [clock_time(s) for s in (2.9, 62, 3723)] == ["0:02", "1:02", "1:02:03"]


def test_lines_say_compiling_then_the_compile_time_then_progress_then_the_end():
    p, clock, out = lines_progress()
    assert printed(out) == ["[ppo CartPole-v1] compiling the training step..."]
    clock.t += 12.3
    p.update(1024, 500.0, rows())  # the first chunk: compilation and one iteration
    assert printed(out)[1] == "[ppo CartPole-v1] compiled the training step in 12.3s"
    clock.t += 1
    p.update(100_000, 99_000.0, rows())
    assert len(printed(out)) == 2  # the first status line comes ~2 s after compiling
    clock.t += 1.5
    p.update(225_280, 98_123.0, rows())
    assert printed(out)[2] == ("[ppo CartPole-v1] 225,280/500,000 steps (45%) | 98,123 steps/s "
                               "| return 212.3 | policy_loss 0.41 | 0:14<0:03")  # elapsed<left
    clock.t += 3
    p.update(300_000, 98_000.0, rows())
    assert len(printed(out)) == 3  # then every 10 s
    clock.t += 8
    p.update(400_000, 98_000.0, rows())
    assert printed(out)[3].startswith("[ppo CartPole-v1] 400,000/500,000 steps (80%)")
    clock.t += 1
    p.update(500_000, 98_000.0, rows())
    p.close()
    last = printed(out)[-1]
    assert len(printed(out)) == 5
    assert last.startswith("[ppo CartPole-v1] 500,000/500,000 steps (100%) |")
    assert last.endswith("0:26 elapsed") and "left" not in last
    for line in printed(out):
        assert len(line) < 120 and line.isascii() and ESCAPE not in line, line


def test_the_final_line_is_not_repeated_and_a_failed_compile_prints_no_progress():
    p, clock, out = lines_progress()
    clock.t += 5
    p.update(1024, 100.0, rows())
    clock.t += 3
    p.update(2048, 100.0, rows())
    n = len(printed(out))
    p.close()
    assert len(printed(out)) == n == 3
    p, clock, out = lines_progress()
    p.close()  # e.g. the environment failed while compiling: the error says the rest
    assert printed(out) == ["[ppo CartPole-v1] compiling the training step..."]


def test_lines_stay_under_120_characters():
    p, clock, out = lines_progress(50_000_000, "ppo my_package.environments:VeryLongName-v3")
    clock.t += 3
    p.update(1024, 1.0, rows(ret=-123456.7, policy_loss=-0.000365, value_loss=12345.6))
    clock.t += 3
    p.update(12_345_678, 1_234_567.0, rows(ret=-123456.7, policy_loss=-0.000365,
                                           value_loss=12345.6))
    p.close()
    status = printed(out)[2:]
    assert status and all(len(line) < 120 for line in printed(out)), printed(out)
    assert "12,345,678/50,000,000 steps (24%)" in status[0] and "policy_loss" in status[0]


def test_the_first_two_losses_averaged_over_finite_values():
    clock = Clock()
    p = Progress(1000, "bar", "sac Pendulum-v1", console=Console(file=io.StringIO(), width=200),
                 clock=clock)
    many = [{"episode_return": "", "actor_loss": math.nan, "alpha": 0.2, "critic_loss": 2.0,
             "value_loss": 9.0},
            {"episode_return": -150.0, "actor_loss": 1.0, "alpha": 0.2, "critic_loss": 4.0,
             "value_loss": 9.0}]
    p.update(100, 10.0, many)
    text = p.render(200).plain
    assert "ret -150.0" in text and "actor_loss 1 " in text and "critic_loss 3 " in text
    assert "alpha" not in text and "value_loss" not in text  # two at most; not other metrics
    p.close()
    p = Progress(1000, "bar", "x y", console=Console(file=io.StringIO(), width=200), clock=clock)
    p.update(100, 10.0, [{"episode_return": 1.0, "loss": 0.5, "entropy": 1.0}])
    assert "loss 0.5" in p.render(200).plain
    p.close()


def test_the_bar_shows_compiling_with_seconds_ticking():
    clock = Clock()
    console = Console(file=io.StringIO(), width=80, force_terminal=True)
    p = Progress(500_000, "bar", "ppo CartPole-v1", console=console, clock=clock)
    clock.t += 12.4
    assert "compiling" in p.render(80).plain and "12s" in p.render(80).plain
    clock.t += 73
    assert "85s" in p.render(80).plain
    p.update(1024, 500.0, rows())
    assert "compiling" not in p.render(80).plain
    p.close()
    assert "compiled the training step in 85.4s" in console.file.getvalue()


@pytest.mark.parametrize("description", ["ppo CartPole-v1", "ppo gymnax:CartPole-v1",
                                         "sac my_package.environments:VeryLongName-v3"])
def test_the_bar_fits_the_terminal_without_ellipses(description):
    clock = Clock()
    console = Console(file=io.StringIO(), width=80, force_terminal=True)
    p = Progress(500_000, "bar", description, console=console, clock=clock)
    clock.t += 12
    p.update(1024, 500.0, rows())
    clock.t += 2
    p.update(225_280, 98_123.0, rows())
    for width in (20, 30, 40, 60, 80, 100, 120, 200):
        text = p.render(width).plain
        assert cell_len(text) <= width and "…" not in text and "\n" not in text, (width, text)
        if width >= 40:
            assert "45%" in text and "225k/500k" in text, text
    at80 = p.render(80).plain
    assert "ret 212.3" in at80 and "policy_loss 0.41" in at80
    wide = p.render(200).plain
    assert "98.1k/s" in wide and "value_loss 3.2" in wide and "0:14<0:0" in wide
    p.close()
    shown = console.file.getvalue()  # what rich wrote to the 80-column terminal
    assert "…" not in shown and "45%" in shown and "ret 212.3" in shown and ESCAPE in shown


def test_another_budget_unit_is_named():
    clock = Clock()
    p = Progress(200, "bar", "es Pendulum-v1", "generations",
                 console=Console(file=io.StringIO(), width=100), clock=clock)
    p.update(10, 5.0, rows())
    p.update(90, 5.0, rows())
    assert "90/200 generations" in p.render(100).plain
    p.close()
    p, clock, out = lines_progress(200, "es Pendulum-v1", unit="generations")
    clock.t += 3
    p.update(10, 5.0, rows())
    p.update(90, 5.0, rows())
    p.close()
    assert "90/200 generations (45%)" in printed(out)[-1]


def test_modes(monkeypatch):
    out = io.StringIO()
    p = Progress(100, None, "ppo CartPole-v1", file=out)
    p.update(10, 5.0, rows())
    p.close()
    assert out.getvalue() == ""
    with pytest.raises(ValueError, match="progress mode"):
        Progress(100, "spinner", "x")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert (_progress(None), _progress(True), _progress(False)) == ("lines", "bar", None)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert _progress(None) == "bar"


def test_the_cli_passes_none_unless_no_progress(monkeypatch, capsys):
    seen = []

    def train(*args, **kwargs):
        seen.append(kwargs["progress"])
        raise PgzooError("stopped by the test")

    monkeypatch.setattr(pgzoo, "train", train)
    assert main(["train", "ppo", "--steps", "1000"]) == 2
    assert main(["train", "ppo", "--steps", "1000", "--no-progress"]) == 2
    assert seen == [None, False]


def test_a_piped_run_prints_plain_progress_lines(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    proc = subprocess.run(
        [sys.executable, "-m", "pgzoo.cli", "train", "ppo", "--env", "CartPole-v1", "--steps",
         "4096", "--set", "num_envs=2", "--set", "num_steps=64", "--set", "num_minibatches=2",
         "--eval-episodes", "0", "--no-tensorboard", "--run-dir", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert ESCAPE not in err, err
    ours = [line for line in err.splitlines() if re.match(r"\[ppo \S*CartPole-v1\] ", line)]
    assert re.fullmatch(r"\[ppo \S*CartPole-v1\] compiling the training step\.\.\.", ours[0])
    assert re.fullmatch(r"\[ppo \S*CartPole-v1\] compiled the training step in \d+\.\ds",
                        ours[1]), err
    status = [re.fullmatch(r"\[ppo \S*CartPole-v1\] ([\d,]+)/4,096 steps \(\d+%\) \|.*", line)
              for line in ours[2:]]
    assert status and all(status) and status[-1][1] == "4,096", err
    assert all(len(line) < 120 for line in ours), err
