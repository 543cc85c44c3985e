"""Off-policy policy gradients and particle methods (issue 16): ACER, AWR, Off-PAC and SVPG.

    python benchmarks/off_policy_pg.py                    # everything below
    python benchmarks/off_policy_pg.py acer_cartpole svpg_cartpole

Each experiment trains 3 seeds (JAX-native: at once; bridged: one after another) by the package's
preset. Off-PAC evaluates its target policy every 100k steps while a uniform-random behaviour
policy collects the data. SVPG runs 8 particles (3 seeds of them) beside 8 seeds of A2C with the
same per-policy budget. Results go to docs/benchmarks/off_policy_pg.json, plots to
docs/benchmarks/.
"""
from __future__ import annotations

import csv
import json
import shutil
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import onpolicy
from common import DOCS, OUT, machine
from onpolicy import EXPERIMENTS

import pgzoo
from pgzoo.run.rundir import read_metrics

EXPERIMENTS.clear()
EXPERIMENTS.update({
    "acer_cartpole": ("acer", "CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "acer_acrobot": ("acer", "Acrobot-v1", 500_000, {}, ">= -100 within 500k"),
    "awr_cartpole": ("awr", "CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "awr_pendulum": ("awr", "Pendulum-v1", 300_000, {}, ">= -300 within 300k"),
})
BRIDGED = {  # one seed through the Gymnasium bridge
    "awr_hopper": ("awr", "gymnasium:Hopper-v5", 1_000_000, {}, "reported"),
    "acer_cartpole_bridge": ("acer", "gymnasium:CartPole-v1", 500_000, {}, ">= 475 within 500k"),
    "acer_acrobot_bridge": ("acer", "gymnasium:Acrobot-v1", 500_000, {}, ">= -100 within 500k"),
}
EXPERIMENTS.update(BRIDGED)
onpolicy.RESULTS_FILE = "off_policy_pg.json"
PARTICLES = 8
SVPG_TASKS = {"svpg_cartpole": "CartPole-v1", "svpg_acrobot": "Acrobot-v1"}


def off_pac(steps: int = 1_000_000, every: int = 100_000) -> dict:
    """Off-PAC from a uniform-random behaviour policy; the target policy's deterministic
    evaluation every ``every`` steps."""
    run_dir = OUT / "off_pac_cartpole"
    shutil.rmtree(run_dir, ignore_errors=True)
    pgzoo.train("off_pac", "CartPole-v1", steps, seeds=3, run_dir=run_dir, progress=False,
                eval_every=every)
    with open(run_dir / "evals.csv") as f:
        rows = list(csv.DictReader(f))
    curve = {}
    for r in rows:
        curve.setdefault(int(r["seed"]), []).append((int(float(r["env_steps"])),
                                                     float(r["eval_return"])))
    final = json.loads((run_dir / "eval.json").read_text())["per_seed"]
    plt.figure(figsize=(6, 4))
    for seed, points in sorted(curve.items()):
        plt.plot(*zip(*points), marker="o", label=f"seed {seed}")
    plt.axhline(475, color="grey", ls="--")
    plt.xlabel("environment steps (uniform-random behaviour)")
    plt.ylabel("target policy, deterministic evaluation")
    plt.title("Off-PAC on CartPole-v1")
    plt.legend()
    plt.tight_layout()
    plt.savefig(DOCS / "off_pac_cartpole.png", dpi=100)
    plt.close()
    result = {"command": f"pgzoo train off_pac --env CartPole-v1 --seeds 3 --eval-every {every}",
              "target": ">= 475 (deterministic evaluation of the target policy) within 1M",
              "eval_curve": {str(s): p for s, p in curve.items()},
              "eval_mean_return": [round(s["mean_return"], 1) for s in final],
              "behaviour_return": [round(np.mean([r["episode_return"] for r in read_metrics(
                  run_dir) if r["seed"] == s and isinstance(r["episode_return"], float)]), 1)
                  for s in range(3)],
              "first_eval_at_475": [next((x for x, y in curve[s] if y >= 475), None)
                                    for s in sorted(curve)]}
    print("off_pac", result, flush=True)
    return result


def svpg_against_a2c(name: str, env: str, per_policy: int = 500_000) -> dict:
    """SVPG with 8 particles (3 seeds) beside 8 seeds of A2C, each policy ``per_policy`` steps."""
    svpg_dir, a2c_dir = OUT / name, OUT / f"{name}_a2c"
    for d in (svpg_dir, a2c_dir):
        shutil.rmtree(d, ignore_errors=True)
    pgzoo.train("svpg", env, PARTICLES * per_policy, seeds=3, run_dir=svpg_dir, progress=False)
    pgzoo.train("a2c", env, per_policy, seeds=PARTICLES, run_dir=a2c_dir, progress=False)
    svpg_rows = read_metrics(svpg_dir)
    particles = {}
    for s in range(3):
        rows = [r for r in svpg_rows if r["seed"] == s]
        last = rows[-50:]  # the last 50 iterations' smoothed returns
        particles[s] = [float(np.mean([r[f"particle_{i}_return"] for r in last]))
                        for i in range(PARTICLES)]
    a2c_rows = read_metrics(a2c_dir)
    a2c_final = []
    for s in range(PARTICLES):
        values = [r["episode_return"] for r in a2c_rows
                  if r["seed"] == s and isinstance(r["episode_return"], float)]
        a2c_final.append(float(np.mean(values[-20:])))
    svpg_eval = [e["mean_return"] for e in json.loads(
        (svpg_dir / "eval.json").read_text())["per_seed"]]
    a2c_eval = [e["mean_return"] for e in json.loads(
        (a2c_dir / "eval.json").read_text())["per_seed"]]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = [r for r in svpg_rows if r["seed"] == 0]
    steps = np.asarray([r["env_steps"] for r in rows]) / PARTICLES
    for i in range(PARTICLES):
        axes[0].plot(steps, [r[f"particle_{i}_return"] for r in rows], lw=0.8)
    axes[0].set_title(f"SVPG seed 0: each particle's return ({env})")
    axes[0].set_xlabel("environment steps per particle")
    for s in range(3):
        rows = [r for r in svpg_rows if r["seed"] == s]
        axes[1].plot(np.asarray([r["env_steps"] for r in rows]) / PARTICLES,
                     [r["particle_distance"] for r in rows], label=f"seed {s}")
    axes[1].set_title("spread: mean distance between particles' parameters")
    axes[1].set_xlabel("environment steps per particle")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(DOCS / f"{name}.png", dpi=100)
    plt.close(fig)
    result = {
        "commands": [f"pgzoo train svpg --env {env} --steps {PARTICLES * per_policy} --seeds 3",
                     f"pgzoo train a2c --env {env} --steps {per_policy} --seeds {PARTICLES}"],
        "svpg_particle_final": {str(s): [round(x, 1) for x in v] for s, v in particles.items()},
        "svpg_mean_particle": [round(float(np.mean(v)), 1) for v in particles.values()],
        "svpg_best_particle": [round(float(np.max(v)), 1) for v in particles.values()],
        "svpg_eval_best_particle": [round(e, 1) for e in svpg_eval],
        "a2c_final": [round(x, 1) for x in a2c_final],
        "a2c_mean": round(float(np.mean(a2c_final)), 1),
        "a2c_best": round(float(np.max(a2c_final)), 1),
        "a2c_eval": [round(e, 1) for e in a2c_eval],
        "seconds": {"svpg": round(svpg_rows[-1]["wall_time"], 1),
                    "a2c": round(a2c_rows[-1]["wall_time"], 1)}}
    print(name, result, flush=True)
    return result


def main(names: list[str]) -> None:
    path = DOCS / onpolicy.RESULTS_FILE
    for name in names or list(EXPERIMENTS) + ["off_pac_cartpole"] + list(SVPG_TASKS):
        if name == "off_pac_cartpole":
            result = off_pac()
        elif name in SVPG_TASKS:
            result = svpg_against_a2c(name, SVPG_TASKS[name])
        elif name in BRIDGED:
            result = onpolicy.run_experiment(name, seeds=(0,))
        else:
            result = onpolicy.run_experiment(name)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
