"""OpenCV cameras: USB/V4L2 webcams, video files and network streams via ``cv2.VideoCapture``.

A video file is played back in real time at the configured ``fps`` (frame ``i`` becomes
available ``i / fps`` seconds after ``connect()``), so a recorded session behaves like a live
camera; at the end of the file the next ``read()`` raises a :class:`~robot_rl.camera.CameraError`
caused by ``EOFError``. Live sources deliver at the device's own pace.

Example::

    with OpenCVCamera("wrist", source=0, width=640, height=480, fps=30) as cam:
        frame = cam.read(timeout_s=1.0)     # newest RGB frame, uint8 (480, 640, 3)
"""

from __future__ import annotations

import os
import time

import cv2

from drivers.cameras.threaded import ThreadedCamera
from robot_rl.camera import CameraError, CaptureSpec, Frame


def _is_file(source: int | str) -> bool:
    return isinstance(source, str) and "://" not in source and os.path.isfile(source)


class OpenCVCamera(ThreadedCamera):
    """A camera read through ``cv2.VideoCapture``; frames are converted BGR -> RGB.

    Args:
        name: camera name (the observation key).
        source: a device index (``0``), a device path (``/dev/video2``), a video file path, or a
            stream URL (``rtsp://…``).
        width, height: frame size in pixels; requested from live devices, and checked on
            ``connect()`` (a source delivering another size is an error, not a silent resize).
        fps: frames per second requested from a live device; the playback rate of a file.
        max_age_s: ``read`` never returns a frame older than this (seconds).
        api_preference: an OpenCV backend (``cv2.CAP_V4L2``, ``cv2.CAP_FFMPEG``; default any).
    """

    def __init__(
        self,
        name: str,
        source: int | str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        max_age_s: float = 0.25,
        api_preference: int = cv2.CAP_ANY,
    ) -> None:
        super().__init__(CaptureSpec(name, height=height, width=width, fps=fps), max_age_s=max_age_s)
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, (int, str)) or isinstance(source, bool):
            raise TypeError(f"camera {name!r}: source must be a device index or a path/URL string, got {source!r}")
        self._source = source
        self._is_file = False
        self.api_preference = api_preference
        self._cap: cv2.VideoCapture | None = None
        self._count = 0
        self._start_s = 0.0

    @property
    def source(self) -> str:
        return f"device index {self._source}" if isinstance(self._source, int) else str(self._source)

    def _open(self) -> None:
        cap = cv2.VideoCapture(self._source, self.api_preference)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.name!r}: OpenCV could not open source {self.source!r}")
        self._is_file = _is_file(self._source)
        if not self._is_file:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.spec.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.spec.height)
            cap.set(cv2.CAP_PROP_FPS, self.spec.fps)
        size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        if size != (self.spec.height, self.spec.width):
            cap.release()
            raise CameraError(
                f"camera {self.name!r} ({self.source}) delivers {size[1]}x{size[0]} frames, "
                f"configured {self.spec.width}x{self.spec.height} (width x height)"
            )
        self._cap, self._count, self._start_s = cap, 0, time.monotonic()

    def _grab(self) -> Frame | None:
        cap = self._cap
        assert cap is not None
        if self._is_file:
            # Real-time playback: frame i is due i / fps seconds after connect.
            delay_s = self._start_s + self._count / self.spec.fps - time.monotonic()
            if delay_s > 0:
                time.sleep(min(delay_s, 0.05))  # short, so close() is not kept waiting
                return None
        ok, bgr = cap.read()
        arrival_s = time.monotonic()
        if not ok:
            if self._is_file:
                raise EOFError(f"end of video file {self.source} after {self._count} frames")
            raise CameraError(f"camera {self.name!r}: reading {self.source} failed (unplugged?)")
        position_ms = cap.get(cv2.CAP_PROP_POS_MSEC) if self._is_file else None
        frame = Frame(
            color=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            timestamp_s=arrival_s,
            frame_number=self._count,
            device_timestamp_ms=position_ms,
        )
        self._count += 1
        return frame

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
