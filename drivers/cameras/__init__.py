"""Camera drivers behind the :class:`robot_rl.camera.Camera` contract.

* :class:`OpenCVCamera`: webcams, video files, network streams (``cv2.VideoCapture``);
* :class:`RealSenseCamera`: Intel RealSense colour + aligned depth (pyrealsense2, imported lazily);
* :func:`load_rig`: the cameras of one rig, with their crop/resize settings, from a TOML file.

Each camera captures in its own thread (started by ``connect()``) and ``read()`` returns the
newest frame.
"""

from drivers.cameras.opencv import OpenCVCamera
from drivers.cameras.realsense import RealSenseCamera, RealSenseDeviceInfo, list_realsense_devices
from drivers.cameras.rig import CameraConfig, Rig, RigError, load_rig, parse_rig
from drivers.cameras.threaded import LatestFrame, ThreadedCamera

__all__ = [
    "CameraConfig",
    "LatestFrame",
    "OpenCVCamera",
    "RealSenseCamera",
    "RealSenseDeviceInfo",
    "Rig",
    "RigError",
    "ThreadedCamera",
    "list_realsense_devices",
    "load_rig",
    "parse_rig",
]
