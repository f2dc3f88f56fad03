"""The [serve] and [remote] tables of a rig file, and where the robot server may listen."""

from __future__ import annotations

import pytest

from robot_rl.remote.client import RemoteConfig, load_remote_rig, make_backend
from robot_rl.remote.command import ServeRobot
from robot_rl.remote.server import RobotServer
from sim.arm.backend import MujocoArm, MujocoArmConfig


def test_the_remote_table_configures_the_backend_and_options_win(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[remote]\nserver = "tcp://10.0.0.2:5570"\nkeys = "robot_keys"\ntimeout_s = 0.3\n')
    config = load_remote_rig(rig, timeout_s=0.2)
    assert (config.server, config.keys, config.timeout_s, config.rig) == ("tcp://10.0.0.2:5570", "robot_keys", 0.2, str(rig))
    backend = make_backend(type("Task", (), {"family": "arm", "name": "pick_cube"})(), "state", rig=str(rig))
    assert backend.config == config.__class__(**{**vars(config), "timeout_s": 0.3}) and backend.task == "pick_cube"
    assert not backend.connected  # nothing opened before connect()
    rig.write_text('[remote]\nsever = "tcp://10.0.0.2:5570"\n')
    with pytest.raises(ValueError, match=r"\[remote\]: unknown field\(s\) \['sever'\]"):
        load_remote_rig(rig)
    with pytest.raises(ValueError, match="timeout_s must be in"):
        RemoteConfig(timeout_s=0.0)


def test_the_serve_table_and_the_flags(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[serve]\nbackend = "sim"\nbind = "tcp://127.0.0.1:6000"\n[serve.options]\ncameras = []\n')
    settings = ServeRobot(rig=rig, bind="tcp://127.0.0.1:7000").settings()
    assert settings["backend"] == "sim" and settings["family"] == "arm" and settings["bind"] == "tcp://127.0.0.1:7000"
    assert settings["options"] == {"cameras": []} and not settings["bind_remote"]
    rig.write_text("[serve]\nbackedn = 'sim'\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['backedn'\]"):
        ServeRobot(rig=rig).settings()
    rig.write_text("[arm.fr3]\nhost = '10.0.0.2'\n")
    with pytest.raises(ValueError, match="name the backend to serve"):
        ServeRobot(rig=rig).settings()


def test_the_server_listens_beyond_loopback_only_when_asked_and_with_keys():
    arm = MujocoArm(MujocoArmConfig(cameras=()))
    with pytest.raises(ValueError, match="--bind-remote"):
        RobotServer(arm, "arm", bind="tcp://0.0.0.0:5570")
    with pytest.raises(ValueError, match="needs --keys"):
        RobotServer(arm, "arm", bind="tcp://0.0.0.0:5570", bind_remote=True)
    with pytest.raises(NotImplementedError, match="FAMILY_TYPES"):
        RobotServer(arm, "boat")
