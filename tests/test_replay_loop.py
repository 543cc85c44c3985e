"""The replay loop (``pgzoo.algos.loops.replay``) on its own, driven by tiny algorithms defined
here: discrete actions, and raw observations in the buffer normalised when sampled."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from pgzoo import envs
from pgzoo.algos.loops.replay import make_agent, uniform_batch
from pgzoo.core import replay


@dataclass(frozen=True)
class TinyConfig:
    num_envs: int = 4
    learning_starts: int = 200  # 50 steps of each environment
    gradient_steps: int = 1
    block_size: int = 10
    batch_size: int = 16
    buffer_size: int = 256  # 64 steps per environment: nothing is overwritten in these tests


def tiny_algorithm(env, config, greedy_action):
    """A replay "algorithm" whose policy ignores the observation (``greedy_action`` everywhere)
    and whose update keeps the last sampled minibatch, normalised and raw."""
    buffer = replay.make(config.buffer_size, config.batch_size, config.num_envs)
    obs_shape = env.observation_space.shape
    batch = jnp.zeros((config.batch_size,) + obs_shape)

    def init_learner(key, obs, action):
        return {"unused": jnp.zeros(())}, {"obs": batch, "next_obs": batch, "raw_obs": batch}

    def policy(params, obs, key, deterministic=False):
        return jnp.broadcast_to(greedy_action, obs.shape[:1] + jnp.shape(greedy_action))

    def update(params, learner, buffer_state, key, normalize):
        b = uniform_batch(buffer, buffer_state, key, normalize)
        raw = uniform_batch(buffer, buffer_state, key, lambda obs: obs)  # the same draw
        learner = {"obs": b.obs, "next_obs": b.next_obs, "raw_obs": raw.obs}
        return params, learner, buffer_state, {"batch_reward": jnp.mean(b.reward)}

    return make_agent(env, config, buffer, init_learner, update, policy)


def run_blocks(agent, blocks, seed=0):
    state = agent.init(jax.random.PRNGKey(seed))
    step = jax.jit(agent.step)
    for _ in range(blocks):
        state, metrics = step(state)
    return state, jax.device_get(metrics)


def test_discrete_actions_through_the_replay_loop():
    config = TinyConfig()
    env = envs.make("CartPole-v1", num_envs=config.num_envs)
    assert env.jax_native and env.action_space.kind == "discrete"
    state, metrics = run_blocks(tiny_algorithm(env, config, jnp.int32(1)), blocks=6)
    assert np.isfinite(metrics["batch_reward"])  # learning ran
    steps = int(state.env_steps)
    assert steps == 60
    actions = np.asarray(state.buffer.experience.action)[:, :steps]
    assert actions.dtype == np.int32 and actions.shape == (config.num_envs, steps)
    assert np.all((actions >= 0) & (actions < env.action_space.n))
    burn_in = config.learning_starts // config.num_envs
    assert set(np.unique(actions[:, :burn_in])) == {0, 1}  # uniform over every action
    assert np.all(actions[:, burn_in:] == 1)  # then the algorithm's policy
    assert state.learner["obs"].shape == (config.batch_size, 4)


def test_buffer_holds_raw_observations_and_batches_are_normalised_when_sampled():
    config = TinyConfig(num_envs=2, learning_starts=20)
    runs = {}
    for normalize_obs in (False, True):
        env = envs.make("Pendulum-v1", num_envs=config.num_envs, normalize_obs=normalize_obs)
        agent = tiny_algorithm(env, config, jnp.zeros(1))
        runs[normalize_obs] = env, run_blocks(agent, blocks=5)[0]
    (_, plain), (env, normed) = runs[False], runs[True]
    steps = int(normed.env_steps)
    stored = jax.tree.map(lambda x: np.asarray(x)[:, :steps], normed.buffer.experience)
    unwrapped = jax.tree.map(lambda x: np.asarray(x)[:, :steps], plain.buffer.experience)
    # The actions do not depend on observations, so both runs saw the same states: the buffer of
    # the normalising run holds the observations of the environment without the wrapper.
    np.testing.assert_allclose(stored.obs, unwrapped.obs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(stored.next_obs, unwrapped.next_obs, rtol=1e-6, atol=1e-6)
    cos_sin = stored.obs[..., :2]
    np.testing.assert_allclose(np.sum(cos_sin ** 2, -1), 1.0, rtol=1e-5)  # raw Pendulum obs
    np.testing.assert_allclose(normed.raw_obs, plain.obs, rtol=1e-6, atol=1e-6)
    # The policy sees normalised observations ...
    stats = normed.env_state.stats
    def normalise(obs):
        return np.clip((obs - stats.mean) / np.sqrt(stats.var + 1e-8), -10.0, 10.0)
    np.testing.assert_allclose(normed.obs, normalise(np.asarray(normed.raw_obs)), atol=1e-5)
    # ... and a sampled batch is normalised with the statistics of now (the last update ran
    # after the last step, whose observations are in ``stats``).
    raw_batch = np.asarray(normed.learner["raw_obs"])
    assert np.all(np.isin(raw_batch[:, 2], stored.obs[..., 2]))  # drawn from the buffer
    np.testing.assert_allclose(normed.learner["obs"], normalise(raw_batch), atol=1e-5)
    assert not np.allclose(normed.learner["obs"], raw_batch, atol=1e-2)
    # without normalisation the batch is the stored observations as they are
    np.testing.assert_allclose(plain.learner["obs"], plain.learner["raw_obs"])


def test_with_env_recovers_raw_observations_from_normalised_ones():
    config = TinyConfig(num_envs=2, learning_starts=20)
    env = envs.make("Pendulum-v1", num_envs=config.num_envs, normalize_obs=True)
    agent = tiny_algorithm(env, config, jnp.zeros(1))
    state, _ = run_blocks(agent, blocks=2)
    env_state, ts = env.resume(state.env_state, jax.random.PRNGKey(3))
    state = agent.with_env(state, env_state, ts.obs)
    np.testing.assert_allclose(state.raw_obs, ts.info["raw_obs"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.obs, ts.obs)
