"""Camera frames <-> sensor_msgs Image / CompressedImage / CameraInfo, through rosbags' CDR."""

import cv2
import numpy as np
import pytest

from drivers.ros2.images import (CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, camera_info_message,
                                 compressed_image_from_message, compressed_image_message, image_from_message,
                                 image_message)
from drivers.ros2.msg_dicts import deserialize, serialize, typestore

RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)


def over_cdr(typename, message, distro="humble"):
    store = typestore(distro)
    return deserialize(store, typename, serialize(store, typename, message))


@pytest.mark.parametrize("distro", ["humble", "jazzy"])
def test_rgb8_frame_round_trips_over_cdr(distro):
    message = over_cdr(IMAGE, image_message(FRAME, 42, "front_optical"), distro)
    assert (message["height"], message["width"], message["encoding"], message["step"]) == (6, 7, "rgb8", 21)
    assert message["header"]["frame_id"] == "front_optical"
    np.testing.assert_array_equal(image_from_message(message), FRAME)


def padded(pixels: np.ndarray, encoding: str, pad: int) -> dict:
    """An Image dict of (H, W, C) ``pixels`` with ``pad`` junk bytes after every row."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    data = np.concatenate([rows, np.full((height, pad), 77, np.uint8)], axis=1).reshape(-1)
    message = image_message(np.zeros((height, width, 3), np.uint8), 0, "cam")
    return dict(message, encoding=encoding, step=rows.shape[1] + pad, data=data)


@pytest.mark.parametrize("encoding, to_wire", [
    ("rgb8", lambda f: f),
    ("bgr8", lambda f: f[:, :, ::-1]),
    ("rgba8", lambda f: np.concatenate([f, np.full(f.shape[:2] + (1,), 9, np.uint8)], axis=2)),
    ("bgra8", lambda f: np.concatenate([f[:, :, ::-1], np.full(f.shape[:2] + (1,), 9, np.uint8)], axis=2)),
])
def test_colour_encodings_with_row_padding(encoding, to_wire):
    message = over_cdr(IMAGE, padded(to_wire(FRAME), encoding, pad=5))
    np.testing.assert_array_equal(image_from_message(message), FRAME)


def test_mono8_is_replicated_to_rgb():
    grey = FRAME[:, :, 0]
    rgb = image_from_message(padded(grey[:, :, None], "mono8", pad=3))
    assert rgb.shape == (6, 7, 3) and all(np.array_equal(rgb[:, :, c], grey) for c in range(3))


def test_bad_images_are_refused():
    message = image_message(FRAME, 0, "cam")
    with pytest.raises(ValueError, match="unsupported encoding '16UC1'"):
        image_from_message(dict(message, encoding="16UC1"))
    with pytest.raises(ValueError, match="needs step >= 21 and 126 bytes of data, got step 21 and 125 bytes"):
        image_from_message(dict(message, data=message["data"][:-1]))
    with pytest.raises(ValueError, match="step >= 21"):
        image_from_message(dict(message, step=20))
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        image_message(FRAME.astype(np.float32), 0, "cam")


def test_png_is_lossless_and_jpeg_close_over_cdr():
    smooth = cv2.resize(FRAME, (64, 48), interpolation=cv2.INTER_LINEAR)
    png = over_cdr(COMPRESSED_IMAGE, compressed_image_message(smooth, 0, "cam", "png"))
    np.testing.assert_array_equal(compressed_image_from_message(png), smooth)
    jpeg = over_cdr(COMPRESSED_IMAGE, compressed_image_message(smooth, 0, "cam", "jpeg", jpeg_quality=95))
    decoded = compressed_image_from_message(jpeg)
    assert decoded.shape == smooth.shape and np.abs(decoded.astype(int) - smooth).mean() < 6


def test_compressed_image_written_by_another_encoder_in_bgr_order():
    """A ROS image_transport publisher encodes BGR data with OpenCV: we must return RGB."""
    ok, encoded = cv2.imencode(".png", FRAME[:, :, ::-1])
    assert ok
    message = {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": "cam"},
               "format": "bgr8; png compressed bgr8", "data": encoded.reshape(-1)}
    np.testing.assert_array_equal(compressed_image_from_message(over_cdr(COMPRESSED_IMAGE, message)), FRAME)


def test_bad_compressed_images_are_refused():
    message = compressed_image_message(FRAME, 0, "cam", "png")
    with pytest.raises(ValueError, match="could not decode 10 bytes"):
        compressed_image_from_message(dict(message, data=message["data"][:10]))
    with pytest.raises(ValueError, match="unsupported format 'tiff'"):
        compressed_image_from_message(dict(message, format="tiff"))


def test_camera_info_calibrated_and_not():
    info = over_cdr(CAMERA_INFO, camera_info_message(480, 640, 7, "cam", fx_px=600.0, cx_px=320.0, cy_px=240.0))
    assert info["k"].tolist() == [600.0, 0.0, 320.0, 0.0, 600.0, 240.0, 0.0, 0.0, 1.0]
    assert info["p"].reshape(3, 4)[:, :3].tolist() == info["k"].reshape(3, 3).tolist()
    assert info["r"].tolist() == np.eye(3).reshape(-1).tolist() and (info["height"], info["width"]) == (480, 640)
    raw = over_cdr(CAMERA_INFO, camera_info_message(48, 64, 7, "cam"))
    assert not raw["k"].any() and not raw["p"].any()  # uncalibrated, as CameraInfo defines it
    with pytest.raises(ValueError, match="positive"):
        camera_info_message(48, 64, 7, "cam", fx_px=-1.0)
