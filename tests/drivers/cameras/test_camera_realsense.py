"""RealSenseCamera through pyrealsense2 itself: a software device (frames, options, align) and a
recording of one played back through ``rs.pipeline`` (the camera's own connect/capture path)."""

import os
import threading
import time

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")

from camera_fakes import DEPTH_UNITS_M, PRODUCT, SERIAL, FakeD400, record_d400  # noqa: E402
from drivers.cameras.realsense import (  # noqa: E402
    FrameConverter,
    RealSenseCamera,
    RealSenseDeviceInfo,
    configure_exposure,
    depth_scale_m,
    list_realsense_devices,
)
from robot_rl.camera import Camera, CameraError, CameraTimeout  # noqa: E402

FPS, FRAMES = 30, 24


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("realsense") / "fake_d435.db3"
    record_d400(path, FRAMES, FPS)
    return path


@pytest.fixture
def playback(recording):
    """An ``rs.context`` holding the recording as a device (kept alive while the test runs)."""
    context = rs.context()
    device = context.load_device(str(recording))
    yield context
    del device


def test_software_device_frames_align_and_scale():
    fake = FakeD400(width=64, height=48, depth_size=(32, 24))
    sync = rs.syncer()
    fake.start(sync)
    try:
        converter = FrameConverter(depth_scale_m(fake.device))
        frames = []
        for n in range(4):
            fake.push(n)
            ok, frameset = sync.try_wait_for_frames(1000)
            assert ok
            frame = converter.convert(frameset, arrival_s=time.monotonic())
            if frame is not None:  # the syncer's first set may hold one stream only
                frames.append(frame)
    finally:
        fake.stop()
    assert converter.depth_scale_m == pytest.approx(DEPTH_UNITS_M)
    assert len(frames) >= 3
    for frame in frames:
        n = frame.frame_number
        assert frame.color.dtype == np.uint8 and frame.color.shape == (48, 64, 3)
        np.testing.assert_array_equal(frame.color[10, 20], [10 * n, 7, 200])  # RGB, not BGR
        assert frame.depth_m.dtype == np.float32 and frame.depth_m.shape == (48, 64)  # aligned to colour
        valid = frame.depth_m[frame.depth_m > 0]
        assert valid.size > 0.9 * frame.depth_m.size
        np.testing.assert_allclose(valid, (5000 + n) * DEPTH_UNITS_M, rtol=1e-5)
        assert frame.device_timestamp_ms == pytest.approx(n * 1000 / 30)


def test_exposure_is_set_on_the_colour_sensor():
    fake = FakeD400()
    configure_exposure(fake.device, exposure_us=5000)
    assert fake.color_sensor.get_option(rs.option.exposure) == 50  # 100 us steps
    assert fake.color_sensor.get_option(rs.option.enable_auto_exposure) == 0
    configure_exposure(fake.device, exposure_us=None)
    assert fake.color_sensor.get_option(rs.option.enable_auto_exposure) == 1
    with pytest.raises(CameraError, match=r"outside .* range \[100, 1e\+06\] us"):
        configure_exposure(fake.device, exposure_us=2e6, camera="front")


def test_pipeline_playback_gives_newest_frames_then_times_out(playback):
    camera = RealSenseCamera("front", SERIAL, 64, 48, FPS, depth=True, max_age_s=0.2, context=playback)
    assert isinstance(camera, Camera) and camera.spec.depth and camera.spec.shape == (48, 64, 3)
    assert not any(t.name == "camera-front" for t in threading.enumerate())  # nothing before connect
    with camera:
        first = camera.read(timeout_s=2.0)
        time.sleep(0.25)
        later = camera.read(timeout_s=1.0)
        n = first.frame_number
        np.testing.assert_array_equal(first.color[0, 0], [10 * n, 7, 200])
        valid = first.depth_m[first.depth_m > 0]  # align may leave a few holes (0 = no depth)
        assert first.depth_m.shape == (48, 64) and valid.size > 0.9 * first.depth_m.size
        np.testing.assert_allclose(valid, (5000 + n) * DEPTH_UNITS_M, rtol=1e-5)
        assert first.device_timestamp_ms == pytest.approx(n * 1000 / FPS)
        assert later.frame_number >= n + 4, "read() must return the newest frame, not the next queued one"
        assert later.timestamp_s > first.timestamp_s and camera.dropped_frames >= 3
        time.sleep(FRAMES / FPS)  # the recording ends: frames stop (later on a loaded machine: wait for it)
        deadline, err = time.monotonic() + 20, None
        while err is None and time.monotonic() < deadline:
            try:
                camera.read(timeout_s=0.1)
                time.sleep(0.1)
            except CameraTimeout as timeout:
                err = timeout
        assert err is not None, "frames kept coming 20 s after the recording's end"
    message = str(err)
    assert "'front'" in message and SERIAL in message and "s old" in message
    assert err.last_frame_age_s > 0.2 and isinstance(err, TimeoutError)
    assert not any(t.name == "camera-front" for t in threading.enumerate())


def test_unknown_serial_lists_the_connected_ones(playback):
    assert list_realsense_devices(playback) == [RealSenseDeviceInfo(SERIAL, PRODUCT)]
    camera = RealSenseCamera("front", "999999", 64, 48, FPS, context=playback)
    with pytest.raises(CameraError, match=rf"serial '999999' is not connected; connected: {SERIAL} \({PRODUCT}\)"):
        camera.connect()
    assert not camera.connected


def test_usb_context_without_cameras_says_none_connected():
    if list_realsense_devices():
        pytest.skip("a RealSense is plugged in")
    with pytest.raises(CameraError, match="connected: none"):
        RealSenseCamera("front", "123", 640, 480, 30).connect()


def test_manual_exposure_on_a_recording_is_refused(playback):
    camera = RealSenseCamera("front", SERIAL, 64, 48, FPS, exposure_us=8000, context=playback)
    with pytest.raises(CameraError, match="exposure cannot be set"):
        camera.connect()


def test_unsupported_mode_names_the_camera(playback):
    camera = RealSenseCamera("front", SERIAL, 1280, 720, FPS, context=playback)
    with pytest.raises(CameraError, match=r"'front'.*could not start 1280x720 @ 30 fps"):
        camera.connect()


@pytest.mark.hardware
def test_real_realsense_streams():
    serial = os.environ.get("ROBOT_RL_REALSENSE_SERIAL")
    if not serial:
        pytest.skip("set ROBOT_RL_REALSENSE_SERIAL to the camera's serial")
    with RealSenseCamera("front", serial, 640, 480, 30, depth=True) as camera:
        frame = camera.read(timeout_s=3.0)
    assert frame.color.shape == (480, 640, 3) and frame.depth_m.shape == (480, 640)
