"""RobotEnv: one backend + one task = a gymnasium env, stepping at a fixed control rate."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.backends.base import Backend, render_camera_names
from robot_rl.task import Task

OBS_MODES = ("state", "pixels")


def check_action(action: Any, shape: tuple[int, ...], what: str = "action") -> np.ndarray:
    """``action`` as a finite float32 array of ``shape``; a ValueError naming the shape otherwise
    (every env of robot_rl, batched ones too, refuses bad actions the same way)."""
    try:
        arr = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a float array of shape {shape}, got {action!r}") from err
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite (shape {shape}), got {arr}")
    return arr


class RobotEnv(gym.Env):
    """A gymnasium env composing one backend and one task (of the same robot family) at
    ``control_hz`` (default: the task's).

    Observations:
        ``obs="state"``: a flat float32 vector; ``state_layout`` names its parts (slices).
        ``obs="pixels"``: ``{"state": float32 proprioception, <camera>: uint8 (H, W, 3), ...}``.

    ``step`` returns ``terminated`` (the task ended the episode: success or failure) and
    ``truncated`` (the time limit, or the task's optional ``truncated(state)``: a reason outside
    the MDP, e.g. a car that must recover from a crash) separately. ``info`` holds ``success``,
    ``executed_action`` (the action the backend really executed after its safety limits; store
    this one), ``action_clipped`` and whatever the task's optional ``info(state)`` adds (metrics).

    The backend is connected on the first ``reset`` and closed by ``close``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        backend: Backend,
        task: Task,
        obs: str = "state",
        control_hz: float | None = None,
        render_mode: str | None = None,
        render_camera: str | None = None,
        render_size: tuple[int, int] = (256, 256),
    ) -> None:
        if obs not in OBS_MODES:
            raise ValueError(f"unknown obs mode {obs!r}; known: {list(OBS_MODES)}")
        if getattr(backend, "family", task.family) != task.family:
            raise ValueError(f"task {task.name!r} runs on the {task.family!r} family; this backend "
                             f"({type(backend).__name__}) is of the {backend.family!r} family")
        control_hz = getattr(task, "control_hz", 10.0) if control_hz is None else control_hz
        if not 0.1 <= control_hz <= 1000.0:
            raise ValueError(f"control_hz must be in [0.1, 1000], got {control_hz}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; known: ['rgb_array']")
        self.backend, self.task, self.obs_mode = backend, task, obs
        self.control_hz = float(control_hz)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.control_hz}
        spec = backend.spec
        # Any camera the backend can render (not only the observed ones); it says which exist.
        cameras = render_camera_names(spec)
        self.render_camera = render_camera or (cameras[0] if cameras else None)
        self.render_size = render_size
        self.state_layout = self._slices(task.state_layout(spec, obs))
        self.action_space = task.action_space(spec)
        self.observation_space = self._observation_space(spec)
        self._state = None
        self._steps = 0

    @staticmethod
    def _slices(layout: dict[str, int]) -> dict[str, slice]:
        out, start = {}, 0
        for name, size in layout.items():
            out[name] = slice(start, start + size)
            start += size
        return out

    def _observation_space(self, spec: Any) -> gym.spaces.Space:
        dim = sum(s.stop - s.start for s in self.state_layout.values())
        state = gym.spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)
        if self.obs_mode == "state":
            return state
        images = {name: gym.spaces.Box(0, 255, shape=cam.shape, dtype=np.uint8) for name, cam in spec.cameras.items()}
        return gym.spaces.Dict({"state": state, **images})

    @property
    def max_episode_steps(self) -> int:
        return self.task.max_episode_steps

    @property
    def state(self) -> Any:
        """The backend state read at the end of the last ``reset``/``step`` (privileged in sim)."""
        return self._state

    def observation_spec(self) -> dict[str, dict]:
        """JSON-able description of one observation (stored in episode files)."""
        if self.obs_mode == "state":
            spaces = {"state": self.observation_space}
        else:
            spaces = dict(self.observation_space.spaces)
        spec = {k: {"shape": list(s.shape), "dtype": str(s.dtype)} for k, s in spaces.items()}
        spec["state"]["parts"] = {k: [s.start, s.stop] for k, s in self.state_layout.items()}
        return spec

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if not self.backend.connected:
            self.backend.connect()
        self._state = self.task.reset(self.backend, self.np_random)
        self._steps = 0
        return self._observe(self._state), {"success": False}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = self._check_action(action)
        before = self._state
        command = self.task.action_to_command(action, before, self.backend.spec)
        executed = self.backend.command(command)
        self.backend.sync(1.0 / self.control_hz)
        self._state = state = self.backend.read_state()
        self._steps += 1
        executed_action = self.task.command_to_action(executed, before, self.backend.spec)
        terminated = bool(self.task.terminated(state))
        truncated = not terminated and (self._steps >= self.task.max_episode_steps or self._task_truncated(state))
        info = {
            "success": bool(self.task.success(state)),
            "executed_action": executed_action,
            "action_clipped": bool(np.max(np.abs(executed_action - action)) > 1e-4),
        }
        if hasattr(self.task, "info"):
            info.update(self.task.info(state))
        return self._observe(state), float(self.task.reward(state)), terminated, truncated, info

    def _task_truncated(self, state: Any) -> bool:
        """The task's own reason to cut the episode short (optional ``task.truncated``)."""
        return bool(self.task.truncated(state)) if hasattr(self.task, "truncated") else False

    def _check_action(self, action: Any) -> np.ndarray:
        return np.clip(check_action(action, self.action_space.shape), self.action_space.low, self.action_space.high)

    def _observe(self, state: Any) -> Any:
        vector = self.task.observe(state, self.obs_mode)
        if self.obs_mode == "state":
            return vector
        obs = {"state": vector}
        for name in self.backend.spec.cameras:
            obs[name] = np.array(self.backend.render(name), dtype=np.uint8, copy=True)
        return obs

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.render_camera is None:
            return None
        return self.backend.render(self.render_camera, *self.render_size)

    def close(self) -> None:
        self.backend.close()
        super().close()
