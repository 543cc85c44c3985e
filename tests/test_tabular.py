"""The tabular methods: the finite-MDP model and its JAX-native environment, dynamic programming
against closed forms and known optima, the TD and Monte-Carlo updates against hand-computed
cases, learning on CliffWalking (Sutton & Barto's Example 6.6), and deep algorithms on a
discrete-observation task."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgzoo
from pgzoo import envs
from pgzoo.algos import monte_carlo, q_learning, sarsa
from pgzoo.algos.loops import tabular as tab
from pgzoo.cli import main
from pgzoo.envs import tabular
from pgzoo.errors import PgzooError
from pgzoo.run.experiment import build

TASKS = ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4")


def model(spec):
    return envs.make(spec, one_hot=False).tabular_model()


def plan(algo, spec, **overrides):
    """Run a dynamic-programming algorithm to convergence in one compiled loop: its V."""
    exp = build(algo, spec, overrides=overrides, total_steps=1_000_000)
    agent = exp.agent

    def cond(carry):
        state, n = carry
        return ~state.converged & (n < 1_000_000)

    def body(carry):
        state, n = carry
        return agent.step(state)[0], n + 1

    state, sweeps = jax.jit(lambda s: jax.lax.while_loop(cond, body, (s, 0)))(
        agent.init(jax.random.PRNGKey(0)))
    assert bool(state.converged), f"{algo} on {spec} did not converge"
    values = state.plan.v if algo == "policy_iteration" else state.plan
    return np.asarray(values, np.float64), np.asarray(state.params), int(sweeps)


# --- the model and its environment -------------------------------------------------------------
def test_gymnasium_tables_become_a_valid_model():
    m = model("FrozenLake-v1")
    assert m.transitions.shape == (16, 4, 16) and m.grid == (4, 4)
    np.testing.assert_allclose(m.transitions.sum(-1), 1.0, atol=1e-6)
    # slippery: from the start, "right" goes right, down or stays (up is the wall), 1/3 each
    np.testing.assert_allclose(m.transitions[0, 2, [0, 1, 4]], [1 / 3] * 3, atol=1e-6)
    assert m.rewards[14, 2, 15] == 1.0 and m.terminates[14, 2, 15] == 1.0  # the goal
    assert m.terminates[4, 1, 5] == 1.0 and m.labels[5] == "H"  # a hole
    assert m.initial[0] == 1.0
    cliff = model("CliffWalking-v1")
    assert cliff.grid == (4, 12) and cliff.labels[36:] == "SCCCCCCCCCCG"
    # into the cliff: -100 and back to the start, the episode goes on (S&B Example 6.6)
    assert cliff.transitions[36, 1, 36] == 1.0 and cliff.rewards[36, 1, 36] == -100.0
    assert cliff.terminates[36, 1, 36] == 0.0
    taxi = model("Taxi-v4")
    assert taxi.transitions.shape == (500, 6, 500) and taxi.grid is None
    assert np.count_nonzero(taxi.initial) == 300


def test_jax_native_environment_samples_the_tables():
    env = envs.make("FrozenLake-v1", num_envs=20_000, one_hot=False)
    state, ts = env.reset(jax.random.PRNGKey(0))
    assert env.observation_space.kind == "discrete" and np.all(np.asarray(ts.obs) == 0)
    state, ts = jax.jit(env.step)(state, jnp.full(20_000, 2), jax.random.PRNGKey(1))
    counts = np.bincount(np.asarray(ts.final_obs, int), minlength=16) / 20_000
    np.testing.assert_allclose(counts[[0, 1, 4]], [1 / 3] * 3, atol=0.015)
    # the time limit truncates, and the episode restarts at the start state
    env = envs.make("FrozenLake-v1@is_slippery=False", num_envs=1, one_hot=False)
    state, ts = env.reset(jax.random.PRNGKey(0))
    for t in range(100):  # "left" from the start: a wall, forever
        state, ts = env.step(state, jnp.zeros(1, jnp.int32), jax.random.PRNGKey(t))
    assert bool(ts.truncated[0]) and not bool(ts.terminated[0])
    assert float(ts.info["episode_length"][0]) == 100.0


def test_sampled_outcomes_are_the_tables_outcomes_not_their_averages():
    # slippery CliffWalking: "right" from the start slips into the cliff (-100) or not (-1), and
    # both land on the start state: the model's expected reward there is their mean, the
    # environment pays one or the other, as Gymnasium does
    env = envs.make("CliffWalking-v1@is_slippery=True", num_envs=4000, one_hot=False)
    state, _ = env.reset(jax.random.PRNGKey(0))
    _, ts = env.step(state, jnp.ones(4000, jnp.int32), jax.random.PRNGKey(1))
    rewards = np.asarray(ts.reward)
    assert set(np.unique(rewards)) == {-100.0, -1.0}
    m = env.tabular_model()
    expected = np.sum(m.transitions[36, 1] * m.rewards[36, 1])
    assert abs(rewards.mean() - expected) < 4.0
    # Taxi's fickle passenger is not in its table: no JAX-native version, no model
    with pytest.raises(PgzooError, match="outside its transition table"):
        envs.make("Taxi-v4@fickle_passenger=True")
    assert envs.make("gymnasium:Taxi-v4@fickle_passenger=True").tabular_model() is None


def test_discrete_observations_are_one_hot_for_the_deep_algorithms():
    for spec in ("FrozenLake-v1", "gymnasium:FrozenLake-v1"):
        env = envs.make(spec, num_envs=2)
        assert env.observation_space.shape == (16,)
        _, ts = env.reset(jax.random.PRNGKey(0))
        np.testing.assert_array_equal(np.asarray(ts.obs), np.eye(16)[[0, 0]])


def test_environment_options_and_their_errors():
    env = envs.make("FrozenLake-v1@is_slippery=False,map_name='8x8'", one_hot=False)
    assert env.observation_space.n == 64
    assert env.tabular_model().transitions.max() == 1.0  # deterministic
    with pytest.raises(PgzooError, match="does not take"):
        envs.make("FrozenLake-v1@no_such_option=1")
    with pytest.raises(PgzooError, match="must be key=value"):
        envs.make("FrozenLake-v1@slippery")


def test_a_users_mdp_from_arrays_and_an_npz_file(tmp_path):
    # a two-state chain: "go" (action 1) from state 0 reaches the terminal state 1 with reward 1
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[0, 1, 1] = p[1, :, 1] = 1.0
    m = tabular.from_arrays(p, [[0.0, 1.0], [0.0, 0.0]], terminates=[0.0, 1.0])
    path = tmp_path / "chain.npz"
    tabular.save(m, path)
    loaded = tabular.load(path)
    for a, b in zip(m[:4], loaded[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    run = pgzoo.train("value_iteration", f"mdp:{path}", run_dir=tmp_path / "run",
                      progress=False, eval_episodes=0)
    q = np.asarray(pgzoo.load(run.run_dir).params[0])
    np.testing.assert_allclose(q[0], [1.0, 1.0])  # stay then go, or go: gamma = 1
    with pytest.raises(PgzooError, match="probability distribution"):
        tabular.from_arrays(p * 2, np.zeros((2, 2)))
    with pytest.raises(PgzooError, match="does not exist"):
        tabular.load(tmp_path / "missing.npz")
    np.save(tmp_path / "bad.npy", np.zeros(3))
    (tmp_path / "bad.npz").write_bytes((tmp_path / "bad.npy").read_bytes())
    with pytest.raises(PgzooError, match="not a readable .npz"):
        tabular.load(tmp_path / "bad.npz")


def test_tabular_methods_reject_continuous_state_spaces(tmp_path):
    with pytest.raises(PgzooError, match="finite state space"):
        build("q_learning", "CartPole-v1")
    with pytest.raises(PgzooError, match="transition model"):
        build("value_iteration", "envs_for_tests:Ring")  # discrete states, no table
    run = pgzoo.train("q_learning", "envs_for_tests:Ring", 400, progress=False, eval_episodes=2,
                      run_dir=tmp_path / "ring")  # a model-free method needs no table
    assert run.eval["episodes_per_seed"] == 2


# --- dynamic programming -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", TASKS)
def test_value_and_policy_iteration_agree(spec):
    # gamma < 1 gives every policy a finite value; float32 tables, tolerance 1e-7
    v_vi, _, _ = plan("value_iteration", spec, gamma=0.99, tolerance=1e-7)
    v_pi, _, _ = plan("policy_iteration", spec, gamma=0.99, tolerance=1e-7)
    assert np.max(np.abs(v_vi - v_pi)) <= 1e-6


def test_dynamic_programming_reaches_the_known_optima():
    frozen = model("FrozenLake-v1")
    v, _, _ = plan("value_iteration", "FrozenLake-v1", gamma=1.0, tolerance=1e-8)
    # success probability of the best policy from the start with no time limit: 14/17
    assert abs(v[0] - 14 / 17) < 1e-4
    # its greedy policy (gamma -> 1) within the task's 100-step limit: about 0.74
    _, q, _ = plan("policy_iteration", "FrozenLake-v1", gamma=0.999, tolerance=1e-7)
    assert abs(tab.finite_horizon_return(frozen, q.argmax(-1), 100) - 0.7402) < 5e-4
    v, q, _ = plan("value_iteration", "CliffWalking-v1")
    assert v[36] == -13.0  # the optimal path along the cliff
    assert tab.finite_horizon_return(model("CliffWalking-v1"), q.argmax(-1), 100) == -13.0
    taxi = model("Taxi-v4")
    v, q, _ = plan("value_iteration", "Taxi-v4")
    # the mean optimal return over Taxi-v4's 300 start states, exactly
    assert abs(float(taxi.initial @ v) - 7.93) < 1e-4
    assert abs(tab.finite_horizon_return(taxi, q.argmax(-1), 200) - 7.93) < 1e-4


@pytest.mark.parametrize("spec,gamma", [("FrozenLake-v1", 0.99), ("CliffWalking-v1", 0.9)])
def test_policy_evaluation_equals_the_linear_system(spec, gamma):
    v, _, _ = plan("policy_evaluation", spec, gamma=gamma, tolerance=1e-7)
    m = model(spec)
    uniform = np.full(m.transitions.shape[:2], 1.0 / m.num_actions)
    exact = tab.solve_policy(m, uniform, gamma)  # (I - gamma P_pi)^-1 r_pi
    np.testing.assert_allclose(v, exact, atol=1e-4 * max(1.0, np.abs(exact).max()))


# --- the sample-based updates ------------------------------------------------------------------
def step(obs, action, reward, terminated, done, final_obs, final_action):
    a = lambda x, d=jnp.int32: jnp.asarray(x, d)
    return tab.Step(a(obs), a(action), a(reward, jnp.float32), a(terminated, bool),
                    a(done, bool), a(final_obs), a(final_action))


@pytest.mark.parametrize("algo", ["q_learning", "sarsa", "expected_sarsa"])
def test_td_updates_by_hand(algo):
    q = jnp.asarray([[0.0, 1.0], [2.0, 4.0], [0.0, 0.0]])
    # two environments take (s=0, a=0, r=1) to s'=1, where A' = 0; the second ends its episode
    s = step([0, 0], [0, 0], [1.0, 1.0], [False, True], [False, True], [1, 1], [0, 0])
    if algo == "q_learning":
        target = q_learning.td_target(q, s, 0.5)
        bootstrap = 4.0  # max_a Q(1, a)
    else:
        target = sarsa.td_target(q, s, 0.5, 0.2, algo == "expected_sarsa")
        # SARSA: Q(1, A' = 0); expected: epsilon / 2 = 0.1 on each action, 0.8 more on the greedy
        bootstrap = 2.0 if algo == "sarsa" else 0.1 * 2.0 + 0.9 * 4.0
    np.testing.assert_allclose(target, [1.0 + 0.5 * bootstrap, 1.0], rtol=1e-6)
    # a time limit (done, not terminated) bootstraps from the true last state
    cut = s._replace(terminated=jnp.asarray([False, False]))
    cut_target = (q_learning.td_target(q, cut, 0.5) if algo == "q_learning"
                  else sarsa.td_target(q, cut, 0.5, 0.2, algo == "expected_sarsa"))
    np.testing.assert_allclose(cut_target, [1.0 + 0.5 * bootstrap] * 2, rtol=1e-6)
    new_q, loss = tab.td_update(q, s.obs, s.action, target, 0.5)
    # the two updates of Q(0, 0) apply in turn: 0 -> 0.5 y_1 -> that + 0.5 (y_2 - that)
    first = 0.5 * float(target[0])
    assert float(new_q[0, 0]) == pytest.approx(first + 0.5 * (1.0 - first), rel=1e-6)
    np.testing.assert_array_equal(np.asarray(new_q)[1:], np.asarray(q)[1:])
    assert float(loss) == pytest.approx(0.25 * (float(target[0]) ** 2 + (1.0 - first) ** 2))


def test_epsilon_greedy_probabilities_and_schedule():
    probs = tab.epsilon_greedy_probs(jnp.asarray([1.0, 3.0, 3.0, 0.0]), 0.2)
    np.testing.assert_allclose(probs, [0.05, 0.45, 0.45, 0.05], atol=1e-6)
    actions = tab.epsilon_greedy(jnp.tile(jnp.asarray([1.0, 3.0, 3.0, 0.0]), (40_000, 1)), 0.2,
                                 jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.bincount(np.asarray(actions), minlength=4) / 40_000, probs,
                               atol=0.01)
    assert float(tab.linear(1.0, 0.05, 0.5, 0.0, 100)) == 1.0
    assert float(tab.linear(1.0, 0.05, 0.5, 25.0, 100)) == pytest.approx(0.525)
    assert float(tab.linear(1.0, 0.05, 0.5, 80.0, 100)) == pytest.approx(0.05)


def test_first_visit_returns_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        horizon, length = 12, int(rng.integers(1, 13))
        states = rng.integers(0, 3, horizon)
        actions = rng.integers(0, 2, horizon)
        rewards = rng.normal(size=horizon).astype(np.float32)
        returns, first = monte_carlo.first_visit_returns(
            jnp.asarray(states), jnp.asarray(actions), jnp.asarray(rewards), length, 0.9)
        for t in range(horizon):
            if t >= length:
                assert not bool(first[t])
                continue
            expected = sum(0.9 ** (k - t) * rewards[k] for k in range(t, length))
            assert float(returns[t]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
            pairs = list(zip(states[:t], actions[:t], strict=True))
            assert bool(first[t]) == ((states[t], actions[t]) not in pairs)


def test_monte_carlo_keeps_the_average_of_first_visit_returns():
    q, visits = jnp.zeros((3, 2)), jnp.zeros((3, 2))
    # episode 1: (0,1) r=1, (2,0) r=0, (0,1) r=2 (a second visit), then 3 empty slots
    q, visits, loss = monte_carlo.average_episode(
        q, visits, jnp.asarray([0, 2, 0, 0, 0, 0]), jnp.asarray([1, 0, 1, 0, 0, 0]),
        jnp.asarray([1.0, 0.0, 2.0, 0, 0, 0]), 3, 0.0, 1.0)
    assert float(q[0, 1]) == 3.0 and float(q[2, 0]) == 2.0  # G_0 = 3, G_1 = 2
    assert float(loss) == pytest.approx((0.5 * 9 + 0.5 * 4) / 2)  # before the update
    # episode 2: (0,1) r=5: Q(0,1) = mean(3, 5); N counts first visits only
    q, visits, _ = monte_carlo.average_episode(
        q, visits, jnp.asarray([0, 0, 0, 0, 0, 0]), jnp.asarray([1, 0, 0, 0, 0, 0]),
        jnp.asarray([5.0, 0, 0, 0, 0, 0]), 1, 0.0, 1.0)
    assert float(q[0, 1]) == 4.0 and float(visits[0, 1]) == 2.0 and float(visits[2, 0]) == 1.0
    # a constant step size instead of 1/N
    q2, _, _ = monte_carlo.average_episode(
        q, visits, jnp.asarray([0, 0]), jnp.asarray([1, 0]), jnp.asarray([8.0, 0.0]), 1, 0.25,
        1.0)
    assert float(q2[0, 1]) == 4.0 + 0.25 * (8.0 - 4.0)


def test_sarsa_acts_with_the_next_action_it_bootstrapped_on():
    # record, through the learner's loop, each step's A and its A': A' is the action taken at
    # the next step whenever the episode went on
    exp = build("sarsa", "CliffWalking-v1", total_steps=400, overrides={"block_size": 1})

    def learn(q, memory, s, alpha, epsilon, key):
        q = q.at[s.obs, s.action].add(-0.1)  # move Q so that the policy keeps changing
        return q, memory, {"a": s.action[0].astype(jnp.float32),
                           "next": s.final_action[0].astype(jnp.float32),
                           "done": s.done[0].astype(jnp.float32)}

    agent = tab.make_learner(exp.config, exp.env, 400, learn)
    state = agent.init(jax.random.PRNGKey(0))
    rows = []
    step = jax.jit(agent.step)
    for _ in range(400):
        state, m = step(state)
        rows.append((float(m["a"]), float(m["next"]), float(m["done"])))
    went_on = [(b[0], a[1]) for a, b in zip(rows, rows[1:]) if not a[2]]
    assert len(went_on) > 300 and all(x == y for x, y in went_on)


def test_a_resumed_monte_carlo_run_drops_partial_episodes():
    exp = build("monte_carlo", "FrozenLake-v1", total_steps=1000, overrides={"block_size": 7})
    state, _ = jax.jit(exp.agent.step)(exp.agent.init(jax.random.PRNGKey(0)))
    env_state, ts = exp.env.reset(jax.random.PRNGKey(1))
    fresh = exp.agent.with_env(state, env_state, ts.obs)
    assert int(fresh.memory.length.sum()) == 0
    np.testing.assert_array_equal(fresh.memory.visits, state.memory.visits)


def test_monte_carlo_needs_a_time_limit():
    with pytest.raises(PgzooError, match="time limit"):
        build("monte_carlo", "CliffWalking-v1")


# --- learning ----------------------------------------------------------------------------------
def online_returns(algo, runs, steps):
    """Each run's first episodes' returns on CliffWalking with S&B Example 6.6's settings."""
    exp = build(algo, "CliffWalking-v1", total_steps=steps, num_seeds=runs,
                overrides={"block_size": 1})

    def body(state, _):
        state, m = exp.step(state)
        return state, (m["episodes"], m["episode_return_sum"])

    state, (episodes, sums) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=steps))(
        exp.init_state())
    episodes, sums = np.asarray(episodes), np.asarray(sums)
    return [sums[episodes[:, k] > 0, k] for k in range(runs)], np.asarray(exp.params(state))


