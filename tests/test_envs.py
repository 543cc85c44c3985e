import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgzoo import envs
from pgzoo.envs.gymnasium_env import GymnasiumEnv
from pgzoo.envs.gymnax_env import GymnaxEnv
from pgzoo.errors import PgzooError


def rollout_host(env, actions, key=0):
    """Step ``env`` with a fixed action sequence; returns the list of timesteps."""
    k = jax.random.PRNGKey(key)
    state, ts = env.reset(k)
    step = jax.jit(env.step) if env.jax_native else env.step
    out = [ts]
    for a in actions:
        k, sub = jax.random.split(k)
        state, ts = step(state, a, sub)
        out.append(ts)
    return state, out


def test_make_resolves_backends():
    assert isinstance(envs.make("CartPole-v1").unwrapped, GymnaxEnv)
    assert isinstance(envs.make("gymnax:Acrobot-v1").unwrapped, GymnaxEnv)
    assert isinstance(envs.make("gymnasium:CartPole-v1").unwrapped, GymnasiumEnv)
    assert isinstance(envs.make("gymnasium:Pendulum-v1").unwrapped, GymnasiumEnv)
    user = envs.make("envs_for_tests:Corridor", num_envs=2)
    assert isinstance(user.unwrapped, GymnasiumEnv) and user.num_envs == 2
    assert envs.make("CartPole-v1").spec == "gymnax:CartPole-v1"


@pytest.mark.parametrize("spec, fragment", [
    ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
    ("gymnax:NoSuch-v0", "not a gymnax id"),
    ("jaxmarl:MPE_nope_v3", "unknown jaxmarl environment 'MPE_nope_v3'; valid: MPE_"),
    ("pettingzoo:no_such_module_xyz", "cannot import 'no_such_module_xyz'"),
    ("pettingzoo:json", "has no parallel_env"),
    ("brax:no_such_robot", "unknown Brax environment 'no_such_robot'"),
    ("brax:ant@warp9", "unknown Brax pipeline 'warp9'"),
    ("no_such_module_xyz:Env", "cannot import module"),
    ("envs_for_tests:rollout_host", "is not a gymnasium.Env class"),
    ("", "non-empty"),
])
def test_make_rejects_bad_specs(spec, fragment):
    with pytest.raises(PgzooError, match=fragment):
        envs.make(spec)


def test_spaces_and_action_rescaling():
    env = envs.make("Pendulum-v1")
    assert env.unwrapped.action_space.kind == "continuous"
    np.testing.assert_allclose(env.unwrapped.action_space.high, [2.0])
    np.testing.assert_allclose(env.action_space.high, [1.0])  # the agent acts in [-1, 1]
    np.testing.assert_allclose(envs.rescale_action(jnp.array([-1.0, 0.0, 1.0, 5.0]), -2.0, 2.0),
                               [-2.0, 0.0, 2.0, 2.0])
    assert envs.make("CartPole-v1").action_space.n == 2


def test_gymnax_truncation_at_time_limit_with_final_obs():
    # Pendulum never terminates; every episode is truncated after 200 steps.
    env = envs.make("Pendulum-v1", num_envs=3)
    _, steps = rollout_host(env, [jnp.zeros((3, 1))] * 201)
    for t, ts in enumerate(steps[1:], start=1):
        assert not ts.terminated.any()
        assert bool(ts.truncated.all()) == (t == 200)
    last = steps[200]
    # After the auto-reset the observation is the new episode's; final_obs continues the old one.
    assert not np.allclose(last.obs, last.final_obs)
    np.testing.assert_allclose(last.info["episode_length"], [200, 200, 200])
    assert steps[199].final_obs.shape == (3, 3)
    np.testing.assert_allclose(steps[199].obs, steps[199].final_obs)


def test_gymnax_termination_is_not_truncation():
    env = envs.make("CartPole-v1", num_envs=2)
    _, steps = rollout_host(env, [jnp.ones(2, jnp.int32)] * 40)  # always push right: falls
    ended = [ts for ts in steps[1:] if ts.done.any()]
    assert ended
    for ts in ended:
        np.testing.assert_array_equal(ts.terminated, ts.done)
        assert not ts.truncated.any()
        done = np.asarray(ts.done)
        # The final observation shows the pole past its limit; the new one is a fresh start.
        assert np.all(np.abs(ts.final_obs[done, 2]) > 0.2)
        assert np.all(np.abs(ts.obs[done]) <= 0.05)


