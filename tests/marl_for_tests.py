"""A PettingZoo parallel environment with known dynamics, for the multi-agent host bridge:
``pettingzoo:marl_for_tests``.

Two agents. ``runner`` (Discrete(2)) observes [t, 1] and gets reward 1 per step; ``sitter``
(Box(-1, 1, (1,))) observes [t, 2, 0] and gets the reward 10 * its action. ``sitter`` terminates
(leaves the episode) after 2 steps; ``runner`` is truncated by the time limit after 4."""
import gymnasium
import numpy as np


class TwoAgents:
    metadata = {"name": "two_agents_v0"}

    def __init__(self, max_cycles: int = 4):
        self.possible_agents = ["runner", "sitter"]
        self.agents = []
        self.max_cycles = max_cycles
        self.t = 0
        self._obs_spaces = {"runner": gymnasium.spaces.Box(-100, 100, (2,), np.float32),
                            "sitter": gymnasium.spaces.Box(-100, 100, (3,), np.float32)}
        self._act_spaces = {"runner": gymnasium.spaces.Discrete(2),
                            "sitter": gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)}

    @property
    def unwrapped(self):
        return self

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _obs(self):
        obs = {"runner": np.array([self.t, 1], np.float32),
               "sitter": np.array([self.t, 2, 0], np.float32)}
        return {a: obs[a] for a in self.agents}

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)
        self.t += 1
        rewards = {"runner": 1.0, "sitter": 10.0 * float(np.asarray(actions.get("sitter", [0]))[0])}
        rewards = {a: rewards[a] for a in self.agents}
        terminations = {a: a == "sitter" and self.t >= 2 for a in self.agents}
        truncations = {a: self.t >= self.max_cycles for a in self.agents}
        obs = self._obs()
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return obs, rewards, terminations, truncations, infos

    def close(self):
        pass


def parallel_env(**kwargs):
    return TwoAgents(**kwargs)
