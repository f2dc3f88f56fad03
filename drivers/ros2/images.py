"""Camera frames <-> ``sensor_msgs/Image``, ``CompressedImage`` and ``CameraInfo`` message dicts.

Our frames are ``uint8 (H, W, 3)`` RGB arrays. Pixel coordinates follow ROS (REP 104/CameraInfo):
the optical frame is x right, y down, z forward; ``fx_px, fy_px, cx_px, cy_px`` in pixels.
"""

from __future__ import annotations

import numpy as np

from drivers.ros2.msg_dicts import Message, header

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
#: image_transport's names for the two ways a frame travels, and the message type of each
IMAGE_TRANSPORTS = {"raw": IMAGE, "compressed": COMPRESSED_IMAGE}
CAMERAS_NAMESPACE = "cameras"  # our nodes publish camera <name> under cameras/<name>/
# encoding -> (channels, indices turning those channels into RGB)
ENCODINGS = {"rgb8": (3, [0, 1, 2]), "bgr8": (3, [2, 1, 0]), "rgba8": (4, [0, 1, 2]), "bgra8": (4, [2, 1, 0]),
             "mono8": (1, [0, 0, 0])}


def image_message(frame_rgb: np.ndarray, time_ns: int, frame_id: str) -> Message:
    """A ``sensor_msgs/Image`` dict (encoding ``rgb8``, rows unpadded) of a ``uint8 (H, W, 3)`` RGB frame."""
    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"image_message needs a uint8 (H, W, 3) RGB frame, got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    return {"header": header(time_ns, frame_id), "height": height, "width": width, "encoding": "rgb8",
            "is_bigendian": 0, "step": width * 3, "data": np.ascontiguousarray(frame).reshape(-1).copy()}


