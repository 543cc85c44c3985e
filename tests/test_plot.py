"""Learning-curve plots and the bootstrap statistics behind them, on hand-written run directories
(no training)."""
import csv

import numpy as np
import pytest
import scipy.stats

from pgzoo.cli import main
from pgzoo.errors import PgzooError
from pgzoo.run.plot import format_count, moving_average, plot_runs, read_evals
from pgzoo.run.rundir import write_json
from pgzoo.run.stats import bootstrap_curve, bootstrap_interval, iqm, summarize

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(path, seeds=3, iters=60, algo="ppo", env="CartPole-v1", budget="env_steps",
             evals_every=0, rng_seed=0):
    """A run directory as the trainer writes it: config.json, metrics.csv (some iterations finish
    no episode), and evals.csv when ``evals_every``."""
    path.mkdir(parents=True)
    write_json(path / "config.json", {"algo": algo, "env": env, "total_steps": iters * 256,
                                      "seed": 0, "seeds": seeds, "config": {},
                                      "status": "finished"})
    rng = np.random.default_rng(rng_seed)
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "seed", budget, "episode_return", "episode_length", "episodes",
                    "loss", "wall_time"])
        for it in range(1, iters + 1):
            for s in range(seeds):
                ret = "" if rng.random() < 0.1 else f"{200 * it / iters + rng.normal(0, 20):.2f}"
                w.writerow([it, s, it * 256, ret, 50, 0 if ret == "" else 2, 0.5, it / 100])
    if evals_every:
        with open(path / "evals.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["iteration", "seed", budget, "eval_return", "eval_return_std",
                        "eval_length", "eval_episodes", "wall_time"])
            for it in range(evals_every, iters + 1, evals_every):
                for s in range(seeds):
                    w.writerow([it, s, it * 256, 250 * it / iters + s, 3.0, 80, 10, it / 100])
    return path


def is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG


# ---- statistics -------------------------------------------------------------------------------

def test_iqm_of_known_arrays():
    assert iqm([1, 2, 3, 4]) == 2.5  # middle two of four
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(3.5)  # 0, 1 and 6, 100 dropped
    assert iqm([5.0]) == 5.0 and iqm([1, 3, 11]) == 5.0  # fewer than four: nothing trimmed
    x = np.random.default_rng(0).normal(size=(20, 3))
    assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x.ravel(), 0.25))


def test_interval_contains_the_point_and_shrinks_with_more_runs():
    rng = np.random.default_rng(1)
    widths = []
    for runs in (5, 20, 80):
        x = rng.normal(10.0, 3.0, size=runs)
        for stat in ("mean", "iqm", "median"):
            point, low, high = bootstrap_interval(x, stat, reps=1000, seed=0)
            assert low <= point <= high
        point, low, high = bootstrap_interval(x, "mean", reps=1000, seed=0)
        assert point == pytest.approx(x.mean())
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # the standard error shrinks as 1/sqrt(runs): 16 times the runs, about a quarter the width
    assert 0.15 < widths[2] / widths[0] < 0.4


def test_interval_is_deterministic_and_the_confidence_widens_it():
    x = np.random.default_rng(2).normal(size=12)
    assert bootstrap_interval(x, "iqm", seed=3) == bootstrap_interval(x, "iqm", seed=3)
    assert bootstrap_interval(x, "iqm", seed=3) != bootstrap_interval(x, "iqm", seed=4)
    _, low90, high90 = bootstrap_interval(x, "mean", confidence=0.9)
    _, low99, high99 = bootstrap_interval(x, "mean", confidence=0.99)
    assert low99 < low90 and high90 < high99


def test_interval_of_a_constant_array_is_a_point():
    for stat in ("mean", "iqm", "median"):
        assert bootstrap_interval(np.full(7, 3.7), stat) == pytest.approx((3.7, 3.7, 3.7),
                                                                          rel=1e-12)
        point, low, high = bootstrap_curve(np.full((5, 9), -2.5), stat)
        assert (point == -2.5).all() and (low == -2.5).all() and (high == -2.5).all()


def test_stratified_bootstrap_matches_a_reference_loop():
    """Two tasks of different scale: runs are resampled within each task, independently, from
    the same (reps, runs, tasks) draws that a plain loop makes one replicate at a time."""
    scores = np.stack([np.random.default_rng(5).normal(0, 1, 10),
                       np.random.default_rng(6).normal(100, 10, 10)], axis=1)  # 10 runs x 2
    reps, seed = 500, 7
    index = np.random.default_rng(seed).integers(0, 10, size=(reps, 10, 2))
    reference = {"mean": [], "iqm": [], "median": []}
    for b in range(reps):
        sample = np.stack([scores[index[b, :, m], m] for m in range(2)], axis=1)
        reference["mean"].append(np.mean(np.mean(sample, axis=0)))  # rliable aggregate_mean
        reference["iqm"].append(scipy.stats.trim_mean(sample, 0.25, axis=None))
        reference["median"].append(np.median(np.mean(sample, axis=0)))
    for stat, values in reference.items():
        low, high = np.percentile(values, [2.5, 97.5])
        point, got_low, got_high = bootstrap_interval(scores, stat, reps=reps, seed=seed)
        assert (got_low, got_high) == pytest.approx((low, high), rel=1e-10)
    # a statistic given as a function is called on each replicate: the same interval
    def mean_of_means(x):
        return float(np.mean(np.mean(x, axis=0)))

    assert bootstrap_interval(scores, mean_of_means, reps=reps, seed=seed) == pytest.approx(
        bootstrap_interval(scores, "mean", reps=reps, seed=seed), rel=1e-10)
    # stratified: a task's runs never mix with another's, so each replicate keeps both scales
    point, low, high = bootstrap_interval(scores, "mean", reps=reps, seed=seed)
    assert 40 < low < point < high < 60


