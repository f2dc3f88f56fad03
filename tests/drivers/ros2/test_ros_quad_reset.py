"""RosQuadBackend.set_state: the quadrotor tasks' reset on a vehicle behind ROS 2 topics flies to the start (the
host-side position loop of drivers/quad/control.py, velocity commands on cmd_vel), over CdrLoopback (every message
through rosbags' CDR, virtual clock) to a RobotBridge around the MuJoCo quadrotor."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gymnasium.utils import seeding

import robot_rl
from drivers.quad.rotations import cos_tilt_arrays
from drivers.ros2.bridge import RobotBridge
from drivers.ros2.families import family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend import RosQuadBackend
from drivers.ros2.ros_backend_config import RosBackendConfig
from drivers.ros2.transport import CdrLoopback
from robot_rl.env import RobotEnv
from robot_rl.testing import quad_backend
from sim.quad.backend import MujocoQuad
from tasks.quad.hover import QuadHover
from tasks.quad.track import QuadTrack

BRIDGE_PERIOD_S = 0.01
ON_THE_FLOOR_M = np.array([0.0, 0.0, 0.01])
REST = (quad_backend.LEVEL_WXYZ, np.zeros(3), np.zeros(3))


@pytest.fixture(scope="module")
def sim_quad():
    with MujocoQuad() as sim:
        yield sim


def ros_quad(sim: MujocoQuad, **options) -> tuple[CdrLoopback, RobotBridge, RosQuadBackend]:
    """A fresh robot node around ``sim`` (on the floor, disarmed) and a ROS backend on the same loopback."""
    sim.set_state(ON_THE_FLOOR_M, *REST)
    sim.stop()  # on the ground: motors cut, disarmed
    loop = CdrLoopback()
    bridge = RobotBridge(sim, loop)
    bridge.timer = bridge.run_every(BRIDGE_PERIOD_S)
    return loop, bridge, RosQuadBackend(RosBackendConfig(spec=sim.spec, **options), transport=loop)


def sent_velocities(loop: CdrLoopback) -> list[np.ndarray]:
    """Every velocity command the robot node receives on cmd_vel (appended as they arrive)."""
    received, quad = [], family_messages("quadrotor")
    loop.subscribe("cmd_vel", "geometry_msgs/msg/Twist",
                   lambda m: received.append(quad.command_from_message("cmd_vel", m, None).vel_m_s), qos_for("command"))
    return received


def test_the_ros_quadrotor_passes_the_quad_checks_flying_to_its_start(sim_quad):
    loop, bridge, quad = ros_quad(sim_quad)
    quad_backend.check_quad_backend(quad, np.array([0.3, -0.2, 1.0]))  # set_state flies there, then the checks
    assert bridge.stats.commands_refused == 0 and bridge.stats.commands_executed > 20


def test_set_state_settles_within_the_tolerance_level_and_warns_once(sim_quad, caplog):
    loop, bridge, quad = ros_quad(sim_quad, reset_tolerance_m=0.03, reset_max_speed_m_s=0.05)
    commands = sent_velocities(loop)
    with quad, caplog.at_level(logging.WARNING, logger="drivers.ros2.ros_backend"):
        for start in (np.array([0.5, 0.4, 1.2]), np.array([-0.4, 0.1, 0.7])):
            start_ns = loop.now_ns()
            tilted = np.array([0.9, 0.3, 0.0, 0.3]) / np.linalg.norm([0.9, 0.3, 0.0, 0.3])
            quad.set_state(start, tilted, np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 2.0]))
            flown_s = (loop.now_ns() - start_ns) * 1e-9
            state = quad.read_state()
            assert np.linalg.norm(state.pos_m - start) <= 0.03 and np.linalg.norm(state.vel_m_s) <= 0.05
            assert cos_tilt_arrays(state.quat_wxyz, np) > np.cos(np.radians(3))  # level, not the asked-for tilt
            assert 0.3 < flown_s < quad.config.reset_timeout_s
            np.testing.assert_array_equal(commands[-1], np.zeros(3))  # it holds there until the next command
    speeds = np.linalg.norm(commands, axis=1)
    assert speeds.max() <= sim_quad.spec.max_speed_m_s + 1e-9 and len(commands) > 20
    assert sum("not reproduced" in r.getMessage() for r in caplog.records) == 1
    assert bridge.stats.commands_refused == 0 and bridge.stats.timeouts == 0


def test_set_state_refuses_a_start_outside_the_geofence_and_times_out_holding(sim_quad):
    loop, bridge, quad = ros_quad(sim_quad, reset_timeout_s=0.5)
    commands = sent_velocities(loop)
    with quad:
        outside = sim_quad.spec.geofence_high_m + np.array([0.0, 0.0, 0.5])
        for bad in (outside, np.array([0.0, np.nan, 1.0]), np.zeros(2)):
            with pytest.raises(ValueError, match="not a position inside the geofence"):
                quad.set_state(bad, *REST)
        assert commands == [] and not quad.read_state().armed  # refused before anything was sent
        start_ns = loop.now_ns()
        with pytest.raises(TimeoutError, match=r"not within 0.1 m of \[2.5, 2.5, 3.5\] .* after 0.5 s"):
            quad.set_state(np.array([2.5, 2.5, 3.5]), *REST)
        assert 0.5 <= (loop.now_ns() - start_ns) * 1e-9 < 0.6  # virtual time: no real wait
        np.testing.assert_array_equal(commands[-1], np.zeros(3))  # holding where it is
        assert quad.read_state().armed and np.linalg.norm(commands[-2]) > 1.0  # it was on its way


@pytest.mark.parametrize("task_class", [QuadHover, QuadTrack])
def test_quad_tasks_reset_on_ros_quad_by_flying_and_refuse_thrust_rates(sim_quad, task_class):
    loop, bridge, quad = ros_quad(sim_quad)
    task = task_class()
    env = RobotEnv(quad, task)  # what robot_rl.make builds, with the loopback transport given
    with env:
        env.reset(seed=3)
        rng = seeding.np_random(3)[0]
        arrays = task.arrays_for(quad.spec)
        start = arrays.initial(rng.uniform(size=arrays.uniform_size), np)[1]  # the drawn start, as reset drew it
        assert np.linalg.norm(env.state.pos_m - start) <= quad.config.reset_tolerance_m
        np.testing.assert_allclose(env.state.pos_m, sim_quad.read_state().pos_m, atol=0.02)
        with pytest.raises(ValueError, match="velocity commands only.*thrust_rates.*cannot step there"):
            env.step(task.expert(env.state))
    made = robot_rl.make(task.name, backend="ros_quad", spec=sim_quad.spec)
    assert isinstance(made.unwrapped.backend, RosQuadBackend) and not made.unwrapped.backend.connected
