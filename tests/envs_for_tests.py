"""Small Gymnasium environments with known dynamics, for testing the host bridge."""
import gymnasium
import numpy as np


class Corridor(gymnasium.Env):
    """Walk along a line: action 1 moves right, 0 left. Reward 1 per step; reaching x = 3
    terminates; after 10 steps the episode is truncated. Observation [x, t]."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(-20.0, 20.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.render_mode = render_mode
        self.x = self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, self.t], np.float32)

    def step(self, action):
        self.x += 1 if int(action) == 1 else -1
        self.t += 1
        terminated = self.x >= 3
        truncated = self.t >= 10 and not terminated
        return self._obs(), 1.0, terminated, truncated, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[:, min(15, max(0, self.x + 8))] = 255
        return frame


class Ring(gymnasium.Env):
    """Discrete observations without a model table: a position on a ring of 5 cells; action 1
    moves clockwise, 0 counter-clockwise; reward 1 at cell 0; 20 steps."""

    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Discrete(5)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.x = self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 2, 0
        return self.x, {}

    def step(self, action):
        self.x = (self.x + (1 if int(action) == 1 else -1)) % 5
        self.t += 1
        return self.x, float(self.x == 0), False, self.t >= 20, {}


class Reach(gymnasium.Env):
    """Continuous: the action (bounded to [-2, 2]) is added to x; reward is -|x - 1|. 20 steps."""

    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gymnasium.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.x = 0.0
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.last_action = float(np.asarray(action)[0])
        self.x = float(np.clip(self.x + self.last_action, -10, 10))
        self.t += 1
        return (np.array([self.x], np.float32), -abs(self.x - 1.0), False, self.t >= 20,
                {})


class PixelReach(Reach):
    """Reach seen as a 12x12 grey image in 0..255 (a column lit at x), for the image encoders."""

    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.observation_space = gymnasium.spaces.Box(0, 255, (12, 12, 1), np.uint8)
        self.spec = gymnasium.envs.registration.EnvSpec("PixelReach-v0", max_episode_steps=20)

    def _image(self):
        frame = np.zeros((12, 12, 1), np.uint8)
        frame[:, int(np.clip(round(self.x) + 6, 0, 11))] = 255
        return frame

    def reset(self, *, seed=None, options=None):
        _, info = super().reset(seed=seed)
        return self._image(), info

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return self._image(), reward, terminated, truncated, info


class Switches(gymnasium.Env):
    """An action space pgzoo's algorithms do not handle (MultiBinary)."""

    def __init__(self, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (3,), np.float32)
        self.action_space = gymnasium.spaces.MultiBinary(3)

    def reset(self, *, seed=None, options=None):
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.asarray(action, np.float32), 0.0, False, False, {}


class TwoArmedBandit:
    """A JAX-native bandit on pgzoo's protocol: one-step episodes, constant observation [1],
    reward ``means[a]`` for action a."""

    jax_native = True
    spec = "test:TwoArmedBandit"
    max_episode_steps = 1

    def __init__(self, num_envs, means=(1.0, 0.0)):
        import jax.numpy as jnp

        from pgzoo.envs import Box, Discrete

        self.num_envs = num_envs
        self.observation_space = Box(np.zeros(1), np.ones(1))
        self.action_space = Discrete(2)
        self.means = jnp.asarray(means, jnp.float32)

    @property
    def unwrapped(self):
        return self

    def _timestep(self, reward, done):
        import jax.numpy as jnp

        from pgzoo.envs import TimeStep

        obs = jnp.ones((self.num_envs, 1), jnp.float32)
        return TimeStep(obs, reward, done, jnp.zeros(self.num_envs, bool), obs, {})

    def reset(self, key):
        import jax.numpy as jnp

        n = self.num_envs
        return jnp.zeros(()), self._timestep(jnp.zeros(n), jnp.zeros(n, bool))

    def step(self, state, action, key):
        import jax.numpy as jnp

        return state, self._timestep(self.means[action], jnp.ones(self.num_envs, bool))

    def resume(self, state, key):
        return self.reset(key)

    def normalize_obs(self, state, obs):
        return obs


class Countdown:
    """A JAX-native, deterministic chain on pgzoo's protocol. Environment i's episodes last
    ``lengths[i]`` steps and end terminated, or truncated where ``truncated[i]``. Observation
    [i, episode number, t]: every step of a run has its own. Step t of episode e earns
    ``reward(e, t)`` whatever the action (Discrete(2)); the state logs every action it receives,
    ``actions(env_state)[s, i]`` being environment i's action at its step s of the run."""

    jax_native = True
    spec = "test:Countdown"
    max_episode_steps = None

    def __init__(self, lengths=(7, 12, 4), truncated=(False, True, False), log_size=512):
        import jax.numpy as jnp

        from pgzoo.envs import Box, Discrete

        self.num_envs = len(lengths)
        self.lengths = jnp.asarray(lengths, jnp.int32)
        self.truncates = jnp.asarray(truncated, bool)
        self.observation_space = Box(np.zeros(3), np.full(3, 1000.0))
        self.action_space = Discrete(2)
        self.log_size = log_size

    @staticmethod
    def reward(episode, t):
        return 1.0 + 0.1 * t + episode

    @staticmethod
    def actions(env_state):
        """The action log of an (EpisodeStatistics-wrapped) Countdown's state."""
        return env_state.inner[3]

    @property
    def unwrapped(self):
        return self

    def _obs(self, episode, t):
        import jax.numpy as jnp

        return jnp.stack([jnp.arange(self.num_envs), episode, t], -1).astype(jnp.float32)

    def reset(self, key):
        import jax.numpy as jnp

        from pgzoo.envs import TimeStep

        n = self.num_envs
        zeros = jnp.zeros(n, jnp.int32)
        state = (zeros, zeros, jnp.zeros((), jnp.int32), jnp.zeros((self.log_size, n), jnp.int32))
        obs = self._obs(zeros, zeros)
        false = jnp.zeros(n, bool)
        return state, TimeStep(obs, jnp.zeros(n, jnp.float32), false, false, obs, {})

    def step(self, state, action, key):
        import jax.numpy as jnp

        from pgzoo.envs import TimeStep

        episode, t, count, log = state
        log = log.at[count].set(action.astype(jnp.int32))
        reward = self.reward(episode, t).astype(jnp.float32)
        t = t + 1
        done = t >= self.lengths
        final_obs = self._obs(episode, t)
        episode, t = jnp.where(done, episode + 1, episode), jnp.where(done, 0, t)
        return (episode, t, count + 1, log), TimeStep(
            self._obs(episode, t), reward, done & ~self.truncates, done & self.truncates,
            final_obs, {})

    def resume(self, state, key):
        return self.reset(key)

    def normalize_obs(self, state, obs):
        return obs
