"""Command line: ``pgzoo train | eval | plot | list``.

Bad input never ends in a traceback: it prints one line, ``error: ...``, and exits with code 2;
a run that fails on its own (it diverged, its environment failed, the disk filled) prints one
line and exits with code 1, its directory marked ``failed``; Ctrl-C or SIGTERM exits with 130.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pgzoo.errors import Interrupted, PgzooError, RunFailed

EXIT_FAILED = 1  # a run that stopped on its own (diverged, environment failed, disk full)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


TRUST_HELP = ("with a run directory: import the environment module that its config.json names "
              "(package.module:ClassName), which runs that module's code")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --step is not --steps
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, not argparse's usage block
        raise PgzooError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pgzoo", description="Policy-gradient reinforcement learning in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train an algorithm on an environment")
    t.add_argument("algo", nargs="?", help="algorithm name (see `pgzoo list`)")
    t.add_argument("--env", default=None,
                   help="environment spec (default: the algorithm's default environment, shown by "
                        "`pgzoo list`)")
    t.add_argument("--steps", type=int, default=None,
                   help="the budget per seed: environment steps (sweeps for dynamic programming)")
    t.add_argument("--seed", type=int, default=0, help="base seed (seed i uses seed + i)")
    t.add_argument("--seeds", type=int, default=1, help="train K seeds at once (JAX-native envs)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a Config field; repeatable")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoint")
    t.add_argument("--run-dir", help="write the run here instead of runs/<algo>-<env>-<time>")
    t.add_argument("--eval-episodes", type=int, default=10,
                   help="final evaluation episodes (0: none)")
    t.add_argument("--trust", action="store_true", help=TRUST_HELP)
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--no-tensorboard", action="store_true", help="skip TensorBoard events")
    t.add_argument("--wandb", action="store_true",
                   help="also log to Weights & Biases (pip install \"pgzoo[wandb]\"; project: "
                        "$WANDB_PROJECT, default pgzoo; WANDB_MODE=offline logs without network)")
    t.add_argument("--checkpoint-interval", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between checkpoints (default 30; one is always written at the "
                        "end, on Ctrl-C and on failure)")
    t.add_argument("--no-preset", action="store_true",
                   help="use the module defaults instead of the tuned preset of this algorithm "
                        "and environment (`pgzoo show ALGO --env ENV` lists both)")
    t.add_argument("--eval-every", type=int, default=0, metavar="STEPS",
                   help="evaluate every STEPS steps per seed during training (evals.csv, "
                        "checkpoints/best); 0: never (default)")
    t.add_argument("--eval-every-episodes", type=int, default=10, metavar="N",
                   help="deterministic episodes per evaluation during training (default 10)")
    t.add_argument("--stop-at-return", type=float, default=None, metavar="R",
                   help="stop once an evaluation's mean return over seeds reaches R (needs "
                        "--eval-every)")
    t.add_argument("--driver", choices=("compiled", "ray"), default=None,
                   help="where the actors of an actor-learner algorithm (impala, a3c) run: ray "
                        "(their default: Ray processes) or compiled (slices of one compiled "
                        "batch, in this process)")
    t.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="join this Ray cluster ('auto' or host:port) instead of starting Ray "
                        "inside the process (ray driver)")
    t.add_argument("--init-from", metavar="RUN_DIR",
                   help="fine-tune: start from the policy parameters of this run (same "
                        "algorithm and network settings)")

    sw = sub.add_parser("sweep", help="train a grid of settings x seeds and report each point")
    sw.add_argument("algo", nargs="?", help="algorithm name (see `pgzoo list`)")
    sw.add_argument("--env", default=None, help="environment spec (default: the algorithm's)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a Config field and its values (repeatable: the grid is their product; "
                         "list values are separated by ';', e.g. hidden_sizes=64,64;256,256)")
    sw.add_argument("--seeds", type=int, default=None,
                    help="seeds per point (default 3 on JAX-native environments, 1 on the "
                         "Gymnasium bridge)")
    sw.add_argument("--seed", type=int, default=0, help="base seed")
    sw.add_argument("--steps", type=int, default=None, help="steps per seed")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed Config field for every point; repeatable")
    sw.add_argument("--no-preset", action="store_true", help="start from the module defaults")
    sw.add_argument("--eval-episodes", type=int, default=10,
                    help="final evaluation episodes per seed (0: none)")
    sw.add_argument("--out", help="the sweep directory (default runs/sweep-<algo>-<env>-<time>)")
    sw.add_argument("--resume", metavar="SWEEP_DIR", help="finish an interrupted sweep")
    sw.add_argument("--no-progress", action="store_true", help="hide progress output")

    tu = sub.add_parser("tune", help="search settings with Optuna (pip install 'pgzoo[tune]')")
    tu.add_argument("algo", help="algorithm name (see `pgzoo list`)")
    tu.add_argument("--env", default=None, help="environment spec (default: the algorithm's)")
    tu.add_argument("--param", action="append", default=[], metavar="KEY=KIND:SPEC",
                    help="a searched Config field: log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or "
                         "choice:A,B,...; repeatable")
    tu.add_argument("--trials", type=int, default=20, help="runs to train (default 20)")
    tu.add_argument("--seeds", type=int, default=1, help="seeds per trial (default 1)")
    tu.add_argument("--seed", type=int, default=0, help="base seed (also the sampler's)")
    tu.add_argument("--steps", type=int, default=None, help="steps per seed")
    tu.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed Config field for every trial; repeatable")
    tu.add_argument("--no-preset", action="store_true", help="start from the module defaults")
    tu.add_argument("--out", help="the tuning directory (default runs/tune-<algo>-<env>-<time>)")
    tu.add_argument("--no-progress", action="store_true", help="hide progress output")

    sh = sub.add_parser("show", help="show an algorithm's settings: defaults, preset, overrides")
    sh.add_argument("algo", help="algorithm name (see `pgzoo list`)")
    sh.add_argument("--env", default=None, help="environment spec (default: the algorithm's)")
    sh.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a Config field; repeatable")
    sh.add_argument("--no-preset", action="store_true", help="show the module defaults only")

    e = sub.add_parser("eval", help="evaluate a trained run")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--env", default=None, help="evaluate on another spec of the same task")
    e.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    e.add_argument("--seed-index", type=int, default=0, metavar="K",
                   help="evaluate the policy of seed index K of a --seeds run (default 0)")
    e.add_argument("--video", metavar="OUT.gif", help="also record one episode as a GIF")
    e.add_argument("--trust", action="store_true", help=TRUST_HELP)
    e.add_argument("--best", action="store_true",
                   help="evaluate checkpoints/best (the best evaluation during training, "
                        "--eval-every) instead of the last checkpoint")

    pl = sub.add_parser("plot", help="plot learning curves of one or more runs")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("-o", "--out", default="curves.png")
    pl.add_argument("--title", default=None,
                    help="figure title (default: ALGO on ENV, or ENV, when the runs share them)")
    pl.add_argument("--stat", choices=("mean", "iqm"), default="mean",
                    help="line: mean or interquartile mean over seeds; the band is its 95%% "
                         "bootstrap interval (default mean)")
    pl.add_argument("--per-seed", action="store_true",
                    help="also draw each seed's curve, thin, in the run's colour")
    pl.add_argument("--values", action="store_true",
                    help="a tabular run on a grid world: draw V(s) and the greedy policy of its "
                         "final Q table (seed 0) instead of learning curves")
    pl.add_argument("--smooth", type=int, default=0, metavar="K",
                    help="moving average over K points of each seed's training curve "
                         "(default 0: none)")

    sub.add_parser("list", help="list algorithms, their action spaces and environment backends")
    return p


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PgzooError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def _device() -> str:
    """The accelerator JAX computes on: a GPU once JAX's CUDA plug-in is installed."""
    import jax

    device = jax.devices()[0]
    count = f" x{jax.device_count()}" if jax.device_count() > 1 else ""
    return f"{device.platform.upper()} ({device.device_kind}){count}"


