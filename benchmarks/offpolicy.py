"""Off-policy actor-critics for continuous control: DPG, DDPG, TD3, SAC (both versions), D4PG.

    python benchmarks/offpolicy.py native            # Pendulum-v1, JAX-native, 3 seeds each
    python benchmarks/offpolicy.py bridge            # gymnasium:Pendulum-v1, 3 seeds each
    python benchmarks/offpolicy.py throughput        # SAC and TD3 beside Stable-Baselines3
    python benchmarks/offpolicy.py memory            # peak RSS, 1M buffer, HalfCheetah-v5
    python benchmarks/offpolicy.py halfcheetah       # 300k MuJoCo steps, 3 seeds (hours)
    python benchmarks/offpolicy.py NAME ...          # single experiments
    ... --seeds 0,1                                  # other seeds than 0, 1, 2
    ... --reuse                                      # keep runs in benchmarks/out that finished
                                                     # with the same settings (resumable)

Results go to docs/benchmarks/offpolicy.json and plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import onpolicy
from common import DOCS, OUT, machine, steady_steps_per_second
from onpolicy import EXPERIMENTS

import pgzoo
from pgzoo.algos import presets

# Settings and budgets are the package's presets (pgzoo/algos/presets.py): SAC on Pendulum uses
# the rl-baselines3-zoo learning rate 1e-3; on HalfCheetah every algorithm starts learning after
# 10k random steps, and D4PG uses 5-step returns and a support of [-200, 1200].
PENDULUM = {"td3": ">= -200 within 20k", "ddpg": ">= -200 within 20k",
            "sac": ">= -200 within 20k", "d4pg": ">= -200 within 20k",
            "sac_v1": ">= -200 within 50k", "dpg": ">= -400 within 200k"}
HALFCHEETAH = ("td3", "sac", "ddpg", "d4pg")

EXPERIMENTS.clear()
for algo, target in PENDULUM.items():
    steps = presets.PRESETS[(algo, "Pendulum-v1")].steps
    EXPERIMENTS[f"{algo}_pendulum"] = (algo, "Pendulum-v1", steps, {}, target)
    EXPERIMENTS[f"{algo}_pendulum_bridge"] = (algo, "gymnasium:Pendulum-v1", steps, {}, target)
for algo in HALFCHEETAH:
    target = ">= 6500 at 300k (deterministic eval)" if algo in ("td3", "sac") else "reported"
    EXPERIMENTS[f"{algo}_halfcheetah"] = (algo, "gymnasium:HalfCheetah-v5", 300_000, {}, target)
onpolicy.RESULTS_FILE = "offpolicy.json"


def sb3_steps_per_second(algo: str, steps: int) -> float:
    import torch
    from stable_baselines3 import SAC, TD3

    torch.set_num_threads(2)
    cls = {"sac": SAC, "td3": TD3}[algo]
    model = cls("MlpPolicy", "Pendulum-v1", seed=0, device="cpu", verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    return steps / (time.time() - t0)


def throughput() -> dict:
    """One run each, SB3's default hyperparameters on both sides (pgzoo's defaults are SB3's)."""
    result = {}
    for algo in ("sac", "td3"):
        sb3 = sb3_steps_per_second(algo, 5_000)
        row = {"sb3_steps_per_second": round(sb3, 1)}
        for backend, env in (("bridge", "gymnasium:Pendulum-v1"), ("native", "Pendulum-v1")):
            run_dir = OUT / f"{algo}-throughput-{backend}"
            shutil.rmtree(run_dir, ignore_errors=True)
            run = pgzoo.train(algo, env, 10_000, 0, run_dir=run_dir, progress=False)
            ours = run.summary["env_steps"] / run.summary["wall_time"]
            steady = steady_steps_per_second(run_dir)
            row[backend] = {"steps_per_second": round(ours, 1),
                            "steady_steps_per_second": round(steady, 1),
                            "speedup": round(ours / sb3, 2),
                            "steady_speedup": round(steady / sb3, 2)}
        result[algo] = row
        print(algo, row, flush=True)
    result["command"] = ("pgzoo train {sac,td3} --env {gymnasium:Pendulum-v1,Pendulum-v1} "
                         "--steps 10000; SB3 SAC / TD3 ('MlpPolicy', 'Pendulum-v1'), 5000 steps")
    return result


def memory() -> dict:
    """Peak resident memory of a HalfCheetah-v5 run with the default 1M-transition buffer."""
    result = {}
    for algo in ("sac", "td3"):
        run_dir = OUT / f"{algo}-memory"
        shutil.rmtree(run_dir, ignore_errors=True)
        args = ["train", algo, "--env", "gymnasium:HalfCheetah-v5", "--steps", "3000", "--set",
                "learning_starts=1000", "--no-progress", "--run-dir", str(run_dir),
                "--eval-episodes", "1"]
        # a fresh process per algorithm, reporting its own peak resident set size (KiB)
        code = ("import resource, sys; from pgzoo.cli import main; main(sys.argv[1:]); "
                "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, *args], check=True,
                             capture_output=True, text=True).stdout
        peak_kib = int(out.split("PEAK")[-1])
        result[algo] = {"command": "pgzoo " + " ".join(args), "buffer_size": 1_000_000,
                        "peak_rss_mib": round(peak_kib / 1024)}
        print(algo, result[algo], flush=True)
    return result


def main(argv: list[str]) -> None:
    seeds, reuse, names = (0, 1, 2), False, []
    args = iter(argv)
    for arg in args:
        if arg == "--seeds":
            seeds = tuple(int(s) for s in next(args).split(","))
        elif arg == "--reuse":
            reuse = True
        elif arg in ("-h", "--help"):
            print(__doc__ + "\nExperiments: " + ", ".join(list(EXPERIMENTS) + ["throughput",
                                                                            "memory"]))
            return
        else:
            names.append(arg)
    groups = {"native": [n for n in EXPERIMENTS if n.endswith("_pendulum")],
              "bridge": [n for n in EXPERIMENTS if n.endswith("_pendulum_bridge")],
              "halfcheetah": [n for n in EXPERIMENTS if n.endswith("_halfcheetah")]}
    expanded = [n for name in names or ["native", "bridge"] for n in groups.get(name, [name])]
    path = DOCS / onpolicy.RESULTS_FILE
    for name in expanded:
        if name == "throughput":
            result = throughput()
        elif name == "memory":
            result = memory()
        else:
            result = onpolicy.run_experiment(name, seeds, reuse)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
