"""Rig files: parsing, validation messages, and a rig whose camera is a real video file."""

import textwrap

import pytest

from camera_fakes import decode_index, write_index_video
from drivers.cameras import OpenCVCamera, RealSenseCamera, RigError, load_rig
from robot_rl.camera import Camera

EXAMPLE = """
[arm]                       # another driver's table: ignored here
ip = "172.16.0.2"

[cameras.front]
kind = "realsense"
serial = "035422070437"
width = 640
height = 480
fps = 30
exposure_us = 8000
depth = true
crop = [0, 480, 80, 560]
resize = [128, 128]

[cameras.wrist]
kind = "opencv"
source = "wrist.mp4"
width = 96
height = 64
fps = 40
max_age_s = 0.5
"""


def _write(tmp_path, text: str):
    path = tmp_path / "rig.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_example_rig_builds_unconnected_cameras(tmp_path):
    rig = load_rig(_write(tmp_path, EXAMPLE))
    front, wrist = rig.cameras["front"], rig.cameras["wrist"]
    assert isinstance(front, RealSenseCamera) and isinstance(wrist, OpenCVCamera)
    assert all(isinstance(c, Camera) and not c.connected for c in rig.cameras.values())
    assert front.serial == "035422070437" and front.exposure_us == 8000 and front.spec.depth
    assert front.spec.shape == (480, 640, 3) and front.spec.fps == 30
    assert wrist.source == str(tmp_path / "wrist.mp4")  # relative to the rig file
    assert wrist.max_age_s == 0.5
    assert rig.crop_resize == {"front": ((0, 480, 80, 560), (128, 128))}


def test_crop_without_resize_keeps_the_crop_size(tmp_path):
    text = EXAMPLE.replace("resize = [128, 128]\n", "")
    assert load_rig(_write(tmp_path, text)).crop_resize == {"front": ((0, 480, 80, 560), (480, 480))}


def test_rig_connects_and_reads_its_cameras(tmp_path):
    write_index_video(tmp_path / "wrist.mp4", frames=20, fps=40)
    text = EXAMPLE.split("[cameras.front]")[0] + "[cameras.wrist]" + EXAMPLE.split("[cameras.wrist]")[1]
    with load_rig(_write(tmp_path, text)) as rig:
        frame = rig.cameras["wrist"].read(timeout_s=1.0)
    assert decode_index(frame.color) == frame.frame_number
    assert not rig.cameras["wrist"].connected


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('kind = "realsense"', 'kind = "kinect"', r"camera 'front': field 'kind': unknown kind 'kinect'"),
        ('serial = "035422070437"\n', "", r"camera 'front': missing field 'serial'"),
        ('serial = "035422070437"', "serial = 35422070437", r"camera 'front': field 'serial' must be a quoted string"),
        ("crop = [0, 480, 80, 560]", "crop = [0, 480, 80, 700]", r"'front': field 'crop' \[0, 480, 80, 700\] must satisfy"),
        ("crop = [0, 480, 80, 560]", "crop = [0, 480, 80]", r"camera 'front': field 'crop' must be four integers"),
        ("resize = [128, 128]", "resize = [128, 0]", r"camera 'front': field 'resize' must be two positive integers"),
        ("exposure_us = 8000", "exposure = 8000", r"camera 'front': unknown field\(s\) \['exposure'\]"),
        ("width = 640", "width = 640.5", r"camera 'front': field 'width' must be a positive integer"),
        ('source = "wrist.mp4"', "source = -1", r"camera 'wrist': field 'source' must be"),
        ("depth = true", 'depth = "yes"', r"camera 'front': field 'depth' must be true or false"),
        ("[cameras.wrist]", "[cameras.state]", r"camera 'state': 'state' is reserved"),
    ],
)
def test_errors_name_file_camera_and_field(tmp_path, old, new, message):
    assert old in EXAMPLE
    path = _write(tmp_path, EXAMPLE.replace(old, new))
    with pytest.raises(RigError, match=message) as err:
        load_rig(path)
    assert str(path) in str(err.value)


def test_missing_cameras_table_and_bad_toml(tmp_path):
    with pytest.raises(RigError, match=r"rig.toml: no \[cameras.<name>\] tables"):
        load_rig(_write(tmp_path, "[arm]\nip = '1.2.3.4'\n"))
    with pytest.raises(RigError, match="not valid TOML"):
        load_rig(_write(tmp_path, "[cameras.front\n"))
