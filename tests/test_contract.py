"""The algorithm contract, checked for every registered algorithm: a new algorithm is tested by
this file the day it is registered in ``pgzoo.algos.ALGORITHMS``.

For each algorithm: its declaration is complete and valid; it trains a few iterations through the
run layer on each action-space kind it supports, on both environment backends, and its checkpoint
round-trips; an unsupported kind is a one-line error; the same seed gives identical metrics; every
hyperparameter it declares traceable traces.
"""
import dataclasses
import inspect

import jax
import numpy as np
import pytest

from pgzoo import algos, envs
from pgzoo.algos.base import ACTION_SPACE_KINDS, Algorithm, EnvNeeds
from pgzoo.core.config import to_dict
from pgzoo.errors import PgzooError
from pgzoo.run import checkpoint, rundir, trainer
from pgzoo.run.experiment import build

# Tiny settings per algorithm, so one iteration is cheap and learning (updates) happens at once.
OFF_POLICY = dict(hidden_sizes=(16, 16), batch_size=8, learning_starts=8, block_size=8,
                  buffer_size=256)
SMALL = {
    "reinforce": dict(num_envs=2, num_steps=16),
    "actor_critic": dict(num_envs=2, num_steps=8),
    "a2c": dict(num_envs=2, num_steps=5),
    "vpg": dict(num_envs=2, num_steps=16, value_iters=2),
    "ppo": dict(num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2),
    "npg": dict(num_envs=2, num_steps=32, value_minibatch_size=32, cg_iters=3),
    "trpo": dict(num_envs=2, num_steps=32, value_minibatch_size=32, cg_iters=3),
    "acktr": dict(num_envs=2, num_steps=8),
    "ppg": dict(num_envs=2, num_steps=16, n_pi=2, e_aux=1, aux_num_minibatches=2,
                num_minibatches=2),
    "dpg": dict(hidden_sizes=(16, 16), num_envs=2, block_size=8),
    "ddpg": OFF_POLICY,
    "td3": OFF_POLICY,
    "sac": OFF_POLICY,
    "sac_v1": OFF_POLICY,
    "d4pg": dict(OFF_POLICY, num_envs=2, n_step=3, num_atoms=11, learning_starts=16),
    "dqn": dict(OFF_POLICY, num_envs=2, n_step=2, train_frequency=2, target_update_every=2,
                double_q=True),
    "soft_q_learning": dict(OFF_POLICY, value_particles=4, kernel_particles=6,
                            target_update_every=2),
    "policy_evaluation": {},
    "policy_iteration": dict(max_evaluation_sweeps=2),
    "value_iteration": {},
    "monte_carlo": dict(block_size=100),  # FrozenLake's episodes end within 100 steps
    "sarsa": dict(block_size=8, num_envs=2, expected=True),
    "q_learning": dict(block_size=8, num_envs=2),
    "cem": dict(population_size=4, hidden_sizes=(4,), elite_fraction=0.5),
    "cma_es": dict(population_size=4, hidden_sizes=(4,)),
    "openai_es": dict(population_size=4, hidden_sizes=(4,)),
    "awr": dict(num_envs=2, num_steps=8, buffer_size=32, critic_steps=2, actor_steps=2,
                batch_size=8, hidden_sizes=(8,)),
    "off_pac": dict(num_envs=2, num_steps=8),
    "acer": dict(num_envs=2, num_steps=4, buffer_rollouts=4, replay_start=1, replay_ratio=2.0,
                 hidden_sizes=(8,)),
    "a3c": dict(num_actors=2, envs_per_actor=2, unroll_length=4, hidden_sizes=(8,)),
    "dppo": dict(num_actors=2, envs_per_actor=2, unroll_length=4, update_iterations=2,
                 hidden_sizes=(8,)),
    "impala": dict(num_actors=2, envs_per_actor=2, unroll_length=4, hidden_sizes=(8,)),
    "svpg": dict(num_particles=2, num_envs=2, num_steps=4, hidden_sizes=(8,)),
    "maddpg": dict(OFF_POLICY, train_every=2),
}
ENVS = {"discrete": ("CartPole-v1", "gymnasium:CartPole-v1"),
        "continuous": ("Pendulum-v1", "gymnasium:Pendulum-v1")}