def _train(args) -> int:
    import pgzoo

    if args.resume:
        from pgzoo.run.rundir import read_config

        cfg = read_config(Path(args.resume))
        if args.algo and args.algo != cfg["algo"]:
            raise PgzooError(f"--resume {args.resume} is a {cfg['algo']} run, not {args.algo}")
        if (args.set or args.env or args.seeds != 1 or args.no_preset or args.eval_every
                or args.stop_at_return is not None or args.init_from or args.driver):
            raise PgzooError("--resume continues a run with its own config and evaluation "
                             "schedule; drop --set, --env, --seeds, --no-preset, --eval-every, "
                             "--stop-at-return, --init-from and --driver (only --steps and "
                             "--ray-address may change)")
        run = pgzoo.resume(args.resume, args.steps, progress=False if args.no_progress else None,
                           tensorboard=not args.no_tensorboard, eval_episodes=args.eval_episodes,
                           trust=args.trust, checkpoint_interval=args.checkpoint_interval,
                           wandb=args.wandb, ray_address=args.ray_address)
    else:
        if not args.algo:
            raise PgzooError("train needs an algorithm name (see `pgzoo list`) or --resume RUN_DIR")
        run = pgzoo.train(args.algo, args.env, args.steps, args.seed,
                          seeds=args.seeds, run_dir=args.run_dir,
                          progress=False if args.no_progress else None,
                          tensorboard=not args.no_tensorboard, eval_episodes=args.eval_episodes,
                          checkpoint_interval=args.checkpoint_interval,
                          preset=not args.no_preset, eval_every=args.eval_every,
                          eval_every_episodes=args.eval_every_episodes,
                          stop_at_return=args.stop_at_return, init_from=args.init_from,
                          trust=args.trust, wandb=args.wandb, driver=args.driver,
                          ray_address=args.ray_address, **_overrides(args.set))
    ev = run.eval
    result = f" | eval mean return {ev['mean_return']:.1f}" if ev else ""
    done = run.summary["env_steps"]
    asked = args.steps if args.steps is not None else run.experiment.total_steps
    rounded = (f" ({asked} rounded down to whole iterations of "
               f"{run.experiment.agent.units_per_iteration})"
               if done != asked and not run.summary.get("stopped_early") else "")
    stopped = (f" (stopped early: {run.summary['stopped_early']})"
               if run.summary.get("stopped_early") else "")
    unit = {"env_steps": "steps"}.get(run.experiment.algorithm.budget_unit,
                                      run.experiment.algorithm.budget_unit)
    print(f"done: {done} {unit} per seed{rounded}{stopped} in {run.summary['wall_time']:.1f}s "
          f"on {_device()}{result} | run directory: {run.run_dir}")
    return 0