def test_summarize():
    x = np.arange(20.0)
    s = summarize(x, reps=500)
    assert s["n"] == 20 and s["tasks"] == 1 and s["confidence"] == 0.95
    assert s["mean"] == pytest.approx(9.5) and s["iqm"] == pytest.approx(9.5)
    assert s["mean_ci"][0] < 9.5 < s["mean_ci"][1] and s["iqm_ci"][0] < 9.5 < s["iqm_ci"][1]
    assert all(isinstance(v, float) for v in (s["mean"], *s["mean_ci"], s["iqm"], *s["iqm_ci"]))
    with_outlier = summarize(np.append(np.ones(9), 1000.0))
    assert with_outlier["iqm"] == 1.0 and with_outlier["mean"] > 100  # IQM ignores the outlier
    with pytest.raises(PgzooError, match="non-finite"):
        summarize([1.0, np.nan])
    with pytest.raises(PgzooError, match="non-empty"):
        summarize([])
    with pytest.raises(PgzooError, match="unknown statistic"):
        bootstrap_interval(x, "mode")


def test_bootstrap_curve_matches_pointwise_resampling():
    curves = np.random.default_rng(8).normal(size=(6, 40)).cumsum(axis=1)
    index = np.random.default_rng(0).integers(0, 6, size=(300, 6))
    for stat, reduce in (("mean", np.mean), ("iqm", iqm), ("median", np.median)):
        point, low, high = bootstrap_curve(curves, stat, reps=300, seed=0, chunk=1000)
        replicates = reduce(curves[index], axis=1)  # (reps, points)
        assert point == pytest.approx(reduce(curves, axis=0))
        assert low == pytest.approx(np.percentile(replicates, 2.5, axis=0))
        assert high == pytest.approx(np.percentile(replicates, 97.5, axis=0))
        assert (low <= point + 1e-12).all() and (point <= high + 1e-12).all()


# ---- plots ------------------------------------------------------------------------------------

def test_format_count():
    assert [format_count(x) for x in (0, 40, 999, 1000, 1500, 250_000, 999_999, 1_000_000,
                                      1_500_000, 12_000_000, 2e9, 2.5)] == [
        "0", "40", "999", "1k", "1.5k", "250k", "1M", "1M", "1.5M", "12M", "2B", "2.5"]


def test_moving_average():
    y = np.array([0.0, 2, 4, 6, 8])
    assert moving_average(y, 0) is y and moving_average(y, 1) is y
    assert moving_average(y, 2) == pytest.approx([0, 1, 3, 5, 7])  # a short window at the start
    assert moving_average(y, 10) == pytest.approx([0, 1, 2, 3, 4])


def test_plot_one_seed_several_seeds_and_options(tmp_path):
    one = fake_run(tmp_path / "one", seeds=1)
    three = fake_run(tmp_path / "three", seeds=3)
    a2c = fake_run(tmp_path / "a2c", seeds=4, algo="a2c", rng_seed=1)
    assert is_png(plot_runs([one], one / "curve.png"))  # as the trainer calls it
    options = {"mean": {}, "iqm": {"stat": "iqm"}, "per_seed": {"per_seed": True},
               "smooth": {"smooth": 5}, "all": {"stat": "iqm", "per_seed": True, "smooth": 3}}
    for name, kwargs in options.items():
        assert is_png(plot_runs([three, a2c], tmp_path / f"{name}.png", "t", **kwargs))
    assert (plot_runs([three], tmp_path / "c.pdf")).read_bytes()[:4] == b"%PDF"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary


