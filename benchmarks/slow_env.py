"""A Gymnasium task whose step costs CPU time, for the actor scaling benchmark: CartPole-v1 with
about 1 ms of extra computation per step (a stand-in for an expensive simulator)."""
import time

from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.wrappers import TimeLimit

WORK_SECONDS = 0.001


class SlowCartPole(TimeLimit):
    def __init__(self, render_mode=None):
        super().__init__(CartPoleEnv(render_mode=render_mode), max_episode_steps=500)

    def step(self, action):
        end = time.perf_counter() + WORK_SECONDS
        while time.perf_counter() < end:  # busy: the step holds a core, as a simulator does
            pass
        return super().step(action)