def _eval(args) -> int:
    import pgzoo
    from pgzoo.run import rundir

    if args.video and not args.video.lower().endswith(".gif"):
        raise PgzooError(f"--video writes a GIF; give a path ending in .gif, got {args.video!r}")
    if args.video:
        from pgzoo import envs
        from pgzoo.run.video import prefer_headless_gl

        prefer_headless_gl()  # before MuJoCo is imported
        spec = rundir.read_config(Path(args.run_dir))["env"]
        if envs.imports_code(spec) is None:  # a user's module is imported only after --trust
            envs.render_factory(spec)  # no renderable twin (Brax): say so before evaluating
    policy = pgzoo.load(args.run_dir, args.seed_index, trust=args.trust, best=args.best)
    result = pgzoo.evaluate(policy, args.env, episodes=args.episodes, seed=args.seed)
    result = {"env": args.env or policy.env_spec, "seed": args.seed,
              "seed_index": args.seed_index,
              "checkpoint": "best" if args.best else "last", **result}
    if args.video:
        from pgzoo.run.video import record_gif

        result["video"] = record_gif(policy, Path(args.video), seed=args.seed)
    print(json.dumps({k: v for k, v in result.items() if k != "returns"}, indent=2))
    try:  # a new file: eval.json stays the training's final evaluation
        path = rundir.write_evaluation(Path(args.run_dir), result)
    except OSError as err:
        where = Path(args.run_dir) / rundir.EVALUATIONS
        raise PgzooError(f"cannot write the evaluation in {where}: {err.strerror} (the result "
                         "is printed above)") from None
    print(f"evaluation written to {path}", file=sys.stderr)
    return 0


