"""Camera images next to a state observation, and back to the state alone.

``AddCameraImages`` lets an image-based component (a reward classifier) look at a robot_rl env
whose agent observes the privileged ``state`` vector: it renders the backend's cameras into a
Dict observation ``{"state": ..., camera: image}``. ``KeepState`` turns such a Dict back into the
bare ``state`` Box, so the agent sees exactly what a plain ``obs="state"`` env gives it.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np


class AddCameraImages(gym.ObservationWrapper):
    """``state`` -> ``{"state": state, camera: uint8 image, ...}`` rendered by the env's backend."""

    def __init__(self, env: gym.Env, cameras: Sequence[str] | None = None) -> None:
        super().__init__(env)
        backend = getattr(env.unwrapped, "backend", None)
        if backend is None or not hasattr(backend, "render"):
            raise ValueError(f"AddCameraImages needs a robot_rl env with a rendering backend, got {env.unwrapped}")
        if not isinstance(env.observation_space, gym.spaces.Box):
            raise ValueError(f"AddCameraImages expects a state (Box) observation, got {env.observation_space}")
        available = dict(backend.spec.cameras)
        cameras = list(available) if cameras is None else list(cameras)
        missing = [c for c in cameras if c not in available]
        if missing:
            raise ValueError(f"cameras {missing} are not on this robot; it has {sorted(available)}")
        self.cameras, self._backend = cameras, backend
        images = {c: gym.spaces.Box(0, 255, shape=tuple(available[c].shape), dtype=np.uint8) for c in cameras}
        self.observation_space = gym.spaces.Dict({"state": env.observation_space, **images})

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        out = {"state": observation}
        for camera in self.cameras:
            out[camera] = np.array(self._backend.render(camera), dtype=np.uint8, copy=True)
        return out


class KeepState(gym.ObservationWrapper):
    """``{"state": state, ...}`` -> ``state`` (the Box of the ``state`` key)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or "state" not in space.spaces:
            raise ValueError(f"KeepState needs a Dict observation with a 'state' key, got {space}")
        self.observation_space = space.spaces["state"]

    def observation(self, observation: Any) -> np.ndarray:
        return observation["state"]
