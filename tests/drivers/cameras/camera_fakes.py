"""Fake camera hardware at the library boundary, for the camera driver tests.

* :func:`write_index_video`: an MP4 written with ``cv2.VideoWriter`` whose frames carry their own
  index as 8 black/white blocks (robust to MP4 compression), plus a pure-red patch to check the
  RGB channel order; :func:`decode_index` reads the index back.
* :class:`FakeD400`: an ``rs.software_device`` with a colour sensor (``rgb8``, writable exposure
  options, 100 us steps like a D400) and a depth sensor (``z16``, ``depth_units``), fed frame by
  frame; :func:`record_d400` records one to a ``.db3`` file that ``rs.pipeline`` can play back.

Frame ``n`` of a FakeD400 has colour ``(10 n, 7, 200)`` (RGB) and depth ``5000 + n`` units.
"""

from __future__ import annotations

import gc
import time

import cv2
import numpy as np

BITS = 8
SERIAL, PRODUCT = "123456", "Fake D435"
DEPTH_UNITS_M = 0.0001


def index_image(index: int, height: int, width: int) -> np.ndarray:
    """RGB frame encoding ``index``: top half = 8 blocks (white = bit set), bottom-left red."""
    image = np.full((height, width, 3), 64, np.uint8)
    block = width // BITS
    for bit in range(BITS):
        if index >> bit & 1:
            image[: height // 2, bit * block : (bit + 1) * block] = 255
        else:
            image[: height // 2, bit * block : (bit + 1) * block] = 0
    image[height * 3 // 4 :, : width // 4] = (255, 0, 0)
    return image


def decode_index(image: np.ndarray) -> int:
    """The index :func:`index_image` encoded (block means thresholded at mid-grey)."""
    height, width = image.shape[:2]
    block = width // BITS
    value = 0
    for bit in range(BITS):
        # Inner part of the block only: MP4 blurs the block edges.
        patch = image[2 : height // 2 - 2, bit * block + 2 : (bit + 1) * block - 2]
        value |= int(patch.mean() > 127) << bit
    return value


def write_index_video(path, frames: int, fps: float, height: int = 64, width: int = 96) -> None:
    """An MP4 of ``frames`` index frames at ``fps`` (written through OpenCV, BGR on disk)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write MP4 to {path}"
    for i in range(frames):
        writer.write(cv2.cvtColor(index_image(i, height, width), cv2.COLOR_RGB2BGR))
    writer.release()


def _intrinsics(rs, width: int, height: int, focal_px: float):
    intr = rs.intrinsics()
    intr.width, intr.height = width, height
    intr.ppx, intr.ppy = width / 2, height / 2
    intr.fx = intr.fy = focal_px
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    return intr


def _stream(rs, kind, uid: int, width: int, height: int, fps: int, fmt, bpp: int, focal_px: float):
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = kind, 0, uid
    stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = width, height, fps, bpp, fmt
    stream.intrinsics = _intrinsics(rs, width, height, focal_px)
    return stream


def _range(rs, low: float, high: float, default: float):
    # Set the fields one by one: pyrealsense2 2.59's option_range(min, max, step, default)
    # constructor stores step and default swapped.
    out = rs.option_range()
    out.min, out.max, out.step, out.default = low, high, 1.0, default
    return out


class FakeD400:
    """A software RealSense: colour ``width x height`` rgb8, depth ``depth_size`` z16, at ``fps``.

    Depth intrinsics scale with its size (same field of view) and the depth-to-colour
    extrinsics are the identity, so aligned depth is a resampled copy of the depth image.
    """

    def __init__(
        self, width: int = 64, height: int = 48, fps: int = 30, depth_size: tuple[int, int] | None = None
    ) -> None:
        import pyrealsense2 as rs

        self.rs, self.width, self.height, self.fps = rs, width, height, fps
        self.depth_w, self.depth_h = depth_size or (width, height)
        self.device = rs.software_device()
        self.color_sensor = self.device.add_sensor("RGB Camera")
        self.depth_sensor = self.device.add_sensor("Stereo Module")
        self.color_profile = self.color_sensor.add_video_stream(
            _stream(rs, rs.stream.color, 0, width, height, fps, rs.format.rgb8, 3, 50.0)
        ).as_video_stream_profile()
        depth_focal_px = 50.0 * self.depth_w / width  # same field of view as colour
        self.depth_profile = self.depth_sensor.add_video_stream(
            _stream(rs, rs.stream.depth, 1, self.depth_w, self.depth_h, fps, rs.format.z16, 2, depth_focal_px)
        ).as_video_stream_profile()
        identity = rs.extrinsics()
        identity.rotation, identity.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
        self.depth_profile.register_extrinsics_to(self.color_profile, identity)
        self.color_sensor.add_option(rs.option.exposure, _range(rs, 1, 10000, 156), True)
        self.color_sensor.add_option(rs.option.enable_auto_exposure, _range(rs, 0, 1, 1), True)
        self.depth_sensor.add_read_only_option(rs.option.depth_units, DEPTH_UNITS_M)
        self.device.register_info(rs.camera_info.serial_number, SERIAL)
        self.device.register_info(rs.camera_info.name, PRODUCT)
        self.device.create_matcher(rs.matchers.default)

    def start(self, sink) -> None:
        """Stream both sensors into ``sink`` (an ``rs.syncer``)."""
        self.color_sensor.open(self.color_profile)
        self.depth_sensor.open(self.depth_profile)
        self.color_sensor.start(sink)
        self.depth_sensor.start(sink)

    def stop(self) -> None:
        for sensor in (self.color_sensor, self.depth_sensor):
            sensor.stop()
            sensor.close()

    def push(self, n: int) -> None:
        """Frame ``n`` on both sensors, device time ``n / fps`` seconds."""
        color = np.empty((self.height, self.width, 3), np.uint8)
        color[:] = (10 * n % 256, 7, 200)
        depth = np.full((self.depth_h, self.depth_w), 5000 + n, np.uint16)
        self._send(self.color_sensor, self.color_profile, color, 3, n)
        self._send(self.depth_sensor, self.depth_profile, depth, 2, n)

    def _send(self, sensor, profile, pixels: np.ndarray, bpp: int, n: int) -> None:
        rs = self.rs
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = pixels, bpp, pixels.shape[1] * bpp
        frame.timestamp, frame.domain = n * 1000.0 / self.fps, rs.timestamp_domain.hardware_clock
        frame.frame_number, frame.profile = n, profile
        if bpp == 2:
            frame.depth_units = DEPTH_UNITS_M
        sensor.on_video_frame(frame)


def record_d400(path, frames: int, fps: int = 30, width: int = 64, height: int = 48) -> None:
    """Record ``frames`` FakeD400 frames, pushed in real time at ``fps``, to ``path`` (``.db3``).

    Playback through ``rs.pipeline`` follows the recorded arrival times, hence the pacing. The
    recorder finishes the file when it is destroyed, so everything is dropped before returning.
    """
    import pyrealsense2 as rs

    def _record() -> None:
        fake = FakeD400(width, height, fps)
        recorder = rs.recorder(str(path), fake.device)
        sync = rs.syncer()
        fake.start(sync)
        start = time.monotonic()
        for n in range(frames):
            time.sleep(max(0.0, start + n / fps - time.monotonic()))
            fake.push(n)
            sync.try_wait_for_frames(1000)
        fake.stop()
        del recorder

    _record()
    gc.collect()