def _plot(args) -> int:
    from pgzoo.run.plot import plot_runs, value_map

    if args.values:
        import numpy as np

        import pgzoo
        from pgzoo import envs

        if len(args.run_dirs) != 1:
            raise PgzooError("--values draws one run: give one run directory")
        policy = pgzoo.load(args.run_dirs[0])
        model = envs.make(policy.env_spec, one_hot=False).tabular_model()
        q = np.asarray(policy.params[0]) if model is not None else None
        if model is None or model.grid is None or q is None or q.shape != (
                model.num_states, model.num_actions):
            raise PgzooError(f"--values needs a tabular method's run on a grid world "
                             f"(FrozenLake, CliffWalking, or an MDP with a grid); "
                             f"{args.run_dirs[0]} is {policy.algo} on {policy.env_spec}")
        out = value_map(model, q, Path(args.out), args.title or
                        f"{policy.algo} on {policy.env_spec}: V(s) and the greedy policy")
        print(f"wrote {out}")
        return 0
    if args.smooth < 0:
        raise PgzooError(f"--smooth must be an integer >= 0 (0: no smoothing), got {args.smooth}")
    out = plot_runs([Path(d) for d in args.run_dirs], Path(args.out), args.title, stat=args.stat,
                    per_seed=args.per_seed, smooth=args.smooth)
    print(f"wrote {out}")
    return 0


def _sweep(args) -> int:
    import pgzoo

    progress = None if not args.no_progress else False
    if args.resume:
        if args.algo or args.grid or args.set or args.env or args.out:
            raise PgzooError("--resume finishes a sweep with its own settings; drop the "
                             "algorithm, --env, --grid, --set and --out")
        report = pgzoo.resume_sweep(args.resume, progress=progress)
    else:
        if not args.algo:
            raise PgzooError("sweep needs an algorithm name (see `pgzoo list`) or --resume DIR")
        report = pgzoo.sweep(args.algo, args.env, args.grid, args.steps, args.seed,
                             seeds=args.seeds, out=args.out, progress=progress,
                             eval_episodes=args.eval_episodes, preset=not args.no_preset,
                             **_overrides(args.set))
    print(report["table"])
    print(f"report: {Path(report['sweep_dir']) / 'report.md'} (and report.json, report.png)")
    return 0


def _tune(args) -> int:
    import pgzoo

    result = pgzoo.tune(args.algo, args.env, args.param, args.trials, args.steps, args.seed,
                        seeds=args.seeds, out=args.out,
                        progress=None if not args.no_progress else False,
                        preset=not args.no_preset, **_overrides(args.set))
    best = result["best"]
    print(f"best of {len(result['trials'])} trials: trial {best['trial']}, mean final return "
          f"{best['score']:.1f}, " + " ".join(f"--set {k}={v}" for k, v in best["params"].items()))
    print(f"all trials: {Path(result['tune_dir']) / 'tune.json'}")
    return 0


def _show(args) -> int:
    from pgzoo.api import describe

    print(describe(args.algo, args.env, _overrides(args.set), preset=not args.no_preset))
    return 0


def _list(_args) -> int:
    from pgzoo import algos, envs

    print("algorithms (name, action spaces, default environment):")
    for name, algorithm in algos.ALGORITHMS.items():
        print(f"  {name:<14} {', '.join(algorithm.action_spaces):<22} "
              f"{algorithm.default_env:<13} {algorithm.summary}")
    if algos.PLANNED:
        print("planned, not implemented yet: " + ", ".join(algos.PLANNED))
    print("environment backends:")
    for name, text in envs.BACKENDS.items():
        print(f"  {name:<26} {text}")
    print("JAX-native ids: " + ", ".join(envs.jax_native_ids() + tuple(envs.OWN)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from pgzoo.run import signals

    # `--env module:Class` finds a module in the working directory, as `python -m` would
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    try:
        with signals.interrupt_during_start_up():
            args = _parser().parse_args(argv)
            commands = {"train": _train, "eval": _eval, "plot": _plot, "list": _list,
                        "show": _show, "sweep": _sweep, "tune": _tune}
            return commands[args.command](args)
    except RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except PgzooError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `pgzoo list | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # the file system refused a path the user gave
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        if isinstance(stop, Interrupted):
            print("interrupted: the last checkpoint and metrics are kept; continue with "
                  f"`{stop.resume_command}`", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
