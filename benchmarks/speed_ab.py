"""PPO on JAX-native CartPole-v1, steady-state steps/s: one commit against an earlier one.

    python benchmarks/speed_ab.py BASE [HEAD]       # 3 alternating runs of each, 500k steps

Both commits (HEAD defaults to HEAD) are checked out with `git worktree` under /tmp and run with
their own source first on PYTHONPATH (the installed dependencies are shared), so edits in the
working tree do not leak into the measurement. Runs alternate (old, new, old, new, ...) so
that slow periods of a shared machine hit both sides. "Steady" leaves out the first chunk, which
includes compilation (`common.steady_steps_per_second`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import OUT, machine, steady_steps_per_second

ROOT = Path(__file__).resolve().parents[1]


def run_once(tree: Path, run_dir: Path, steps: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cli = "import sys; from pgzoo.cli import main; sys.exit(main())"
    subprocess.run([sys.executable, "-c", cli, "train", "ppo", "--env", "CartPole-v1",
                    "--steps", str(steps), "--run-dir", str(run_dir), "--no-progress",
                    "--no-tensorboard", "--eval-episodes", "0"], env=env, check=True, cwd=tree,
                   stdout=subprocess.DEVNULL)
    return steady_steps_per_second(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the earlier commit to compare with")
    parser.add_argument("head", nargs="?", default="HEAD", help="the later commit (HEAD)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side")
    parser.add_argument("--steps", type=int, default=500_000)
    args = parser.parse_args()
    revs = {"base": args.base, "head": args.head}
    trees = {}
    for side in revs:
        trees[side] = Path(tempfile.mkdtemp(prefix=f"pgzoo-{side}-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(trees[side]), revs[side]],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    results: dict[str, list[float]] = {"base": [], "head": []}
    try:
        for i in range(args.runs):
            for side, tree in trees.items():
                run_dir = OUT / f"speed_ab_{side}_{i}"
                subprocess.run(["rm", "-rf", str(run_dir)], check=True)
                sps = run_once(tree, run_dir, args.steps)
                results[side].append(sps)
                print(f"{side} run {i}: {sps:,.0f} steps/s", flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False)
    names = {side: subprocess.run(["git", "rev-parse", "--short", revs[side]], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
             for side in trees}
    print(f"machine: {machine()}")
    for side, name in names.items():
        v = results[side]
        print(f"{name}: median {statistics.median(v):,.0f} steps/s over {len(v)} runs "
              f"({', '.join(f'{x:,.0f}' for x in v)})")
    ratio = statistics.median(results["head"]) / statistics.median(results["base"])
    print(f"head / base: {ratio:.3f}")


if __name__ == "__main__":
    main()
