"""Cameras through ROS: a RobotBridge renders the MuJoCo car's cameras and publishes them (Image or jpeg
CompressedImage + CameraInfo) over CdrLoopback (real CDR bytes); a RosCarBackend subscribes, keeps the newest
frame, resizes it to its declared size, refuses a stale one naming the topic, and car_lap with obs="pixels"
runs on it; the camera tables of a rig file."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.ros2.bridge import RobotBridge
from drivers.ros2.images import CAMERA_INFO, IMAGE, frame_from_message, frame_message, image_message
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend import RosCarBackend, make_car
from drivers.ros2.ros_backend_config import RosBackendConfig, RosCameraConfig, RosRigError
from drivers.ros2.transport import CdrLoopback
from robot_rl.backends.car import CarCommand
from robot_rl.camera import CameraTimeout
from robot_rl.env import RobotEnv
from robot_rl.wrappers.images import crop_resize
from sim.car.backend import MujocoCar, MujocoCarConfig
from tasks.car.course import save_course
from tasks.car.lap import CarLap
from tasks.car.lap_arrays import CarLapConfig

HEIGHT, WIDTH = 48, 64


@pytest.fixture(scope="module")
def sim_car():
    with MujocoCar(MujocoCarConfig(cameras=("front",), image_height=HEIGHT, image_width=WIDTH)) as car:
        car.start_pose = (car.read_state().pos_m.copy(), car.read_state().yaw_rad)
        yield car


def bridged(sim, period_s: float = 0.01, **options) -> tuple[CdrLoopback, RobotBridge]:
    sim.set_pose(*sim.start_pose)
    loop = CdrLoopback()
    bridge = RobotBridge(sim, loop, command_timeout_s=10.0, **options)
    bridge.timer = bridge.run_every(period_s)
    return loop, bridge


@pytest.mark.parametrize("image_transport", ["raw", "compressed"])
def test_mujoco_frames_reach_the_ros_car_through_cdr(sim_car, image_transport):
    loop, bridge = bridged(sim_car, topics_prefix="/car1", cameras=("front", "chase"), image_transport=image_transport,
                           camera_period_s=0.05)
    infos = []
    loop.subscribe("/car1/cameras/chase/camera_info", CAMERA_INFO, infos.append, qos_for("camera_info"))
    cameras = {"front": RosCameraConfig(height=HEIGHT, width=WIDTH, image_transport=image_transport),
               "chase": {"height": 24, "width": 32, "image_transport": image_transport}}  # resized from 48x64
    with RosCarBackend(RosBackendConfig(spec=sim_car.spec, topics_prefix="/car1", cameras=cameras), loop) as car:
        shapes = {name: cam.shape for name, cam in car.spec.cameras.items()}
        assert shapes == {"front": (48, 64, 3), "chase": (24, 32, 3)}
        first = car.render("front")
        for _ in range(5):
            car.command(CarCommand(steering_rad=0.3, speed_m_s=1.5))
            car.sync(0.05)
        bridge.timer.cancel()
        sent = bridge.publish_cameras()  # what the bridge rendered and published last, the sim standing still
        front, chase = car.render("front"), car.render("chase")
        np.testing.assert_array_equal(sent["front"], sim_car.render("front"))
        if image_transport == "raw":
            np.testing.assert_array_equal(front, sent["front"])
            np.testing.assert_array_equal(chase, crop_resize(sent["chase"], None, (24, 32)))
            np.testing.assert_array_equal(car.render("front", 24, 32), crop_resize(front, None, (24, 32)))
        else:  # the jpeg bytes arrived unchanged: decoded as here, and close to the rendered frame
            jpeg = frame_from_message(frame_message(sent["front"], 0, "x", "compressed"), "compressed")
            np.testing.assert_array_equal(front, jpeg)
            assert np.abs(front.astype(int) - sent["front"]).mean() < 12.0
            assert np.abs(chase.astype(int) - crop_resize(sent["chase"], None, (24, 32))).mean() < 12.0
        assert front.std() > 10.0 and np.abs(front.astype(int) - first).mean() > 2.0  # the newest, not the first
        suffix = "/compressed" if image_transport == "compressed" else ""
        assert car.cameras.topics["chase"] == "/car1/cameras/chase/image_raw" + suffix
    assert (infos[-1]["height"], infos[-1]["width"], infos[-1]["header"]["frame_id"]) == (48, 64, "chase_optical_frame")
    assert bridge.stats.frames_published == 2 * len(infos) and 6 <= len(infos) <= 12  # 20 Hz, not at every step


def test_a_stale_frame_is_an_error_naming_the_topic(sim_car):
    loop, bridge = bridged(sim_car, cameras=("front",), camera_period_s=1.0)
    cameras = {"front": {"height": HEIGHT, "width": WIDTH, "max_age_s": 0.3}}
    config = RosBackendConfig(spec=sim_car.spec, cameras=cameras)
    with RosCarBackend(config, loop) as car:
        car.render("front")
        car.sync(0.25)
        car.render("front")  # still young enough
        car.sync(0.1)
        with pytest.raises(CameraTimeout, match=r"camera 'front': no frame on cameras/front/image_raw for 0.3\d+ s") \
                as stale:
            car.render("front")
        assert stale.value.source == "cameras/front/image_raw" and stale.value.last_frame_age_s > 0.3
        car.read_state()  # the state topics speak on
        car.sync(0.7)
        car.render("front")  # the next frame, 1 s after the first
        with pytest.raises(KeyError, match=r"unknown camera 'rear'.*\['front'\]"):
            car.render("rear")


def test_observed_cameras_are_awaited_at_connect_rendered_ones_are_not(sim_car):
    loop, bridge = bridged(sim_car)  # publishes no camera
    cameras = {"front": {"height": HEIGHT, "width": WIDTH}}
    observed = RosCarBackend(RosBackendConfig(spec=sim_car.spec, connect_timeout_s=0.2, cameras=cameras), loop)
    with pytest.raises(TimeoutError, match=r"no message on \['cameras/front/image_raw'\] within 0.2 s"):
        observed.connect()
    with RosCarBackend(RosBackendConfig(spec=sim_car.spec, cameras=cameras), loop, observe_cameras=False) as car:
        assert dict(car.spec.cameras) == {} and car.spec.render_cameras == ("front",)
        with pytest.raises(CameraTimeout, match="no frame on cameras/front/image_raw yet"):
            car.render("front")
        depth = dict(image_message(np.zeros((4, 4, 3), np.uint8), loop.now_ns(), "front"), encoding="16UC1")
        loop.publish("cameras/front/image_raw", IMAGE, depth, qos_for("image", "publisher"))
        with pytest.raises(ValueError, match="camera 'front' on cameras/front/image_raw: .*'16UC1'"):
            car.render("front")
    with pytest.raises(ValueError, match=r"cannot publish camera\(s\) \['rear'\]: MujocoCar renders \['front'"):
        RobotBridge(sim_car, loop, cameras=("rear",))


def test_car_lap_with_pixels_runs_on_the_ros_car(sim_car, tmp_path):
    loop, bridge = bridged(sim_car, period_s=0.05, cameras=("front",))
    heard = []
    loop.subscribe("cameras/front/image_raw", IMAGE, heard.append, qos_for("image"))
    config = RosBackendConfig(spec=sim_car.spec, cameras={"front": RosCameraConfig(height=HEIGHT, width=WIDTH)})
    task = CarLap(CarLapConfig(course=str(save_course(sim_car.track, tmp_path / "course.npz"))))
    env = RobotEnv(RosCarBackend(config, loop), task, obs="pixels")
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(task.expert(env.state))
            assert env.observation_space.contains(obs) and not (terminated or truncated)
            np.testing.assert_array_equal(obs["front"], frame_from_message(heard[-1]))  # the newest frame sent
    finally:
        env.close()
    assert obs["front"].std() > 10.0 and sim_car.read_state().forward_speed_m_s > 0.05


def test_cameras_from_a_rig_file(tmp_path):
    rig = tmp_path / "car.toml"
    rig.write_text('[car.ros]\ntopics_prefix = "/car1"\n[car.ros.cameras.front]\nheight = 64\nwidth = 80\n'
                   'image_transport = "compressed"\nmax_age_s = 0.2\n'
                   '[car.ros.cameras.zed]\nheight = 32\nwidth = 32\ntopic = "/zed/left/image_rect_color"\n')
    car = make_car(None, "pixels", rig=str(rig))
    assert car.spec.cameras["front"].shape == (64, 80, 3) and car.spec.render_cameras == ()
    front = RosCameraConfig(height=64, width=80, image_transport="compressed", max_age_s=0.2)
    assert car.config.cameras["front"] == front
    assert car.cameras.topics == {"front": "/car1/cameras/front/image_raw/compressed",
                                  "zed": "/zed/left/image_rect_color"}  # an absolute topic is taken as it is
    state_only = make_car(None, "state", rig=str(rig))
    assert dict(state_only.spec.cameras) == {} and state_only.spec.render_cameras == ("front", "zed")
    with pytest.raises(ValueError, match=r"needs its cameras: a \[car.ros.cameras.<name>\] table"):
        make_car(None, "pixels")
    bad_tables = (('height = 64\nwidth = 0\n', "width"), ('height = 8\nwidth = 8\nimage_transport = "h264"\n', "h264"),
                  ('height = 8\nwidth = 8\nfps = 30\n', "fps"))
    for table, field in bad_tables:
        rig.write_text(f"[car.ros.cameras.front]\n{table}")
        with pytest.raises(RosRigError, match=rf"car.toml: \[car.ros\]: .*cameras\['front'\].*{field}"):
            make_car(None, "pixels", rig=str(rig))
