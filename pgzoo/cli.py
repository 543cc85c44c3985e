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
    t.add_argument("--steps", type=int, default=None, help="total environment steps per seed")
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
    t.add_argument("--checkpoint-interval", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between checkpoints (default 30; one is always written at the "
                        "end, on Ctrl-C and on failure)")

    e = sub.add_parser("eval", help="evaluate a trained run")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--env", default=None, help="evaluate on another spec of the same task")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--video", metavar="OUT.gif", help="also record one episode as a GIF")
    e.add_argument("--trust", action="store_true", help=TRUST_HELP)

    pl = sub.add_parser("plot", help="plot learning curves of one or more runs")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("-o", "--out", default="curves.png")
    pl.add_argument("--title", default=None)

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


def _train(args) -> int:
    import pgzoo

    if args.resume:
        from pgzoo.run.rundir import read_config

        cfg = read_config(Path(args.resume))
        if args.algo and args.algo != cfg["algo"]:
            raise PgzooError(f"--resume {args.resume} is a {cfg['algo']} run, not {args.algo}")
        if args.set or args.env or args.seeds != 1:
            raise PgzooError("--resume continues a run with its own config; drop --set, --env "
                             "and --seeds (only --steps may change)")
        run = pgzoo.resume(args.resume, args.steps, progress=not args.no_progress,
                           tensorboard=not args.no_tensorboard, eval_episodes=args.eval_episodes,
                           trust=args.trust, checkpoint_interval=args.checkpoint_interval)
    else:
        if not args.algo:
            raise PgzooError("train needs an algorithm name (see `pgzoo list`) or --resume RUN_DIR")
        run = pgzoo.train(args.algo, args.env, args.steps, args.seed,
                          seeds=args.seeds, run_dir=args.run_dir, progress=not args.no_progress,
                          tensorboard=not args.no_tensorboard, eval_episodes=args.eval_episodes,
                          checkpoint_interval=args.checkpoint_interval, **_overrides(args.set))
    ev = run.eval
    result = f" | eval mean return {ev['mean_return']:.1f}" if ev else ""
    done = run.summary["env_steps"]
    asked = args.steps if args.steps is not None else run.experiment.total_steps
    rounded = (f" ({asked} rounded down to whole iterations of "
               f"{run.experiment.agent.units_per_iteration})" if done != asked else "")
    print(f"done: {done} steps per seed{rounded} in {run.summary['wall_time']:.1f}s"
          f"{result} | run directory: {run.run_dir}")
    return 0


def _eval(args) -> int:
    import pgzoo
    from pgzoo.run import rundir

    if args.video and not args.video.lower().endswith(".gif"):
        raise PgzooError(f"--video writes a GIF; give a path ending in .gif, got {args.video!r}")
    policy = pgzoo.load(args.run_dir, trust=args.trust)
    result = pgzoo.evaluate(policy, args.env, episodes=args.episodes, seed=args.seed)
    if args.video:
        from pgzoo.run.video import record_gif

        result["video"] = record_gif(policy, Path(args.video), seed=args.seed)
    print(json.dumps({k: v for k, v in result.items() if k != "returns"}, indent=2))
    path = Path(args.run_dir) / rundir.EVAL
    try:
        rundir.write_json(path, result)
    except OSError as err:
        raise PgzooError(f"cannot write {path}: {err.strerror} (the result is printed above)"
                         ) from None
    return 0


def _plot(args) -> int:
    from pgzoo.run.plot import plot_runs

    out = plot_runs([Path(d) for d in args.run_dirs], Path(args.out), args.title)
    print(f"wrote {out}")
    return 0


def _list(_args) -> int:
    from pgzoo import algos, envs

    print("algorithms (name, action spaces, default environment):")
    for name, algorithm in algos.ALGORITHMS.items():
        print(f"  {name:<14} {', '.join(algorithm.action_spaces):<22} "
              f"{algorithm.default_env:<13} {algorithm.summary}")
    print("planned, not implemented yet: " + ", ".join(algos.PLANNED))
    print("environment backends:")
    for name, text in envs.BACKENDS.items():
        print(f"  {name:<26} {text}")
    print("JAX-native ids: " + ", ".join(envs.jax_native_ids()))
    return 0


def main(argv: list[str] | None = None) -> int:
    from pgzoo.run import signals

    # `--env module:Class` finds a module in the working directory, as `python -m` would
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    try:
        with signals.interrupt_during_start_up():
            args = _parser().parse_args(argv)
            commands = {"train": _train, "eval": _eval, "plot": _plot, "list": _list}
            return commands[args.command](args)
    except RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except PgzooError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:  # the file system refused a path the user gave
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        if isinstance(stop, Interrupted):
            print("interrupted: the last checkpoint and metrics are kept; continue with "
                  f"`pgzoo train --resume {stop.run_dir}`", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
