"""Record episodes to MP4: camera images side by side, with step, reward and interventions drawn on."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import cv2
import gymnasium as gym
import numpy as np

from robot_rl.video import VideoWriter

_WHITE, _RED, _BLACK = (255, 255, 255), (255, 40, 40), (0, 0, 0)


def side_by_side(images: Sequence[np.ndarray]) -> np.ndarray:
    """``uint8 (H, W, 3)`` images joined left to right; each is scaled to the first one's height."""
    height = images[0].shape[0]
    row = []
    for image in images:
        if image.shape[0] != height:
            width = max(1, round(image.shape[1] * height / image.shape[0]))
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        row.append(image)
    return np.concatenate(row, axis=1)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int], scale: float) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, _BLACK, 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def draw_overlay(image: np.ndarray, step: int, reward: float | None, intervention: bool) -> np.ndarray:
    """A copy of RGB ``image`` with ``step``, ``reward`` (top left) and INTERVENTION (bottom, red)."""
    out = np.array(image, dtype=np.uint8, copy=True)
    height = out.shape[0]
    scale = max(0.3, height / 400.0)
    line = max(10, round(30 * scale))
    caption = f"step {step}" if reward is None else f"step {step}  r {reward:+.3f}"
    _text(out, caption, (3, line), _WHITE, scale)
    if intervention:
        _text(out, "INTERVENTION", (3, height - 4), _RED, scale)
    return out


class RecordVideo(gym.Wrapper):
    """Writes every ``every_k_episodes``-th episode to ``<video_dir>/<name_prefix>-<episode>.mp4``.

    Each video frame is the chosen camera images of the observation side by side (or
    ``env.render()`` when ``cameras`` is None), with the step number, the step's reward and, when
    ``info["intervention"]`` is true, "INTERVENTION" drawn on. An episode of ``n`` steps gives
    ``n + 1`` frames (the reset observation first). A file is finished when its episode ends, on the
    next ``reset`` and on ``close``; it appears under its final name only when finished (written
    to a temporary name and renamed), so a crash never leaves a truncated file in its place.

    Args:
        env: the env to record.
        video_dir: directory for the MP4 files (created when the first video starts).
        cameras: observation keys of ``uint8 (H, W, 3)`` images, or None to use ``env.render()``.
        every_k_episodes: record episodes 0, k, 2k, ... (counted from the first reset).
        fps: video frame rate; default the env's ``metadata["render_fps"]`` (its control rate).
        name_prefix: file name prefix.
    """

    def __init__(
        self,
        env: gym.Env,
        video_dir: str | os.PathLike,
        cameras: Sequence[str] | None = None,
        every_k_episodes: int = 1,
        fps: float | None = None,
        name_prefix: str = "episode",
    ) -> None:
        super().__init__(env)
        if every_k_episodes < 1:
            raise ValueError(f"every_k_episodes must be >= 1, got {every_k_episodes}")
        self.cameras = None if cameras is None else list(cameras)
        self._check_sources(env)
        self.fps = float(fps if fps is not None else env.metadata.get("render_fps", 30))
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        self.video_dir = pathlib.Path(video_dir)
        self.every_k_episodes = int(every_k_episodes)
        self.name_prefix = name_prefix
        self.videos: list[pathlib.Path] = []
        self._episode = -1
        self._step = 0
        self._writer: VideoWriter | None = None

    def _check_sources(self, env: gym.Env) -> None:
        if self.cameras is None:
            if env.render_mode != "rgb_array":
                raise ValueError(
                    f"RecordVideo without cameras records env.render(), which needs render_mode='rgb_array' "
                    f"(got {env.render_mode!r}); or pass cameras=[...] to record observation images"
                )
            return
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict):
            raise TypeError(f"RecordVideo(cameras=...) needs a Dict observation space, got {space}")
        if not self.cameras:
            raise ValueError("RecordVideo: cameras is empty; pass None to record env.render()")
        for name in self.cameras:
            box = space.spaces.get(name)
            if box is None:
                raise KeyError(f"RecordVideo: no camera {name!r} in the observation; keys: {list(space.spaces)}")
            if not (box.dtype == np.uint8 and len(box.shape) == 3 and box.shape[2] == 3):
                raise ValueError(f"RecordVideo: {name!r} is not a uint8 (H, W, 3) image space: {box}")

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        self._finish()
        obs, info = self.env.reset(**kwargs)
        self._episode += 1
        self._step = 0
        if self._episode % self.every_k_episodes == 0:
            path = self.video_dir / f"{self.name_prefix}-{self._episode:06d}.mp4"
            self._writer = VideoWriter(path, self.fps)
            self._add(obs, None, bool(info.get("intervention", False)))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        if self._writer is not None:
            self._add(obs, float(reward), bool(info.get("intervention", False)))
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def _add(self, obs: Any, reward: float | None, intervention: bool) -> None:
        assert self._writer is not None
        if self.cameras is None:
            image = self.env.render()
            if image is None:
                raise RuntimeError("RecordVideo: env.render() returned None")
        else:
            image = side_by_side([np.asarray(obs[name]) for name in self.cameras])
        self._writer.add(draw_overlay(image, self._step, reward, intervention))

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            path = writer.close()
            if path is not None:
                self.videos.append(path)

    def close(self) -> None:
        try:
            self._finish()
        finally:
            super().close()