def test_sarsa_and_q_learning_on_the_cliff():
    # Sutton & Barto Example 6.6 (epsilon 0.1, alpha 0.5), 10 runs of 6000 steps: SARSA learns
    # the safe path, Q-learning the optimal one along the cliff and falls off while exploring
    sarsa_runs, _ = online_returns("sarsa", 10, 6000)
    q_runs, q = online_returns("q_learning", 10, 6000)
    late = lambda runs: np.mean([r[100:150].mean() for r in runs])
    assert all(len(r) >= 150 for r in sarsa_runs + q_runs)
    assert -35 < late(sarsa_runs) < -15 and late(q_runs) < -40
    cliff = model("CliffWalking-v1")
    for table in q:
        assert tab.finite_horizon_return(cliff, table.argmax(-1), 100) == -13.0


def test_deep_algorithms_train_on_a_discrete_observation_task(tmp_path):
    # the observation arrives one-hot, on the replay path (DQN) and the on-policy one (PPO)
    run = pgzoo.train("dqn", "FrozenLake-v1@is_slippery=False", 512, run_dir=tmp_path / "dqn",
                      progress=False, eval_episodes=2, learning_starts=32, batch_size=8,
                      buffer_size=64)
    assert run.summary["env_steps"] == 500 and run.eval["episodes_per_seed"] == 2  # 10 blocks
    run = pgzoo.train("ppo", "FrozenLake-v1@is_slippery=False", 64, run_dir=tmp_path / "ppo",
                      progress=False, eval_episodes=0, num_envs=2, num_steps=16,
                      num_minibatches=2)
    assert run.summary["env_steps"] == 64


def test_a_grid_world_run_draws_its_values_and_the_cli_plots_them(tmp_path, capsys):
    run_dir = tmp_path / "vi"
    assert main(["train", "value_iteration", "--env", "CliffWalking-v1", "--run-dir",
                 str(run_dir), "--no-progress", "--eval-episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "converged" in out and "sweeps" in out
    assert (run_dir / "values.png").stat().st_size > 10_000
    config = json.loads((run_dir / "config.json").read_text())
    assert config["stopped_early"].startswith("converged")
    assert main(["plot", str(run_dir), "--values", "-o", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v.png").stat().st_size > 10_000
    # a run that is not a tabular one on a grid world: one line, exit 2
    assert main(["plot", str(run_dir), str(run_dir), "--values"]) == 2
