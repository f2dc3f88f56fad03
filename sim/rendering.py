"""Offscreen camera images from a MuJoCo scene, shared by every simulated backend.

One ``mujoco.Renderer`` per image size, made on first use (a GL context is costly) and closed
with the backend. Headless machines render with ``MUJOCO_GL=egl`` or ``osmesa``
(``robot_rl/__init__.py`` picks EGL when there is no display); a failure says how to fix it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import mujoco
import numpy as np


class OffscreenCameras:
    """The named cameras of one scene, rendered at any size.

    Args:
        names: the scene's cameras (``render`` refuses others, naming these).
        robot: what the scene is, for error messages ("the sim arm").
        default_size: ``(height, width)`` when ``render`` is given none.
    """

    def __init__(self, names: tuple[str, ...], robot: str, default_size: tuple[int, int]) -> None:
        self.names, self.robot, self.default_size = tuple(names), robot, default_size
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: str, height: int | None = None,
               width: int | None = None) -> np.ndarray:
        """RGB ``uint8 (H, W, 3)`` image of ``camera`` in the scene's current state."""
        if camera not in self.names:
            raise KeyError(f"unknown camera {camera!r}; {self.robot} has {list(self.names)}")
        size = (height or self.default_size[0], width or self.default_size[1])
        renderer = self._renderers.get(size)
        if renderer is None:
            try:
                renderer = self._renderers[size] = mujoco.Renderer(model, *size)
            except mujoco.FatalError as err:
                raise RuntimeError(
                    f"MuJoCo could not render offscreen (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {err}. "
                    "Set MUJOCO_GL=egl (needs libegl1 + Mesa) or MUJOCO_GL=osmesa (needs libosmesa6) "
                    "before mujoco is first imported; `make install` sets up both."
                ) from err
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def observed_cameras(config: Any, obs: str, options: dict) -> Any:
    """A sim backend config for ``obs``: with ``obs="state"`` no camera is rendered per step
    unless ``cameras`` was asked for (``render()`` still films any camera of the scene)."""
    if obs == "state" and "cameras" not in options:
        return dataclasses.replace(config, cameras=())
    return config
