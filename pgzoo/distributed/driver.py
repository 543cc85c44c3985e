"""The Ray driver of the actor-learner algorithms (``Algorithm.driver == "ray"``).

W rollout actors are Ray actor processes. Each builds its own ``envs_per_actor`` environments
(JAX-native or Gymnasium) and jits the algorithm's actor side (``algos/loops/actor_learner.unroll``);
it is limited to one CPU and one XLA thread. The learner is this process: it holds the learner
state and jits the algorithm's ``learn``.

The loop: every actor is given the learner's parameters (NumPy arrays through the object
store: a pickled ``jax.Array`` would land on the receiver's default device) and plays one
message's worth; as each message arrives (``ray.wait``), the actor that sent it is given the
newest parameters and plays on, and every ``messages_per_update`` messages the learner updates.
A message made with parameters of version v and used at learner version u is u - v versions
stale (the metrics ``staleness`` and ``staleness_max``). With one message per update (A3C) the
learner applies each gradient as it arrives and the actor that sent it alone gets the new
parameters.

Observation statistics, where the algorithm normalises observations (``normalize_obs``), are
shared: the learner holds one running mean and variance, sent beside the parameters; an actor
normalises a new trajectory with the statistics it last received (updating them as it plays,
as one process does), and returns the statistics of the raw observations it played, which the
learner merges into its own (Chan et al.'s parallel combination). Every actor thus normalises
with what all of them have seen, as in distributed PPO (Heess et al. 2017), and the checkpoint
holds the learner's statistics, which evaluation uses.

Faults: actors are created with ``max_restarts=-1``; one whose process dies is restarted by
Ray, its lost message is counted (``actor_restarts``) and it is sent the newest parameters. The
learner's update count never goes back. A checkpoint holds the learner state; ``--resume``
continues from it with fresh actors (fresh episodes, as a resumed Gymnasium run has). Ctrl-C or
SIGTERM stops the actors and keeps the checkpoint and every metrics row up to it.

The run directory, metrics.csv, TensorBoard, evaluation and curve are those of every run.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo.algos.base import EPISODE_LENGTH_SUM, EPISODE_RETURN_SUM, EPISODE_SUMS, EPISODES
from pgzoo.algos.loops.actor_learner import STALENESS, State
from pgzoo.envs.wrappers import RunningMeanStd, observation_stats, with_observation_stats
from pgzoo.errors import Interrupted, PgzooError, RunFailed
from pgzoo.run import checkpoint, rundir, signals
from pgzoo.run.experiment import Experiment
from pgzoo.run.progress import Progress
from pgzoo.run.trainer import evaluate_run, write_config

RAY_MISSING = ('the ray driver needs Ray, which is not installed: pip install "pgzoo[distributed]"'
               " (or train with --driver compiled, all actors in one process)")
# each actor computes with one thread: W actors share the machine's cores
ACTOR_ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
             "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


PLAYED = "env_steps_played"  # in an actor's sums: the steps of a new trajectory (0 on reuse)
MAX_CONSECUTIVE_FAILURES = 10  # about 40 s of an actor restarting


def import_ray():
    try:
        import ray
    except ImportError:
        raise PgzooError(RAY_MISSING) from None
    return ray


class RolloutActor:
    """One actor process: its environments and the jitted actor side of the algorithm."""

    def __init__(self, algo: str, env_spec: str, config: dict, total_steps: int,
                 seed: tuple[int, int, int], envs_per_actor: int):
        from pgzoo import algos, envs
        from pgzoo.algos.loops.actor_learner import unroll
        from pgzoo.core import config as cfg

        algorithm = algos.get(algo)
        config = cfg.build(algorithm.config, config, algo)
        needs = algorithm.env_needs(config)
        env = envs.make(env_spec, num_envs=envs_per_actor, normalize_obs=needs.normalize_obs,
                        normalize_reward=needs.normalize_reward, gamma=needs.gamma,
                        one_hot=not needs.state_index)
        al = algorithm.make(config, env, total_steps).actor_learner
        self._unroll = jax.jit(lambda params, env_state, obs, key: unroll(
            al, env, params, env_state, obs, key))
        self._message = jax.jit(al.message)
        self._reuse, self._uses, self._kept = al.reuse, 0, None
        self._steps = al.envs_per_actor * al.unroll_length
        self._shares_stats = needs.normalize_obs
        self._env = env
        run_seed, index, version = seed
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(run_seed), index), version)
        env_key, self._key = jax.random.split(key)
        self._env_state, ts = env.reset(env_key)
        self._obs = ts.obs

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        """The id of the Ray node this actor runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def observation_stats(self):
        """The observation statistics this actor normalises with (None: it does not)."""
        return jax.device_get(observation_stats(self._env_state))

    def play(self, weights, version: int):
        """One message made with ``weights`` = (params, observation statistics or None) of
        learner version ``version``: from a new trajectory, or from the last one while it has
        been used fewer than ``reuse`` times. Returns (message, episode sums, version, the
        statistics of the raw observations of a new trajectory where they are shared, else
        None)."""
        params, stats = weights
        sums = dict.fromkeys((*EPISODE_SUMS, PLAYED), 0.0)
        played = None
        if self._uses % self._reuse == 0:
            self._key, key = jax.random.split(self._key)
            if self._shares_stats:
                self._env_state = with_observation_stats(self._env_state, stats)
            self._env_state, self._obs, traj, new_sums = self._unroll(
                params, self._env_state, self._obs, key)
            error = self._env.host_error()
            if error is not None:
                raise RuntimeError(f"the environment failed: {error}")
            self._kept, sums = traj, {k: float(v) for k, v in new_sums.items()}
            sums[PLAYED] = float(self._steps)
            if self._shares_stats:  # the observations the statistics were updated with
                raw = np.asarray(traj.info["raw_obs"])
                played = RunningMeanStd.of(raw.reshape((-1,) + raw.shape[2:]))
        self._uses += 1
        message = self._message(params, self._kept, self._obs)
        return jax.device_get(message), sums, version, played


