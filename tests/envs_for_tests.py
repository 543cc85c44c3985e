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