def image_from_message(msg: Message) -> np.ndarray:
    """The ``uint8 (H, W, 3)`` RGB frame of a ``sensor_msgs/Image`` dict.

    Encodings rgb8, bgr8, rgba8, bgra8 (alpha dropped) and mono8 (grey replicated); row padding
    (``step`` above ``width * channels``) is skipped. Anything else, or too little data, raises ValueError.
    """
    encoding = msg["encoding"]
    if encoding not in ENCODINGS:
        raise ValueError(f"{IMAGE}: unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    channels, to_rgb = ENCODINGS[encoding]
    height, width, step = int(msg["height"]), int(msg["width"]), int(msg["step"])
    data = np.asarray(msg["data"], dtype=np.uint8).reshape(-1)
    row_bytes = width * channels
    if step < row_bytes or data.size < step * height:
        raise ValueError(f"{IMAGE}: {height}x{width} {encoding} needs step >= {row_bytes} and "
                         f"{step * height} bytes of data, got step {step} and {data.size} bytes")
    rows = data[: step * height].reshape(height, step)[:, :row_bytes]
    return np.ascontiguousarray(rows.reshape(height, width, channels)[:, :, to_rgb])


def compressed_image_from_message(msg: Message) -> np.ndarray:
    """The ``uint8 (H, W, 3)`` RGB frame of a ``sensor_msgs/CompressedImage`` dict (jpeg or png, via OpenCV)."""
    import cv2

    fmt = str(msg["format"]).lower()
    if not any(kind in fmt for kind in ("jpeg", "jpg", "png")):
        raise ValueError(f"{COMPRESSED_IMAGE}: unsupported format {msg['format']!r}; supported: jpeg, png")
    data = np.asarray(msg["data"], dtype=np.uint8).reshape(-1)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"{COMPRESSED_IMAGE}: could not decode {data.size} bytes as {msg['format']!r}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def compressed_image_message(frame_rgb: np.ndarray, time_ns: int, frame_id: str, fmt: str = "jpeg",
                             jpeg_quality: int = 90) -> Message:
    """A ``sensor_msgs/CompressedImage`` dict of a ``uint8 (H, W, 3)`` RGB frame (``fmt`` "jpeg" or "png")."""
    import cv2

    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or fmt not in ("jpeg", "png"):
        raise ValueError(f"compressed_image_message needs a uint8 (H, W, 3) frame and fmt jpeg/png, "
                         f"got {frame.dtype} {frame.shape}, {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", frame[:, :, ::-1], params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {fmt}")
    return {"header": header(time_ns, frame_id), "format": fmt, "data": encoded.reshape(-1)}


def camera_topics(camera: str, image_transport: str = "raw") -> tuple[str, str]:
    """The relative ``(image topic, camera_info topic)`` of a camera, as our nodes publish them and
    image_transport names them: ``cameras/<camera>/image_raw`` (``sensor_msgs/Image``), with
    ``/compressed`` appended for ``sensor_msgs/CompressedImage``; ``cameras/<camera>/camera_info``."""
    check_image_transport(image_transport)
    base = f"{CAMERAS_NAMESPACE}/{camera}"
    return (f"{base}/image_raw" + ("/compressed" if image_transport == "compressed" else ""),
            f"{base}/camera_info")


def optical_frame(camera: str) -> str:
    """The frame id in a camera's headers (REP 103 optical frame: x right, y down, z forward)."""
    return f"{camera}_optical_frame"


def check_image_transport(image_transport: str) -> str:
    """``image_transport`` if it is one of :data:`IMAGE_TRANSPORTS`, else a ValueError listing them."""
    if image_transport not in IMAGE_TRANSPORTS:
        raise ValueError(f"unknown image_transport {image_transport!r}; known: {sorted(IMAGE_TRANSPORTS)}")
    return image_transport


def frame_message(frame_rgb: np.ndarray, time_ns: int, frame_id: str, image_transport: str = "raw") -> Message:
    """A frame as the message of ``image_transport``: ``raw`` an Image (rgb8), ``compressed`` a jpeg CompressedImage."""
    if check_image_transport(image_transport) == "raw":
        return image_message(frame_rgb, time_ns, frame_id)
    return compressed_image_message(frame_rgb, time_ns, frame_id, "jpeg")


def frame_from_message(msg: Message, image_transport: str = "raw") -> np.ndarray:
    """The ``uint8 (H, W, 3)`` RGB frame of an Image (``raw``) or CompressedImage (``compressed``) dict."""
    if check_image_transport(image_transport) == "raw":
        return image_from_message(msg)
    return compressed_image_from_message(msg)


def camera_info_message(height: int, width: int, time_ns: int, frame_id: str, fx_px: float | None = None,
                        fy_px: float | None = None, cx_px: float | None = None, cy_px: float | None = None,
                        distortion: tuple[float, ...] = ()) -> Message:
    """A ``sensor_msgs/CameraInfo`` dict of a pinhole camera.

    Without intrinsics the camera is uncalibrated: ``k``, ``p`` all zero, as the message defines.
    ``fy_px`` defaults to ``fx_px``, the principal point to the image centre. ``distortion``: the
    ``plumb_bob`` coefficients ``(k1, k2, t1, t2, k3)``, or none.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"camera_info_message: height and width must be positive, got {height}x{width}")
    k, p = np.zeros(9), np.zeros(12)
    if fx_px is not None:
        fy = fx_px if fy_px is None else fy_px
        cx = (width - 1) / 2.0 if cx_px is None else cx_px
        cy = (height - 1) / 2.0 if cy_px is None else cy_px
        if not all(np.isfinite([fx_px, fy, cx, cy])) or fx_px <= 0 or fy <= 0:
            raise ValueError(f"camera_info_message: focal lengths must be positive and finite, got {fx_px}, {fy}")
        k[:] = [fx_px, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        p[:] = [fx_px, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return {"header": header(time_ns, frame_id), "height": int(height), "width": int(width),
            "distortion_model": "plumb_bob", "d": np.asarray(distortion, dtype=np.float64),
            "k": k, "r": np.eye(3).reshape(-1), "p": p, "binning_x": 0, "binning_y": 0,
            "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}}