# the tabular methods need a finite state space
TABULAR_ENVS = ("FrozenLake-v1", "gymnasium:FrozenLake-v1")
# the multi-agent methods need several agents: JaxMARL's MPE and mpe2's through PettingZoo
MULTI_AGENT_ENVS = {
    "discrete": ("jaxmarl:MPE_simple_spread_v3", "pettingzoo:mpe2.simple_spread_v3"),
    "continuous": ("jaxmarl:MPE_simple_spread_v3@action_type=Continuous",
                   "pettingzoo:mpe2.simple_spread_v3@continuous_actions=True")}


def _multi_agent(a) -> bool:
    return a.env_needs(a.config()).multi_agent


def _envs(a, kind):
    if _multi_agent(a):
        return MULTI_AGENT_ENVS[kind]
    return TABULAR_ENVS if a.env_needs(a.config()).state_index else ENVS[kind]


def _bridge_kind(a):
    return "discrete" if "discrete" in a.action_spaces else "continuous"


# Every action-space kind on the JAX-native backend, and the Gymnasium bridge on one kind (the
# bridge is the same code for both kinds; the same-seed test below runs on the bridge too).
CASES = [(name, spec) for name, a in algos.ALGORITHMS.items() for kind in a.action_spaces
         for spec in _envs(a, kind)[:1] + _envs(a, kind)[1:] * (kind == _bridge_kind(a))]


def test_every_registered_algorithm_has_small_settings_here():
    assert set(SMALL) == set(algos.ALGORITHMS), "add tiny settings for the new algorithm"


@pytest.mark.parametrize("name", sorted(algos.ALGORITHMS))
def test_declaration_is_complete(name):
    a = algos.ALGORITHMS[name]
    assert isinstance(a, Algorithm) and a.name == name
    assert a.summary and inspect.getmodule(a.make).__doc__.count("\n") >= 3  # equations
    assert set(a.action_spaces) <= set(ACTION_SPACE_KINDS)
    config = a.config()  # the defaults are valid
    assert dataclasses.is_dataclass(config) and a.config.__dataclass_params__.frozen
    needs = a.env_needs(config)
    assert isinstance(needs, EnvNeeds) and needs.num_envs >= 1
    with pytest.raises(PgzooError, match="unknown config key 'no_such_key'.*valid keys"):
        build(name, a.default_env, overrides={"no_such_key": 1})
    exp = build(name, a.default_env)  # default env and budget build
    assert exp.total_steps == a.default_budget and exp.agent.units_per_iteration > 0


@pytest.mark.parametrize("name", sorted(algos.ALGORITHMS))
def test_unsupported_action_space_is_a_one_line_error(name):
    a = algos.ALGORITHMS[name]
    message = ("is a multi-agent algorithm and envs_for_tests:Switches has one agent"
               if _multi_agent(a) else "MultiBinary space.*supports")
    with pytest.raises(PgzooError, match=message) as e:
        build(name, "envs_for_tests:Switches")
    assert "\n" not in str(e.value)
    for kind in set(ACTION_SPACE_KINDS) - set(a.action_spaces):
        with pytest.raises(PgzooError, match=f"{name} does not support {kind} actions"):
            build(name, ENVS[kind][0])


@pytest.mark.parametrize("name,spec", CASES)
def test_trains_and_checkpoint_round_trips(name, spec, tmp_path):
    exp = build(name, spec, overrides=SMALL[name], total_steps=10_000)
    exp.total_steps = 3 * exp.agent.units_per_iteration
    state, summary = trainer.train(exp, tmp_path, progress=False, tensorboard=False,
                                   eval_episodes=0)
    assert summary["iteration"] == 3
    rows = rundir.read_metrics(tmp_path)
    assert [r["iteration"] for r in rows] == [1.0, 2.0, 3.0]
    losses = {k: v for k, v in rows[-1].items() if k.endswith(("_loss", "_error"))}
    assert losses and all(np.isfinite(v) for v in losses.values()), rows[-1]
    restored, meta = checkpoint.load(tmp_path / rundir.CHECKPOINTS, exp.template())
    assert meta["iteration"] == 3
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    space = exp.env.observation_space
    if isinstance(space, envs.MultiAgent):  # {agent: observation} -> {agent: action}
        actions = exp.policy(restored)({a: np.zeros(s.shape, np.float32)
                                        for a, s in zip(space.agents, space.spaces)})
        assert set(actions) == set(space.agents)
        return
    action = exp.policy(restored)(np.zeros(exp.env.observation_space.shape, np.float32))
    if exp.env.action_space.kind == "continuous":
        assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0
    else:
        assert 0 <= int(action) < exp.env.action_space.n