def _stack(messages: list):
    return jax.tree.map(lambda *xs: np.stack(xs), *messages)


def train(exp: Experiment, run_dir: Path, *, resume: bool = False, progress: str | None = "bar",
          tensorboard: bool = True, eval_episodes: int = 10, checkpoint_interval: float = 30.0,
          wandb: bool | str = False, evaluation=None, callback=None, start_state=None,
          ray_address: str | None = None, **record: Any):
    """Train ``exp`` with its actors as Ray processes; returns (learner state, summary) like
    ``pgzoo.run.trainer.train``. ``ray_address`` joins a running cluster ("auto" or an
    address); without it Ray starts inside this process and stops with the run.
    ``callback(info)`` runs after each update's rows are written (info: iteration, env_steps,
    rows, run_dir, actors: the actor handles); returning False stops the run."""
    ray = import_ray()
    al = exp.agent.actor_learner
    if al is None:
        raise PgzooError(f"{exp.algo} has no actor-learner form; train it with --driver compiled")
    if exp.num_seeds > 1 or exp.grid:
        raise PgzooError("the ray driver trains one seed per run; give --seed S and run the "
                         "seeds one after another, or use --driver compiled for --seeds K")
    if evaluation is not None:
        raise PgzooError("--eval-every is not available with the ray driver yet; the final "
                         "evaluation runs as for every run")
    W, B = al.num_actors, al.messages_per_update
    spt = al.envs_per_actor * al.unroll_length  # environment steps in one trajectory
    spu = B * spt // al.reuse  # per update, when no message is dropped
    # the budget: the updates whose messages come from total_steps steps (without drops)
    max_updates = exp.total_steps * al.reuse // (B * spt)
    if max_updates < 1:
        raise PgzooError(f"total_steps must be at least one update ({spu} steps with this "
                         f"config), got {exp.total_steps}")
    rundir.safe_dir(run_dir)
    rundir.remove_stale_temporaries(run_dir)
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    # checkpoints hold the State of the compiled form (``loops/actor_learner.State``) with this
    # learner in it, so that pgzoo.load, evaluation and --driver compiled read them unchanged
    base = exp.agent.init(jax.random.PRNGKey(exp.seed))  # one member, no member axis

    def to_state(learner) -> State:
        sent = jax.tree.map(lambda x: jnp.stack([x] * W), learner.params)
        env_state = with_observation_stats(base.env_state, jax.tree.map(jnp.asarray, obs_stats))
        state = base._replace(learner=learner, actor_params=sent, version=jnp.int32(version),
                              actor_versions=jnp.full(W, version, jnp.int32),
                              env_state=env_state)
        return jax.tree.map(lambda x: x[None], state) if exp.vmapped else state

    version, steps, elapsed_before = 0, 0, 0.0  # updates, environment steps played, seconds
    if resume and (ckpt_dir / checkpoint.FILENAME).exists():
        state, meta = checkpoint.load(ckpt_dir, exp.template())
        learner = exp.member_state(state, 0).learner
        obs_stats = observation_stats(exp.member_state(state, 0).env_state)
        version, elapsed_before = int(meta["iteration"]), float(meta.get("wall_time", 0.0))
        steps = int(meta.get("env_steps", version * spu))
    else:
        learner = al.learner_init(jax.random.PRNGKey(exp.seed))
        # the shared observation statistics start as one process's: its environments' resets
        obs_stats = observation_stats(base.env_state)
    obs_stats = jax.tree.map(lambda x: np.asarray(x, np.float32), obs_stats)
    record = {**record, "driver": "ray", "num_actors": W}
    write_config(exp, run_dir, record, "running", env_steps_done=steps)

    started_ray = False
    if not ray.is_initialized():
        import logging

        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        if ray_address:
            kwargs["address"] = ray_address
        else:
            kwargs.update(address="local", num_cpus=max(W + 1, os.cpu_count() or 1))
        import warnings

        try:
            with warnings.catch_warnings():  # Ray forks its processes after JAX started threads
                warnings.simplefilter("ignore", RuntimeWarning)
                ray.init(**kwargs)
        except Exception as err:  # noqa: BLE001 - Ray raises many kinds; one line for the user
            raise PgzooError(f"could not start or join Ray ({ray_address or 'local'}): "
                             f"{str(err).splitlines()[0]}") from None
        started_ray = True
    remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(RolloutActor)
    from pgzoo.core.config import to_dict

    config = to_dict(exp.config)
    # actor w of a run with seed s, started or resumed at update u: key (s, w, u)
    actors = [remote.options(runtime_env={"env_vars": ACTOR_ENV}).remote(
        exp.algo, exp.env_spec, config, exp.total_steps, (exp.seed, w, version),
        al.envs_per_actor) for w in range(W)]
    learn = jax.jit(al.learn)
    finite = jax.jit(lambda params: jnp.all(jnp.stack(
        [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)])))
    log = None
    bar = Progress(exp.total_steps, progress, f"{exp.algo} {exp.env_spec} ({W} Ray actors)")
    bar.update(steps, None, None)
    start, last_ckpt, saved = time.time(), time.time(), version if resume else -1
    saved_steps = steps
    restarts, dropped, stopped = 0, 0, None
    carried = dict.fromkeys(EPISODE_SUMS, 0.0)  # episode sums of dropped messages
    arrived = 0.0  # environment steps of the messages since the last update
    # synchronous (distributed PPO): an actor whose message is in the inbox waits for the update
    synchronous, waiting = al.max_staleness == 0, []

    def weights():
        return ray.put((jax.device_get(learner.params), obs_stats))

    def save(status: str, **extra):
        nonlocal saved, saved_steps, last_ckpt
        if version != saved:
            checkpoint.save(ckpt_dir, to_state(learner), {
                "iteration": version, "env_steps": steps, "vmapped": exp.vmapped,
                "wall_time": elapsed_before + time.time() - start})
            saved, saved_steps, last_ckpt = version, steps, time.time()
        write_config(exp, run_dir, record, status, env_steps_done=saved_steps, **extra)

    failures = [0] * W  # consecutive lost messages per actor
    retry_at: dict[int, float] = {}  # when to ask a restarting actor again

    def actor_error(err) -> str:
        cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else err
        return (str(cause).strip().splitlines() or [type(cause).__name__])[-1][:300]

    try:
        with signals.stop_at_chunk_end() as stop_requested:
            try:  # an actor that cannot start (bad environment, missing package) fails the run
                ray.get([a.pid.remote() for a in actors])
            except ray.exceptions.RayError as err:
                raise RunFailed(f"a Ray actor could not start: {actor_error(err)}") from None
            current = weights()
            pending = {actors[w].play.remote(current, version): w for w in range(W)}
            inbox: list = []
            while version < max_updates and stopped is None:
                for w, at in list(retry_at.items()):
                    if time.time() >= at:
                        del retry_at[w]
                        pending[actors[w].play.remote(current, version)] = w
                ready, _ = ray.wait(list(pending), num_returns=1,
                                    timeout=0.2 if retry_at else 1.0) if pending else ([], [])
                if stop_requested.is_set():
                    raise KeyboardInterrupt
                if not ready:
                    if not pending:
                        time.sleep(0.05)
                    continue
                w = pending.pop(ready[0])
                accepted = False
                try:
                    *received, played = ray.get(ready[0])
                    failures[w] = 0
                    arrived += received[1][PLAYED]
                    if played is not None:  # its observations count, used or dropped
                        obs_stats = jax.tree.map(lambda x: np.asarray(x, np.float32),
                                                 obs_stats.merge(played))
                    if al.max_staleness is not None and version - received[2] > al.max_staleness:
                        dropped += 1  # too old for a synchronous update: asked again below
                        sums_dropped = received[1]
                        for k in EPISODE_SUMS:  # its episodes happened all the same
                            carried[k] += sums_dropped[k]
                    else:
                        inbox.append(received)
                        accepted = True
                except ray.exceptions.RayActorError as err:
                    # Ray restarts a dead actor's process; its message is lost, and it is
                    # asked again (with the newest parameters) once it is back
                    restarts += failures[w] == 0
                    failures[w] += 1
                    if failures[w] > MAX_CONSECUTIVE_FAILURES:
                        raise RunFailed(f"actor {w} could not be restarted: "
                                        f"{actor_error(err)}") from None
                    retry_at[w] = time.time() + min(0.25 * 2 ** failures[w], 5.0)
                    continue
                except ray.exceptions.RayTaskError as err:
                    raise RunFailed(f"actor {w} failed: {actor_error(err)}") from None
                if len(inbox) == B:
                    t0 = time.time()
                    batch = _stack([m for m, _, _ in inbox])
                    updated, metrics = learn(learner, batch)
                    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    # as the compiled trainer: an infinite metric, or parameters that are not
                    # finite, diverged; a NaN metric alone has no value yet (D4PG's burn-in)
                    bad = [k for k, v in metrics.items() if math.isinf(v)] or (
                        [] if bool(finite(updated.params))
                        else [k for k, v in metrics.items() if math.isnan(v)]
                        or ["a policy parameter"])
                    if bad:
                        raise RunFailed(f"training diverged: {bad[0]} is "
                                        f"{metrics.get(bad[0], float('nan'))} at update "
                                        f"{version + 1}")
                    stale = [version - v for _, _, v in inbox]
                    sums = {k: carried[k] + sum(s[k] for _, s, _ in inbox) for k in EPISODE_SUMS}
                    carried = dict.fromkeys(EPISODE_SUMS, 0.0)
                    # one statement: a checkpoint never pairs the new learner with the old count
                    learner, version, steps, arrived = updated, version + 1, steps + int(arrived), 0
                    episodes = sums[EPISODES]
                    row = {"iteration": version, "seed": 0, "env_steps": steps,
                           "episodes": int(episodes),
                           "episode_return": sums[EPISODE_RETURN_SUM] / episodes if episodes else "",
                           "episode_length": sums[EPISODE_LENGTH_SUM] / episodes if episodes else "",
                           **metrics, STALENESS: float(np.mean(stale)),
                           "staleness_max": float(max(stale)), "actor_restarts": restarts,
                           "dropped_messages": dropped,
                           "wall_time": round(elapsed_before + time.time() - start, 3)}
                    if log is None:
                        log = rundir.MetricsLog(run_dir, list(row), 1, tensorboard,
                                                keep_until_iteration=version - 1, wandb=wandb)
                    log.write([row])
                    bar.update(steps, spu / max(time.time() - t0, 1e-6), [row])
                    inbox = []
                    current = weights()
                    if callback is not None and callback(
                            {"iteration": version, "env_steps": steps, "rows": [row],
                             "run_dir": run_dir, "actors": actors}) is False:
                        stopped = f"the callback stopped the run at update {version}"
                    if time.time() - last_ckpt >= checkpoint_interval:
                        save("running")
                    for idle in waiting:  # synchronous: they waited for these parameters
                        pending[actors[idle].play.remote(current, version)] = idle
                    waiting = []
                if synchronous and accepted and inbox:
                    waiting.append(w)  # its message waits in the inbox for the update; so does it
                else:
                    pending[actors[w].play.remote(current, version)] = w
    except KeyboardInterrupt:
        save("interrupted")
        raise Interrupted(run_dir) from None
    except RunFailed as err:
        save("failed", error=str(err))
        raise RunFailed(f"{err}; the run stopped, and its checkpoint of update {saved} is kept "
                        f"in {ckpt_dir}") from None
    except BaseException as err:
        save("failed", error=f"{type(err).__name__}: {err}".splitlines()[0][:500])
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        if started_ray:
            ray.shutdown()

    save("finished", **({"stopped_early": stopped} if stopped else {}))
    summary: dict[str, Any] = {"iteration": version, "env_steps": steps,
                               "wall_time": elapsed_before + time.time() - start,
                               "actor_restarts": restarts}
    if stopped:
        summary["stopped_early"] = stopped
    state = to_state(learner)
    if eval_episodes:
        summary["eval"] = evaluate_run(exp, state, eval_episodes)
        rundir.write_json(run_dir / rundir.EVAL, summary["eval"])
    from pgzoo.run.plot import plot_runs

    plot_runs([run_dir], run_dir / rundir.CURVE)
    return state, summary
