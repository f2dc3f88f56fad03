"""OpenCVCamera on MP4 files written by cv2.VideoWriter (frames carry their own index)."""

import os
import threading
import time

import numpy as np
import pytest

from camera_fakes import decode_index, write_index_video
from drivers.cameras import OpenCVCamera
from robot_rl.camera import Camera, CameraError, CameraTimeout


def _capture_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"camera-{name}"]


def test_reads_newest_frames_in_order(tmp_path):
    path = tmp_path / "index.mp4"
    write_index_video(path, frames=40, fps=40)
    camera = OpenCVCamera("wrist", str(path), width=96, height=64, fps=40)
    assert isinstance(camera, Camera) and camera.spec.shape == (64, 96, 3) and not camera.connected
    assert not _capture_threads("wrist"), "no thread may start before connect()"
    with camera:
        assert len(_capture_threads("wrist")) == 1
        frames = [camera.read(timeout_s=1.0)]
        for pause_s in (0.0, 0.2, 0.05):
            time.sleep(pause_s)
            frames.append(camera.read(timeout_s=1.0))
    assert not _capture_threads("wrist") and not camera.connected
    indices = [decode_index(f.color) for f in frames]
    assert indices == [f.frame_number for f in frames], "pixels and frame numbers disagree"
    assert indices == sorted(indices)
    assert indices[2] - indices[1] >= 4, f"after 0.2 s the newest frame must be returned: {indices}"
    assert camera.dropped_frames >= 3
    assert all(b.timestamp_s >= a.timestamp_s for a, b in zip(frames, frames[1:]))
    first = frames[0].color
    assert first.dtype == np.uint8 and first.shape == (64, 96, 3)
    red = first[56, 8].astype(int)  # the red patch: RGB order, not BGR
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    for frame, index in zip(frames, indices):  # the file's own clock: index / fps
        assert frame.device_timestamp_ms == pytest.approx(index * 1000 / 40, abs=1.0)


def test_stale_frame_raises_timeout_naming_camera_and_source(tmp_path):
    path = tmp_path / "slow.mp4"
    write_index_video(path, frames=3, fps=1)
    with OpenCVCamera("front", path, width=96, height=64, fps=1, max_age_s=0.05) as camera:
        camera.read(timeout_s=1.5)  # frame 0 (or 1 on a stalled machine); the next is 1 s later
        time.sleep(0.1)
        with pytest.raises(CameraTimeout) as err:
            camera.read(timeout_s=0.1)
    message = str(err.value)
    assert "'front'" in message and str(path) in message and "s old" in message
    assert err.value.last_frame_age_s >= 0.1 and isinstance(err.value, TimeoutError)


def test_end_of_file_surfaces_on_read(tmp_path):
    path = tmp_path / "short.mp4"
    write_index_video(path, frames=3, fps=50)
    camera = OpenCVCamera("front", str(path), width=96, height=64, fps=50)
    camera.connect()
    try:
        deadline = time.monotonic() + 3.0
        with pytest.raises(CameraError, match="capture failed") as err:
            while time.monotonic() < deadline:
                camera.read(timeout_s=0.5)
                time.sleep(0.02)
        assert isinstance(err.value.__cause__, EOFError) and "after 3 frames" in str(err.value)
    finally:
        camera.close()
    assert not _capture_threads("front")


def test_unopenable_source_is_named(tmp_path):
    missing = str(tmp_path / "no_such_video.mp4")
    camera = OpenCVCamera("front", missing, width=96, height=64, fps=30)
    with pytest.raises(CameraError, match="could not open source .*no_such_video.mp4"):
        camera.connect()
    assert not camera.connected and not _capture_threads("front")


def test_wrong_size_is_an_error_not_a_resize(tmp_path):
    path = tmp_path / "index.mp4"
    write_index_video(path, frames=2, fps=30)
    with pytest.raises(CameraError, match=r"delivers 96x64 frames, configured 640x480"):
        OpenCVCamera("front", str(path), width=640, height=480, fps=30).connect()


def test_read_before_connect_is_an_error():
    with pytest.raises(CameraError, match="not connected"):
        OpenCVCamera("front", 0, width=640, height=480, fps=30).read()


@pytest.mark.hardware
def test_real_webcam_streams():
    source = os.environ.get("ROBOT_RL_WEBCAM", "0")
    with OpenCVCamera("front", int(source) if source.isdigit() else source, 640, 480, 30) as camera:
        assert camera.read(timeout_s=3.0).color.shape == (480, 640, 3)