@pytest.mark.parametrize("name", sorted(algos.ALGORITHMS))
def test_same_seed_gives_identical_metrics(name):
    # Through the Gymnasium bridge, where host-side state (the simulators, their seeding) could
    # break it; one compiled step, two fresh States from the same seed.
    a = algos.ALGORITHMS[name]
    spec = _envs(a, _bridge_kind(a))[1]
    exp = build(name, spec, overrides=SMALL[name], total_steps=10_000, seed=3)
    step = jax.jit(exp.step)

    def metrics():
        state, out = exp.init_state(), []
        for _ in range(2):
            state, m = step(state)
            out.append(jax.device_get(m))
        return out

    first, second = metrics(), metrics()
    for x, y in zip(first, second, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.mark.parametrize("name", sorted(algos.ALGORITHMS))
def test_declared_hyperparameters_trace(name):
    a = algos.ALGORITHMS[name]
    if not a.hyperparameters:
        pytest.skip(f"{name} declares no traceable hyperparameters")
    defaults = to_dict(a.config())
    grid = [{k: defaults[k] for k in a.hyperparameters},
            {k: defaults[k] * 0.5 for k in a.hyperparameters}]
    exp = build(name, a.default_env, overrides=SMALL[name], grid=grid)
    assert exp.members == 2
    state_shape, metrics_shape = jax.eval_shape(exp.step, exp.template())
    assert all(v.shape == (2,) for v in jax.tree.leaves(metrics_shape))


def test_a_grid_of_learning_rates_in_one_call_equals_separate_runs():
    rates = (2.5e-4, 1e-3)
    grid = build("ppo", "CartPole-v1", overrides=SMALL["ppo"], total_steps=10_000, seed=5,
                 grid=[{"learning_rate": r} for r in rates])
    step = jax.jit(grid.step)
    state = grid.init_state()
    for _ in range(3):
        state, together = step(state)
    together = jax.device_get(together)
    for i, rate in enumerate(rates):
        alone = build("ppo", "CartPole-v1", overrides=dict(SMALL["ppo"], learning_rate=rate),
                      total_steps=10_000, seed=5, num_seeds=2)  # vmapped, as the grid is
        step = jax.jit(alone.step)
        s = alone.init_state()
        for _ in range(3):
            s, m = step(s)
        m = jax.device_get(m)
        for k in ("policy_loss", "value_loss", "entropy", "learning_rate"):
            np.testing.assert_allclose(together[k][i], m[k][0], rtol=1e-5, err_msg=k)
    assert not np.allclose(together["learning_rate"][0], together["learning_rate"][1])


def test_a_grid_rejects_fields_that_cannot_be_traced():
    with pytest.raises(PgzooError, match="cannot vary 'num_envs'.*traceable hyperparameters"):
        build("ppo", "CartPole-v1", grid=[{"num_envs": 2}, {"num_envs": 4}])
    with pytest.raises(PgzooError, match="learning_rate must be > 0"):
        build("ppo", "CartPole-v1", grid=[{"learning_rate": -1.0}])


def test_the_host_side_knows_algorithms_only_through_the_contract():
    """run/, api.py and cli.py name no algorithm and read no attribute by ``getattr``;
    algorithm modules import loops and core, never each other."""
    import ast
    import pathlib

    root = pathlib.Path(algos.__file__).parent.parent
    host = [*sorted((root / "run").glob("*.py")), *sorted((root / "distributed").glob("*.py")),
            root / "api.py", root / "cli.py"]
    names = set(algos.ALGORITHMS)
    for path in host:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr":
                raise AssertionError(f"{path.name}:{node.lineno} uses getattr")
            if isinstance(node, ast.Constant) and node.value in names:
                raise AssertionError(f"{path.name}:{node.lineno} names {node.value!r}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pgzoo.algos."):
                # the Ray driver runs the actor-learner loop's pieces in separate processes
                allowed = {"pgzoo.algos.base"} | ({"pgzoo.algos.loops.actor_learner"}
                                                  if path.parent.name == "distributed" else set())
                assert node.module in allowed, f"{path.name} imports {node.module}"
    for path in sorted((root / "algos").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {node.module.rsplit(".", 1)[-1]} | {a.name for a in node.names}
                if node.module.startswith("pgzoo.algos") and path.stem != "__init__":
                    assert not imported & names - {path.stem}, f"{path.name} imports {imported}"