def test_plot_legend_title_and_axes(tmp_path, monkeypatch):
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, f, **kw: (figures.append(self), f.write(b"x")))
    three = fake_run(tmp_path / "three", seeds=3, evals_every=10)
    plot_runs([three], tmp_path / "a.png", stat="iqm", per_seed=True)
    fig = figures[-1]
    train, evals = fig.axes
    assert fig.get_suptitle() == "ppo on CartPole-v1"
    assert evals.get_title() == "deterministic evaluation return"
    assert train.get_xlabel() == "environment steps"
    assert [t.get_text() for t in train.get_legend().get_texts()] == [
        "ppo CartPole-v1: IQM of 3 seeds, 95% bootstrap CI (thin lines: each seed)"]
    assert train.xaxis.get_major_formatter()(250_000, 0) == "250k"

    gens = fake_run(tmp_path / "gens", seeds=1, algo="es", env="Pendulum-v1",
                    budget="generations")
    plot_runs([gens, three], tmp_path / "b.png", smooth=4)
    (ax,) = figures[-1].axes[:1]
    assert ax.get_title() == "training episodes"  # three has evals.csv: two panels
    assert figures[-1].get_suptitle() == "learning curves"
    assert ax.get_xlabel() == "generations / environment steps"
    assert ax.get_ylabel() == "episode return (moving average of 4)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "es Pendulum-v1 (1 seed)", "ppo CartPole-v1: mean of 3 seeds, 95% bootstrap CI"]

    a2c = fake_run(tmp_path / "a2c-run", seeds=2, algo="a2c")
    plot_runs([a2c, a2c], tmp_path / "c.png", title="Mine")
    (ax,) = figures[-1].axes
    assert ax.get_title() == "Mine"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "a2c (a2c-run): mean of 2 seeds, 95% bootstrap CI"] * 2
    plot_runs([a2c, three], tmp_path / "d.png")
    assert figures[-1].get_suptitle() == "CartPole-v1"  # one task, two algorithms


def test_plot_with_evals(tmp_path):
    runs = [fake_run(tmp_path / "r1", seeds=3, evals_every=10),
            fake_run(tmp_path / "r2", seeds=1, evals_every=20, algo="a2c"),
            fake_run(tmp_path / "r3", seeds=2)]  # without evals.csv: only the training panel
    assert is_png(plot_runs(runs, tmp_path / "evals.png", per_seed=True))
    assert is_png(plot_runs(runs[:1], tmp_path / "evals1.png", stat="iqm", smooth=4))


def test_read_evals_is_tolerant(tmp_path):
    run = fake_run(tmp_path / "run", seeds=2, evals_every=30)
    assert read_evals(tmp_path / "run" / "nowhere") is None
    with open(run / "evals.csv", "a") as f:
        f.write("90,0,23040,nan,0,0,10,1.0\n")  # a non-finite return
        f.write("90,1,23040,oops,0,0,10,1.0\n")  # a non-numeric cell
        f.write("120,0,307")  # cut short by a kill
    rows = read_evals(run)
    assert [(r["iteration"], r["seed"], r["env_steps"], r["eval_return"]) for r in rows] == [
        (30, 0, 7680, 125), (30, 1, 7680, 126), (60, 0, 15360, 250), (60, 1, 15360, 251)]
    assert is_png(plot_runs([run], tmp_path / "c.png"))
    (run / "evals.csv").write_text("iteration,seed,env_steps,eval_return\n")  # none yet
    assert read_evals(run) == []
    assert is_png(plot_runs([run], tmp_path / "c.png"))
    (run / "evals.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PgzooError, match="not an evaluation file"):
        plot_runs([run], tmp_path / "c.png")


def test_plot_bad_arguments(tmp_path):
    run = fake_run(tmp_path / "run")
    with pytest.raises(PgzooError, match="give a file name ending in one of"):
        plot_runs([run], tmp_path / "c.xyz")
    with pytest.raises(PgzooError, match="smooth must be an integer >= 0"):
        plot_runs([run], tmp_path / "c.png", smooth=-1)
    with pytest.raises(PgzooError, match="unknown statistic"):
        plot_runs([run], tmp_path / "c.png", stat="median")
    with pytest.raises(PgzooError, match="at least one run directory"):
        plot_runs([], tmp_path / "c.png")


def test_plot_is_fast_for_many_seeds(tmp_path):
    import time

    run = fake_run(tmp_path / "run", seeds=8, iters=1000)
    plot_runs([run], tmp_path / "warm.png")  # matplotlib's import and font cache
    start = time.perf_counter()
    plot_runs([run], tmp_path / "c.png", stat="iqm")
    assert time.perf_counter() - start < 1.5  # about 0.2 s; the trainer calls it every run


def test_cli_plot(tmp_path, capsys):
    a = fake_run(tmp_path / "a", seeds=3, evals_every=10)
    b = fake_run(tmp_path / "b", seeds=2, algo="a2c")
    out = tmp_path / "curves.png"
    assert main(["plot", str(a), str(b), "-o", str(out), "--stat", "iqm", "--per-seed",
                 "--smooth", "3", "--title", "CartPole"]) == 0
    assert is_png(out) and f"wrote {out}" in capsys.readouterr().out
    for bad, message in ((["--smooth", "-2"], "--smooth must be an integer >= 0"),
                         (["--smooth", "2.5"], "invalid int value"),
                         (["--smooth", "x"], "invalid int value"),
                         (["--stat", "median"], "invalid choice")):
        assert main(["plot", str(a), "-o", str(out), *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
