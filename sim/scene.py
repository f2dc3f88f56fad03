"""What every MuJoCo backend shares: a spec known before ``connect()``, the model compiled on
``connect()``, the offscreen cameras, ``close()`` always, and a clear error when not connected.

A backend subclasses :class:`MujocoScene` and writes ``_compile()`` (its MJCF -> ``MjModel``) and
``_bind()`` (look up ids and make the views its control loop reads, once per connect); the
family's ``read_state``/``command``/``sync``/``stop`` are its own.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from robot_rl.backends.base import ConnectOnEnter
from sim.rendering import OffscreenCameras


class MujocoScene(ConnectOnEnter):
    """A MuJoCo model and data, connected explicitly (nothing happens in ``__init__``).

    Args:
        spec: the backend's spec (cameras included), available before ``connect()``.
        cameras: the scene's offscreen cameras (:class:`~sim.rendering.OffscreenCameras`).
    """

    def __init__(self, spec: Any, cameras: OffscreenCameras) -> None:
        self._spec = spec
        self._cameras = cameras
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None

    @property
    def spec(self) -> Any:
        return self._spec

    @property
    def connected(self) -> bool:
        return self.data is not None

    def connect(self) -> None:
        if self.connected:
            return
        self.model = self._compile()
        self.data = mujoco.MjData(self.model)
        self._bind()

    def close(self) -> None:
        self._cameras.close()
        self.model = self.data = None

    def _compile(self) -> mujoco.MjModel:
        raise NotImplementedError

    def _bind(self) -> None:
        """Ids and views into ``self.model``/``self.data`` (after every connect)."""

    def _require(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.data is None:
            raise RuntimeError(f"{type(self).__name__} is not connected: call connect() or use it in a `with` block")
        return self.model, self.data

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """RGB ``uint8 (H, W, 3)`` image of ``camera`` (default size from the config)."""
        m, d = self._require()
        return self._cameras.render(m, d, camera, height, width)
