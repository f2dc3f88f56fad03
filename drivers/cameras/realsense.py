"""Intel RealSense cameras (D400 family) through pyrealsense2's ``rs.pipeline``.

``pyrealsense2`` is an optional dependency (``pip install robot-rl[devices]``; it needs the system
library ``libusb-1.0-0``) and is imported only when a RealSense camera is listed or connected.

Colour is requested as ``rgb8`` (no conversion on the host). With ``depth=True`` the depth stream
is aligned to the colour image (``rs.align``) and scaled to metres with the depth sensor's
``depth_scale``. Exposure is set on the colour sensor: ``exposure_us=None`` turns auto exposure on,
a number turns it off and sets the exposure (the D400 colour sensor counts in steps of
``exposure_unit_us`` = 100 µs, range 1-10000 steps).

The device is found in an ``rs.context`` by serial; pass ``context`` to use another one (a context
with a recording loaded by ``context.load_device("session.db3")`` plays that recording back
through the very same pipeline code).

Example::

    print(list_realsense_devices())   # [RealSenseDeviceInfo(serial='0123...', name='Intel RealSense D435')]
    with RealSenseCamera("front", serial="0123...", width=640, height=480, fps=30, depth=True) as cam:
        frame = cam.read()            # frame.color uint8 (480, 640, 3), frame.depth_m float32 (480, 640)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from drivers.cameras.threaded import ThreadedCamera
from robot_rl.camera import CameraError, CaptureSpec, Frame


def import_pyrealsense2() -> Any:
    """``pyrealsense2``, or an ImportError that says how to install it."""
    try:
        import pyrealsense2 as rs
    except ImportError as err:
        raise ImportError(
            "RealSense cameras need pyrealsense2: pip install 'robot-rl[devices]' "
            "(and the system library libusb-1.0-0)"
        ) from err
    return rs


@dataclasses.dataclass(frozen=True)
class RealSenseDeviceInfo:
    """A connected (or loaded-from-file) RealSense device: its serial number and product name."""

    serial: str
    name: str


def list_realsense_devices(context: Any = None) -> list[RealSenseDeviceInfo]:
    """The RealSense devices in ``context`` (default: a fresh ``rs.context()``, i.e. USB)."""
    rs = import_pyrealsense2()
    context = rs.context() if context is None else context
    out = []
    for device in context.query_devices():
        serial = device.get_info(rs.camera_info.serial_number)
        name = device.get_info(rs.camera_info.name) if device.supports(rs.camera_info.name) else "?"
        out.append(RealSenseDeviceInfo(serial, name))
    return out


def find_device(context: Any, serial: str, camera: str) -> Any:
    """The device with ``serial`` in ``context``; the error lists the serials that are there."""
    rs = import_pyrealsense2()
    for device in context.query_devices():
        if device.get_info(rs.camera_info.serial_number) == serial:
            return device
    present = [f"{d.serial} ({d.name})" for d in list_realsense_devices(context)]
    raise CameraError(
        f"camera {camera!r}: RealSense serial {serial!r} is not connected; "
        f"connected: {', '.join(present) if present else 'none'}"
    )


def _sensor_with_stream(device: Any, stream: Any) -> Any:
    for sensor in device.query_sensors():
        if any(p.stream_type() == stream for p in sensor.get_stream_profiles()):
            return sensor
    return None


def configure_exposure(device: Any, exposure_us: float | None, unit_us: float = 100.0, camera: str = "?") -> None:
    """Set the colour sensor's exposure: auto when ``exposure_us`` is None, else manual.

    ``unit_us`` is the duration of one step of ``rs.option.exposure`` on the colour sensor
    (100 µs on D400). Read-only options (a played-back recording) are left alone when asking for
    auto exposure; asking for a manual exposure there is an error.
    """
    rs = import_pyrealsense2()
    sensor = _sensor_with_stream(device, rs.stream.color)
    if sensor is None:
        raise CameraError(f"camera {camera!r}: the device has no colour sensor")
    auto = rs.option.enable_auto_exposure
    if exposure_us is None:
        if sensor.supports(auto) and not sensor.is_option_read_only(auto):
            sensor.set_option(auto, 1)
        return
    if not sensor.supports(rs.option.exposure) or sensor.is_option_read_only(rs.option.exposure):
        raise CameraError(f"camera {camera!r}: the colour sensor's exposure cannot be set on this device")
    steps = round(exposure_us / unit_us)
    allowed = sensor.get_option_range(rs.option.exposure)
    if not allowed.min <= steps <= allowed.max:
        raise CameraError(
            f"camera {camera!r}: exposure_us={exposure_us} is outside the colour sensor's range "
            f"[{allowed.min * unit_us:g}, {allowed.max * unit_us:g}] us"
        )
    if sensor.supports(auto):
        sensor.set_option(auto, 0)
    sensor.set_option(rs.option.exposure, steps)


def depth_scale_m(device: Any) -> float:
    """Metres per unit of the device's ``z16`` depth values (``depth_units``)."""
    return float(device.first_depth_sensor().get_depth_scale())