def test_bridge_termination_truncation_and_final_obs():
    env = envs.make("envs_for_tests:Corridor", num_envs=2)
    # env 0 always moves right: terminates at step 3; env 1 alternates: truncated at step 10.
    actions = [jnp.array([1, t % 2]) for t in range(10)]
    _, steps = rollout_host(env, actions)
    ts3 = steps[3]
    np.testing.assert_array_equal(ts3.terminated, [True, False])
    np.testing.assert_allclose(ts3.final_obs[0], [3, 3])
    np.testing.assert_allclose(ts3.obs[0], [0, 0])  # auto-reset
    assert float(ts3.info["episode_return"][0]) == 3.0
    ts10 = steps[10]
    np.testing.assert_array_equal(ts10.truncated, [False, True])
    np.testing.assert_array_equal(ts10.terminated, [False, False])
    np.testing.assert_allclose(ts10.final_obs[1], [0, 10])
    assert int(ts10.info["episode_length"][1]) == 10


def test_bridge_runs_inside_jit_and_scan():
    env = envs.make("gymnasium:CartPole-v1", num_envs=3)

    @jax.jit
    def run(key):
        state, ts = env.reset(key)

        def body(carry, k):
            state, _ = carry
            state, ts = env.step(state, jnp.zeros(3, jnp.int32), k)
            return (state, ts.obs), ts.reward

        _, rewards = jax.lax.scan(body, (state, ts.obs), jax.random.split(key, 25))
        return rewards

    rewards = run(jax.random.PRNGKey(0))
    assert rewards.shape == (25, 3) and float(rewards.sum()) == 75.0


def test_bridge_continuous_actions_are_rescaled_to_the_box():
    env = envs.make("envs_for_tests:Reach", num_envs=1)
    _, steps = rollout_host(env, [jnp.array([[1.0]]), jnp.array([[-0.5]]), jnp.array([[9.0]])])
    np.testing.assert_allclose([float(ts.final_obs[0, 0]) for ts in steps[1:]], [2.0, 1.0, 3.0])


def test_both_backends_agree_on_cartpole_dynamics():
    native = envs.make("CartPole-v1").unwrapped
    bridge = envs.make("gymnasium:CartPole-v1").unwrapped
    gym_env = bridge._envs[0]
    _, ts = bridge.reset(jax.random.PRNGKey(0))
    state = jax.tree.map(lambda x: jnp.asarray(x)[None], native._env.reset_env(jax.random.PRNGKey(0),
                                                                  native._params)[1])
    # Put the native env into the bridge's start state, then apply the same actions.
    s = np.asarray(gym_env.unwrapped.state, np.float32)
    state = state.replace(x=jnp.array([s[0]]), x_dot=jnp.array([s[1]]),
                          theta=jnp.array([s[2]]), theta_dot=jnp.array([s[3]]))
    for a in [0, 1, 1, 0, 1]:
        state, nts = native.step(state, jnp.array([a]), jax.random.PRNGKey(1))
        _, bts = bridge.step(jnp.int32(0), jnp.array([a]), jax.random.PRNGKey(1))
        np.testing.assert_allclose(nts.obs, bts.obs, rtol=1e-4, atol=1e-5)


def test_brax_adapter_protocol_time_limit_and_termination():
    # one environment batch, one compilation: copy 0 is left alone, copy 1 pushed at full force
    from pgzoo.envs.brax_env import BraxEnv

    env = envs.make("brax:inverted_pendulum", num_envs=2)
    base = env.unwrapped
    assert isinstance(base, BraxEnv) and env.jax_native
    assert env.observation_space.shape == (4,) and env.action_space.shape == (1,)
    assert type(env).__name__ == "RescaleAction"
    base.max_episode_steps = 5  # a short time limit to see truncation and auto-reset
    state, ts = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    action = jnp.asarray([[0.0], [1.0]])
    ended = []
    for t in range(5):
        state, ts = step(state, action, jax.random.PRNGKey(t))
        ended.append((bool(ts.terminated[1]), bool(ts.truncated[1])))
    # the pole left alone for 5 steps has not fallen: the 5th step is a truncation
    assert bool(ts.truncated[0]) and not bool(ts.terminated[0])
    assert not np.allclose(ts.obs[0], ts.final_obs[0])  # a new episode began
    assert float(ts.info["episode_length"][0]) == 5 and float(ts.reward[0]) == 1.0
    # full force topples it within the limit: a termination, not a truncation
    assert (True, False) in ended[:4]
