"""The Camera contract: what a camera delivers and how it is read, known without a device.

A camera is opened explicitly (``connect()`` or a ``with`` block) and closed always. Its
``spec`` (name, image size, frame rate, whether it has depth) is known before ``connect()``, so
a backend can declare its image observations while no device is plugged in.

``read(timeout_s)`` returns the *newest* frame. A policy running at 10 Hz on a 30 fps camera
therefore never acts on a frame queued a second ago: frames it did not read are dropped (and
counted). A frame older than the camera's ``max_age_s`` is never returned; if no fresh frame
arrives within ``timeout_s``, ``read`` raises :class:`CameraTimeout` naming the camera, its
device (serial or path) and the age of the last frame.

Conventions: colour images are ``uint8 (H, W, 3)`` RGB; depth is ``float32 (H, W)`` in metres,
aligned pixel-for-pixel to the colour image, ``0.0`` where the sensor has no depth; host times are
``time.monotonic()`` seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np

from robot_rl.backends.base import CameraSpec


class CameraError(RuntimeError):
    """A camera could not be opened, configured or read (the message names the camera)."""


class CameraTimeout(CameraError, TimeoutError):
    """No frame fresher than ``max_age_s`` arrived within the read timeout.

    Attributes:
        camera: the camera's name.
        source: its device (``serial 123…``, a file path, a URL).
        last_frame_age_s: age of the newest frame at the time of the error (None: no frame yet).
    """

    def __init__(self, message: str, camera: str, source: str, last_frame_age_s: float | None) -> None:
        super().__init__(message)
        self.camera, self.source, self.last_frame_age_s = camera, source, last_frame_age_s


@dataclasses.dataclass(frozen=True)
class CaptureSpec(CameraSpec):
    """A camera's capture settings; it *is* a :class:`CameraSpec` (colour image structure).

    Attributes:
        fps: frames per second the device is asked to deliver.
        depth: whether frames carry ``depth_m`` (``float32 (height, width)``, metres).
    """

    fps: float = 30.0
    depth: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fps > 0:
            raise ValueError(f"camera {self.name!r}: fps must be positive, got {self.fps}")

    @property
    def image(self) -> CameraSpec:
        """The plain colour-image spec (what a backend lists in its ``cameras``)."""
        return CameraSpec(self.name, self.height, self.width)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        color: ``uint8 (H, W, 3)`` RGB image.
        timestamp_s: host ``time.monotonic()`` seconds when the frame reached this process.
        frame_number: the device's frame counter (or the count of frames read from a file/stream).
        depth_m: ``float32 (H, W)`` depth in metres aligned to ``color`` (0.0 = no data), or None.
        device_timestamp_ms: the device's own timestamp in milliseconds (its clock, not the
            host's), or None where the device gives none.
    """

    color: np.ndarray
    timestamp_s: float
    frame_number: int
    depth_m: np.ndarray | None = None
    device_timestamp_ms: float | None = None


@runtime_checkable
class Camera(Protocol):
    """A colour (optionally depth) camera behind a capture thread.

    ``name``, ``spec`` and ``source`` are available before ``connect()``; no thread or device
    handle exists until then. ``read`` raises :class:`CameraError` when not connected or when the
    capture failed (the capture thread's exception is its ``__cause__``).
    """

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> CaptureSpec: ...

    @property
    def source(self) -> str:
        """Where frames come from, for messages: ``serial 0123…``, a path, a URL, a device index."""
        ...

    @property
    def connected(self) -> bool: ...

    @property
    def dropped_frames(self) -> int:
        """Frames captured but replaced by a newer one before any ``read`` saw them."""
        ...

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def read(self, timeout_s: float = 1.0) -> Frame:
        """The newest frame no older than ``max_age_s``; waits up to ``timeout_s`` seconds."""
        ...

    def __enter__(self) -> "Camera": ...

    def __exit__(self, *exc: object) -> None: ...