class FrameConverter:
    """Turns a pyrealsense2 frameset into a :class:`~robot_rl.camera.Frame`.

    Used on framesets from ``rs.pipeline`` (and, in tests, from an ``rs.syncer`` fed by an
    ``rs.software_device``). With ``depth_scale_m`` given, depth is aligned to colour and scaled
    to metres; a frameset lacking a requested stream yields ``None``. Pixel data is copied, so
    librealsense gets its frame buffers back at once.
    """

    def __init__(self, depth_scale_m: float | None = None) -> None:
        rs = import_pyrealsense2()
        self.depth_scale_m = depth_scale_m
        self._align = rs.align(rs.stream.color) if depth_scale_m is not None else None

    def convert(self, frameset: Any, arrival_s: float) -> Frame | None:
        """``arrival_s``: host ``time.monotonic()`` seconds when the frameset arrived."""
        if self._align is not None:
            frameset = self._align.process(frameset)
        color = frameset.get_color_frame()
        if not color:
            return None
        depth_m = None
        if self._align is not None:
            depth = frameset.get_depth_frame()
            if not depth:
                return None
            depth_m = np.asanyarray(depth.get_data()).astype(np.float32) * np.float32(self.depth_scale_m)
        return Frame(
            color=np.array(np.asanyarray(color.get_data()), dtype=np.uint8, copy=True),
            timestamp_s=arrival_s,
            frame_number=int(color.get_frame_number()),
            depth_m=depth_m,
            device_timestamp_ms=float(color.get_timestamp()),
        )


class RealSenseCamera(ThreadedCamera):
    """A RealSense camera streaming colour (and optionally aligned depth) at ``fps``.

    Args:
        name: camera name (the observation key).
        serial: the device's serial number (from the rig file; see ``list_realsense_devices``).
        width, height: colour (and depth) stream size in pixels; must be a mode the device has.
        fps: frames per second of both streams.
        exposure_us: manual colour exposure in microseconds, or None for auto exposure.
        depth: also stream depth, aligned to colour, in metres (``Frame.depth_m``).
        max_age_s: ``read`` never returns a frame older than this (seconds).
        exposure_unit_us: microseconds per step of the colour sensor's exposure option.
        poll_timeout_s: how long one wait for frames blocks in the capture thread.
        context: the ``rs.context`` to find the device in (default: a fresh one, i.e. USB).
    """

    def __init__(
        self,
        name: str,
        serial: str,
        width: int,
        height: int,
        fps: float,
        exposure_us: float | None = None,
        depth: bool = False,
        max_age_s: float = 0.25,
        exposure_unit_us: float = 100.0,
        poll_timeout_s: float = 0.1,
        context: Any = None,
    ) -> None:
        super().__init__(CaptureSpec(name, height=height, width=width, fps=fps, depth=depth), max_age_s=max_age_s)
        if not isinstance(serial, str) or not serial:
            raise ValueError(f"camera {name!r}: serial must be a non-empty string, got {serial!r}")
        if exposure_us is not None and not exposure_us > 0:
            raise ValueError(f"camera {name!r}: exposure_us must be positive or None, got {exposure_us}")
        self.serial, self.exposure_us = serial, exposure_us
        self.exposure_unit_us, self.poll_timeout_s = float(exposure_unit_us), float(poll_timeout_s)
        self._context = context
        self._pipeline: Any = None
        self._converter: FrameConverter | None = None

    @property
    def source(self) -> str:
        return f"RealSense serial {self.serial}"

    def _open(self) -> None:
        rs = import_pyrealsense2()
        context = rs.context() if self._context is None else self._context
        device = find_device(context, self.serial, self.name)
        configure_exposure(device, self.exposure_us, self.exposure_unit_us, self.name)
        config = rs.config()
        config.enable_device(self.serial)
        spec, fps = self.spec, int(round(self.spec.fps))
        config.enable_stream(rs.stream.color, spec.width, spec.height, rs.format.rgb8, fps)
        if spec.depth:
            config.enable_stream(rs.stream.depth, spec.width, spec.height, rs.format.z16, fps)
        pipeline = rs.pipeline(context)
        try:
            profile = pipeline.start(config)
        except RuntimeError as err:
            raise CameraError(
                f"camera {self.name!r} ({self.source}): could not start {spec.width}x{spec.height} "
                f"@ {fps} fps{' with depth' if spec.depth else ''}: {err}"
            ) from err
        try:
            converter = FrameConverter(depth_scale_m(profile.get_device()) if spec.depth else None)
        except Exception:
            pipeline.stop()
            raise
        self._pipeline, self._converter = pipeline, converter

    def _grab(self) -> Frame | None:
        assert self._pipeline is not None and self._converter is not None
        ok, frameset = self._pipeline.try_wait_for_frames(int(self.poll_timeout_s * 1000))
        if not ok:
            return None
        return self._converter.convert(frameset, time.monotonic())

    def _release(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline, self._converter = None, None
