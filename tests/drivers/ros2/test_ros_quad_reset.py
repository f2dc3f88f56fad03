"""RosQuadBackend over CdrLoopback (every message through rosbags' CDR, virtual clock) to a RobotBridge around the
MuJoCo quadrotor: set_state, the quadrotor tasks' reset, flies to the start (the host-side position loop of
drivers/quad/control.py, velocity commands on cmd_vel); with command_levels including thrust_rates, quad_hover's
thrust + body rates fly as mavros_msgs/AttitudeTarget."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from gymnasium.utils import seeding

import robot_rl
from drivers.quad.rotations import cos_tilt_arrays
from drivers.ros2.bridge import RobotBridge
from drivers.ros2.families import family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend import RosCarBackend, RosQuadBackend
from drivers.ros2.ros_backend_config import RosBackendConfig
from drivers.ros2.transport import CdrLoopback
from robot_rl.backends.quadrotor import ThrustRates
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
    return loop, bridge, RosQuadBackend(RosBackendConfig(**{"spec": sim.spec, **options}), transport=loop)


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


def drawn_start(task, spec, seed: int) -> np.ndarray:
    """The start position the task's reset draws with ``seed`` (as RobotEnv.reset seeds it)."""
    arrays = task.arrays_for(spec)
    return arrays.initial(seeding.np_random(seed)[0].uniform(size=arrays.uniform_size), np)[1]


@pytest.mark.parametrize("task_class", [QuadHover, QuadTrack])
def test_quad_tasks_reset_on_velocity_only_ros_quad_but_cannot_step_there(sim_quad, task_class):
    loop, bridge, quad = ros_quad(sim_quad)  # the default: the ROS stack takes velocity commands only
    task = task_class()
    env = RobotEnv(quad, task)  # what robot_rl.make builds, with the loopback transport given
    with env:
        env.reset(seed=3)
        assert np.linalg.norm(env.state.pos_m - drawn_start(task, quad.spec, 3)) <= quad.config.reset_tolerance_m
        np.testing.assert_allclose(env.state.pos_m, sim_quad.read_state().pos_m, atol=0.02)
        with pytest.raises(ValueError, match=r"command_levels \('velocity',\) takes no 'thrust_rates' command.*"
                                             r"mavros_msgs/AttitudeTarget"):
            env.step(task.expert(env.state))
    made = robot_rl.make(task.name, backend="ros_quad", spec=sim_quad.spec)
    assert isinstance(made.unwrapped.backend, RosQuadBackend) and not made.unwrapped.backend.connected


def sent_thrust_rates(loop: CdrLoopback) -> list:
    """Every ThrustRates the robot node executed, as it echoes them on cmd/attitude_target_sent."""
    received, quad = [], family_messages("quadrotor")
    loop.subscribe("cmd/attitude_target_sent", "mavros_msgs/msg/AttitudeTarget",
                   lambda m: received.append(quad.command_from_message("attitude_target", m, None)), qos_for("state"))
    return received


def test_quad_hover_flies_on_ros_quad_through_mavros_attitude_targets(sim_quad):
    loop, bridge, quad = ros_quad(sim_quad, command_levels=["thrust_rates", "velocity"])  # a rig file's list
    assert quad.spec.command_levels == ("thrust_rates", "velocity") and quad.command_roles == ("attitude_target",
                                                                                               "cmd_vel")
    executed = sent_thrust_rates(loop)
    task = QuadHover()
    env = RobotEnv(quad, task)
    errors_m, steps = [], 150  # 1.5 s at the task's 100 Hz
    with env:
        env.reset(seed=5)
        assert np.linalg.norm(env.state.pos_m - drawn_start(task, quad.spec, 5)) <= quad.config.reset_tolerance_m
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(task.expert(env.state))
            assert not (terminated or truncated)
            errors_m.append(float(np.linalg.norm(sim_quad.read_state().pos_m - task.target_m)))
    assert len(executed) == steps and bridge.stats.commands_refused == 0
    assert all(0.0 < c.collective_thrust_frac < 1.0 for c in executed)  # the expert's thrust reached the sim
    assert np.max(np.abs([c.body_rates_rad_s for c in executed])) > 0.05  # ... and its body rates
    assert errors_m[-1] < 0.5 * errors_m[0] and errors_m[-1] < 0.1 and max(errors_m) < errors_m[0] + 0.05


def test_thrust_rates_outside_the_geofence_lands_and_other_settings_are_refused(sim_quad):
    fence = dataclasses.replace(sim_quad.spec, geofence_high_m=np.array([2.0, 2.0, 0.5]))
    loop, bridge, quad = ros_quad(sim_quad, spec=fence, command_levels=("thrust_rates", "velocity"))
    executed = sent_thrust_rates(loop)
    hover = ThrustRates(collective_thrust_frac=fence.hover_thrust_frac, body_rates_rad_s=np.zeros(3))
    with quad:
        quad.set_state(np.array([0.0, 0.0, 0.4]), *REST)  # inside the (lowered) fence: thrust + rates fly
        assert quad.command(hover).level == "thrust_rates" and len(executed) == 1
        stops = bridge.stats.stops
        sim_quad.set_state(np.array([0.0, 0.0, 0.8]), *REST)  # above the ROS side's fence: it lands the robot
        quad.sync(0.02)
        with pytest.raises(RuntimeError, match=r"outside the geofence, with a 'thrust_rates' command: landing"):
            quad.command(hover)
        assert bridge.stats.stops == stops + 1 and len(executed) == 1
    loop, bridge, rates_only = ros_quad(sim_quad, command_levels=("thrust_rates",))
    with rates_only, pytest.raises(ValueError, match="set_state flies to the start with velocity commands"):
        rates_only.set_state(np.array([0.0, 0.0, 1.0]), *REST)
    with pytest.raises(ValueError, match="command_levels must be distinct names from"):
        RosBackendConfig(command_levels=("attitude",))
    with pytest.raises(ValueError, match="command_levels is a quadrotor setting"):
        RosCarBackend(RosBackendConfig(command_levels=("velocity",)))
    with pytest.raises(ValueError, match="set command_levels, not command_role='attitude_target'"):
        RosQuadBackend(RosBackendConfig(command_role="attitude_target"))
