"""Image observations: the encoder each observation gets, the convolutions' arithmetic, pixel
scaling, the Atari preprocessing through the bridge, and PPO learning a JAX-native image task."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgzoo import algos
from pgzoo.core import networks
from pgzoo.envs import registry, wrappers
from pgzoo.errors import PgzooError
from pgzoo.run import rundir, trainer
from pgzoo.run.experiment import build
from test_contract import SMALL

IMAGE_ENVS = {"discrete": "Breakout-MinAtar", "continuous": "envs_for_tests:PixelReach"}
VECTOR_ENVS = {"discrete": "CartPole-v1", "continuous": "Pendulum-v1"}


def _param_paths(tree) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(tree)]


@pytest.mark.parametrize("encoder,shape,expected", [
    ("auto", (84, 84, 4), "nature"), ("auto", (10, 10, 4), "minatar"), ("auto", (4,), "mlp"),
    ("auto", (3, 5), "mlp"), ("impala", (64, 64, 3), "impala"), ("mlp", (84, 84, 4), "mlp")])
def test_the_encoder_follows_the_observation(encoder, shape, expected):
    assert networks.choose_encoder(encoder, shape) == expected


def test_an_image_encoder_on_vectors_or_an_unknown_one_is_a_one_line_error():
    with pytest.raises(PgzooError, match="needs image observations"):
        networks.choose_encoder("nature", (4,))
    with pytest.raises(PgzooError, match="encoder must be one of auto, mlp, nature"):
        networks.choose_encoder("resnet", (84, 84, 4))
    with pytest.raises(PgzooError, match="needs image observations"):
        build("ppo", "CartPole-v1", overrides={"encoder": "impala"})


# Every deep single-agent algorithm, on each action kind it supports, gets a CNN for images
# (JAX-native MinAtar, and a 0..255 image through the bridge): through the contract.
DEEP = [(name, kind) for name, a in algos.ALGORITHMS.items() for kind in a.action_spaces
        if not (a.env_needs(a.config()).state_index or a.env_needs(a.config()).multi_agent)]


@pytest.mark.parametrize("name,kind", DEEP)
def test_every_deep_algorithm_gets_a_cnn_for_images(name, kind):
    try:
        image = _param_paths(build(name, IMAGE_ENVS[kind], overrides=SMALL[name]).template())
    except PgzooError as err:  # a full covariance of a CNN's many parameters: refused in a line
        assert name == "cma_es" and "covariance" in str(err) and "\n" not in str(err)
        return
    assert any("Conv_0" in p and "kernel" in p for p in image), image


@pytest.mark.parametrize("name,kind", [("ppo", "discrete"), ("sac", "continuous")])
def test_vectors_get_an_mlp(name, kind):
    vector = _param_paths(build(name, VECTOR_ENVS[kind], overrides=SMALL[name]).template())
    assert vector and not any("Conv" in p for p in vector)


def test_the_nature_and_impala_networks_have_their_papers_shapes():
    x = jax.ShapeDtypeStruct((2, 84, 84, 4), jnp.float32)
    key = jax.random.key(0)
    params = jax.eval_shape(networks.Torso((512,), "relu", 3, "nature").init, key, x)
    kernels = [v.shape for p, v in jax.tree_util.tree_leaves_with_path(params)
               if "Conv" in jax.tree_util.keystr(p) and len(v.shape) == 4]
    assert kernels == [(8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64)]
    assert networks.count_params(params) == 1_684_128  # as CleanRL's Atari network (no heads)
    impala = networks.Encoder(3, "impala")
    out = jax.eval_shape(lambda: impala.apply(impala.init(key, jnp.zeros(x.shape)),
                                              jnp.zeros(x.shape)))
    assert out.shape == (2, 11 * 11 * 32)  # 84 -> 42 -> 21 -> 11, 32 channels


@pytest.mark.parametrize("kernel,stride,padding", [(8, 4, "VALID"), (4, 2, "VALID"),
                                                    (3, 1, "VALID"), (3, 1, "SAME")])
def test_the_patch_convolution_equals_flax_conv(kernel, stride, padding):
    x = jax.random.normal(jax.random.key(0), (3, 21, 21, 5))
    conv = networks.Conv(6, kernel, stride, padding)
    params = conv.init(jax.random.key(1), x)
    reference = nn.Conv(6, (kernel, kernel), (stride, stride), padding=padding)
    np.testing.assert_allclose(conv.apply(params, x), reference.apply(params, x), atol=1e-5)


@pytest.mark.parametrize("size", [84, 21, 10])
def test_the_patch_max_pool_equals_flax_max_pool(size):
    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    np.testing.assert_array_equal(networks.max_pool_same(x),
                                  nn.max_pool(x, (3, 3), (2, 2), padding="SAME"))


def test_images_in_0_to_255_are_scaled_to_0_1_and_others_are_left_alone():
    env = registry.make("envs_for_tests:PixelReach", num_envs=2)
    assert isinstance(env.env, wrappers.ScaleImage) and env.observation_space.high.max() == 1.0
    _, ts = env.reset(jax.random.key(0))
    assert ts.obs.shape == (2, 12, 12, 1) and float(ts.obs.max()) == 1.0
    assert set(np.unique(np.asarray(ts.obs))) == {0.0, 1.0}
    minatar = registry.make("Breakout-MinAtar")  # already in [0, 1]
    assert not wrappers.is_image(registry.make_base("Breakout-MinAtar").observation_space)
    assert not isinstance(minatar, wrappers.ScaleImage)
    assert not wrappers.is_image(registry.make("CartPole-v1").observation_space)


def test_atari_preprocessing_for_a_few_hundred_steps():
    pytest.importorskip("ale_py", reason="ale-py (pip install 'pgzoo[atari]') is not installed")
    env = registry.make("ALE/Pong-v5@repeat_action_probability=0.0", num_envs=2)
    assert env.observation_space.shape == (84, 84, 4) and env.action_space.n == 6
    state, ts = env.reset(jax.random.key(0))
    assert ts.obs.shape == (2, 84, 84, 4)
    assert 0.0 <= float(ts.obs.min()) <= float(ts.obs.max()) <= 1.0
    # the 4 stacked frames are the same at reset, and the last differs from the first after steps
    np.testing.assert_array_equal(ts.obs[..., 0], ts.obs[..., 3])
    step = jax.jit(env.step)
    rewards, raw = [], np.zeros(2)
    for i in range(300):
        state, ts = step(state, jnp.full(2, i % 6, jnp.int32), jax.random.key(i))
        rewards.append(np.asarray(ts.reward))
    rewards = np.concatenate(rewards)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0} and (rewards != 0).any()
    assert not np.array_equal(ts.obs[..., 0], ts.obs[..., 3])
    two = registry.make("ALE/Pong-v5@frame_stack=2,screen_size=42", num_envs=1)
    assert two.observation_space.shape == (42, 42, 2)
    with pytest.raises(PgzooError, match="Atari option frame_stack must be an integer >= 1"):
        registry.make("ALE/Pong-v5@frame_stack=0")
    with pytest.raises(PgzooError, match="Atari option terminal_on_life_loss must be True or"):
        registry.make("ALE/Pong-v5@terminal_on_life_loss=3")


def test_ppo_learns_minatar_breakout_from_pixels(tmp_path):
    # The preset's settings (gymnax-blines) with 16 environments and the MinAtar CNN; the random
    # policy scores about 0.4.
    exp = build("ppo", "Breakout-MinAtar", total_steps=40_960, seed=0, preset=True,
                overrides={"num_envs": 16, "num_minibatches": 4})
    trainer.train(exp, tmp_path, progress=False, tensorboard=False, eval_episodes=0)
    rows = rundir.read_metrics(tmp_path)
    assert len(rows) == 20 and rows[0]["episode_return"] < 0.6
    assert np.mean([r["episode_return"] for r in rows[-3:]]) >= 2.5


@pytest.mark.parametrize("game", ["Asterix-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar"])
def test_the_other_minatar_games_are_jax_native_images(game):
    env = registry.make(game)
    assert env.jax_native and len(env.observation_space.shape) == 3
    assert any("Conv_0" in p for p in _param_paths(build("ppo", game, overrides=SMALL["ppo"])
                                                     .template()))


def test_a_loaded_policy_scales_gymnasium_frames_as_training_did(tmp_path):
    import pgzoo
    from envs_for_tests import PixelReach
    from pgzoo.envs import rescale_action

    run = pgzoo.train("ppo", "envs_for_tests:PixelReach", 64, run_dir=tmp_path / "r",
                      progress=False, tensorboard=False, eval_episodes=2, **SMALL["ppo"])
    policy = pgzoo.load(run.run_dir, trust=True)
    frame = PixelReach().reset()[0]  # uint8, 0 or 255
    assert policy.image_scale == 255.0
    seen = jnp.asarray(frame[None], jnp.float32) / 255.0  # what training saw
    expected = rescale_action(policy.act(policy.params, seen, jax.random.PRNGKey(0)), -2.0, 2.0)
    np.testing.assert_allclose(policy(frame), np.asarray(expected)[0], rtol=1e-6)
