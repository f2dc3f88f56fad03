"""Tiny gymnasium envs for trainer tests (plain gymnasium, nothing of ours)."""

import gymnasium as gym
import numpy as np


class TinyReach(gym.Env):
    """A point in [-1, 1]^2 moves by 0.2 * action per step toward a random goal.

    Reward -distance; reaching within 0.1 terminates with success; 30 steps truncate.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None, nan_at_step=None, can_render=True):
        self.observation_space = gym.spaces.Box(-2.0, 2.0, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.render_mode = render_mode
        self.nan_at_step = nan_at_step
        self.can_render = can_render

    def _obs(self):
        obs = np.concatenate([self.pos, self.goal]).astype(np.float32)
        if self.nan_at_step is not None and self.t >= self.nan_at_step:
            obs[1] = np.nan
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        self.goal = self.np_random.uniform(-1, 1, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.clip(action, -1, 1), -1, 1)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        success = dist < 0.1
        return self._obs(), -dist, success, (not success) and self.t >= 30, {"success": success}

    def render(self):
        if not self.can_render:
            raise gym.error.DependencyNotInstalled("no renderer here")
        img = np.zeros((32, 32, 3), np.uint8)
        x, y = ((self.pos + 1) * 15.5).astype(int)
        img[y, x] = 255
        return img


gym.register("TinyReach-v0", entry_point=TinyReach)
