"""MP4 writing with OpenCV (no ffmpeg binary needed)."""

from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np


class VideoWriter:
    """Writes RGB ``uint8 (H, W, 3)`` frames to an MP4 file, atomically.

    Frames go to ``<path>.tmp.mp4`` and the file is renamed into place on ``close()``, so an
    interrupted run never leaves a broken video under the final name.
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = pathlib.Path(path)
        self.fps = float(fps)
        self._tmp = self.path.with_name(self.path.stem + ".tmp.mp4")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def add(self, frame: np.ndarray, caption: str = "") -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise OSError(f"OpenCV could not open {self._tmp} for MP4 writing")
            self._size = size
        elif size != self._size:
            raise ValueError(f"frame size {size} differs from the video's {self._size}")
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if caption:
            cv2.putText(bgr, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        self._writer.write(bgr)
        self.frames += 1

    def close(self) -> pathlib.Path | None:
        """Finish the file; returns its path (None if no frame was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
