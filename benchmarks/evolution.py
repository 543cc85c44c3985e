"""Evolution strategies: CEM, CMA-ES and OpenAI-ES on CartPole-v1 (and Pendulum-v1) by their
presets, 3 seeds each with the seeds vmapped, steps to 475 beside SB3-contrib's ARS; and the
throughput of a population of 256 on JAX-native CartPole-v1.

    python benchmarks/evolution.py                         # CartPole, all three, and throughput
    python benchmarks/evolution.py cem_cartpole throughput
    python benchmarks/evolution.py openai_es_halfcheetah openai_es_cartpole_bridge

Results go to docs/benchmarks/evolution.json and plots to docs/benchmarks/.
"""
from __future__ import annotations

import json
import shutil
import sys

import onpolicy
from common import DOCS, OUT, machine, steady_steps_per_second
from onpolicy import EXPERIMENTS

import pgzoo
from pgzoo.run.rundir import read_metrics

EXPERIMENTS.clear()
EXPERIMENTS.update({
    f"{algo}_cartpole": (algo, "CartPole-v1", 5_000_000, {}, ">= 475 within 5M")
    for algo in ("cem", "cma_es", "openai_es")})
EXPERIMENTS.update({
    f"{algo}_pendulum": (algo, "Pendulum-v1", 50_000_000, {}, ">= -300 within 50M")
    for algo in ("cem", "cma_es", "openai_es")})
# through the Gymnasium bridge (seeds one after another): MuJoCo, and the bridge's speed
EXPERIMENTS["openai_es_halfcheetah"] = ("openai_es", "gymnasium:HalfCheetah-v5", 10_000_000, {},
                                        "reported (a one-hour budget)")
EXPERIMENTS["openai_es_cartpole_bridge"] = ("openai_es", "gymnasium:CartPole-v1", 1_000_000, {},
                                            ">= 475 within 5M")
THRESHOLDS = {"cartpole": 475.0, "pendulum": -300.0, "bridge": 475.0}
onpolicy.RESULTS_FILE = "evolution.json"


def steps_to(run_dir, threshold: float) -> list[dict]:
    """Per seed: the environment steps (budget count, and steps inside episodes) when the mean
    policy's return first reached ``threshold``."""
    rows = read_metrics(run_dir)
    out = []
    for seed in sorted({r["seed"] for r in rows}):
        inside = 0.0
        found = None
        for r in (r for r in rows if r["seed"] == seed):
            inside += r["episode_steps"]
            if r["episode_return"] != "" and r["episode_return"] >= threshold:
                found = {"env_steps": int(r["env_steps"]), "episode_steps": int(inside),
                         "generation": int(r["iteration"])}
                break
        out.append(found)
    return out


def throughput(algo: str = "openai_es", population: int = 256, generations: int = 40) -> dict:
    run_dir = OUT / f"{algo}-throughput"
    shutil.rmtree(run_dir, ignore_errors=True)
    steps = generations * (population + 1) * 500
    pgzoo.train(algo, "CartPole-v1", steps, run_dir=run_dir, progress=False, eval_episodes=0,
                population_size=population)
    rate = steady_steps_per_second(run_dir)
    result = {"command": f"pgzoo train {algo} --env CartPole-v1 --steps {steps} --set "
                         f"population_size={population}",
              "steady_env_steps_per_second": round(rate), "population_size": population}
    print("throughput", result, flush=True)
    return result


def main(names: list[str]) -> None:
    path = DOCS / onpolicy.RESULTS_FILE
    for name in names or [n for n in EXPERIMENTS if n.endswith("_cartpole")] + ["throughput"]:
        if name == "throughput":
            result = throughput()
        else:
            result = onpolicy.run_experiment(name)
            threshold = THRESHOLDS.get(name.rsplit("_", 1)[-1])
            if threshold is not None:
                dirs = ([OUT / f"{name}-seed{s}" for s in range(3)] if "bridge" in name
                        else [OUT / name])
                result["steps_to_target"] = sum((steps_to(d, threshold) for d in dirs), [])
                print(name, "steps to target", result["steps_to_target"], flush=True)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.update({"machine": machine(), name: result})
        path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
