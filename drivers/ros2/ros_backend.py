"""Backends of our contracts for a robot already driven by a ROS 2 stack (``ros_car``, ``ros_quad``, ``ros_arm``).

A car under an F1TENTH VESC driver, a Crazyflie under Crazyswarm2, an arm under ros2_control -- or any
backend exposed by our robot node (:class:`~drivers.ros2.bridge.RobotBridge`) -- is used through its
topics; the common part (connect, stale-state errors, clip-and-publish, watchdog, sync) is
:class:`~drivers.ros2.ros_topics_backend.RosTopicBackend`. Per family:

* car (speed mode: ``ackermann`` or ``cmd_vel``): ``clip_car_command``; ``stop()`` publishes zero speed with
  the steering held and keeps streaming it until the next command, so a stack without our stop topic
  ramps down to a standstill (as a VESC keeps braking);
* quadrotor (the levels of ``config.command_levels``: velocity on ``cmd_vel``, by default the only one, and
  thrust + body rates on ``attitude_target``, ``mavros_msgs/AttitudeTarget``): ``clip_quad_command``, each
  command published on its level's topic; below the velocity level a command outside the geofence lands the
  robot instead (RuntimeError), as a real quadrotor backend does; the first command waits until the robot
  reports armed (where it reports it); ``stop()`` lands through the stop topic only; ``set_state`` (the
  quadrotor tasks' reset) flies to the start with the host-side position loop of
  :mod:`drivers.quad.control`, level and at rest, as the Crazyflie backend does;
* arm (TCP pose target + gripper width on two topics): ``clip_target``; ``reset()`` goes through the robot
  node's ``cmd/reset_joints``; ``stop()`` is also sent as a target at the current pose.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from drivers.quad.control import QuadController
from drivers.quad.fly_to_start import ResetNotice, arrived, checked_start_m
from drivers.ros2.bridge import RESET_JOINTS
from drivers.ros2.messages_quad import LEVEL_ROLES
from drivers.ros2.msg_dicts import header
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend_config import RosBackendConfig, load_ros_rig
from drivers.ros2.ros_topics_backend import CONNECT_POLL_S, IDLE, RosTopicBackend, StaleStateError
from drivers.ros2.transport import Transport
from robot_rl.backends.arm import ArmTarget, clip_target
from robot_rl.backends.car import CarCommand, clip_car_command
from robot_rl.backends.quadrotor import VELOCITY, VelocityCommand, clip_quad_command, inside_geofence

log = logging.getLogger(__name__)

ARM_TIMEOUT_S = 1.0
RESET_TOLERANCE_RAD = 0.01  # an arm's reset has reached its joint positions
RESET_TOLERANCE_M = 0.005  # ... and its TCP target
RESET_PERIOD_S = 0.05
__all__ = ["RosCarBackend", "RosQuadBackend", "RosArmBackend", "StaleStateError", "make_car", "make_quad", "make_arm"]


class RosCarBackend(RosTopicBackend):
    """A car behind ROS 2 topics (speed mode: ackermann or cmd_vel); ``stop()`` brakes and keeps braking."""

    family = "car"
    streams_hold = True

    def _clip(self, command: Any, state: Any) -> CarCommand:
        return clip_car_command(command, self._spec, state, self._previous, self._period_s)

    def _hold_command(self) -> CarCommand:
        steering = self._previous.steering_rad if self._previous is not None else self._newest_steering()
        return CarCommand(steering_rad=steering, speed_m_s=0.0)

    def _previous_hold(self) -> CarCommand:
        return self._previous if self._previous is not None else self._hold_command()

    def _newest_steering(self) -> float:
        drive = self._latest.get("drive_state", {}).get("drive", {})
        steering = float(drive.get("steering_angle", 0.0))
        return steering if np.isfinite(steering) else 0.0


class RosQuadBackend(RosTopicBackend):
    """A quadrotor behind ROS 2 topics (velocity on cmd_vel; with ``command_levels`` also thrust + body rates on
    attitude_target); ``stop()`` lands through the stop topic."""

    family = "quadrotor"

    def __init__(self, config: RosBackendConfig | None = None, transport: Transport | None = None,
                 observe_cameras: bool = True) -> None:
        super().__init__(config, transport, observe_cameras)
        if not self.config.stop_topic:
            raise ValueError("a quadrotor over ROS needs stop_topic=True: landing has no standard ROS message, so "
                             "stop() asks the robot node to land its backend on the stop topic")
        self._controller = QuadController.from_spec(self._spec)  # its position loop flies set_state
        self._reset_notice = ResetNotice(log, "quadrotor over ROS")

    def command(self, command: Any) -> Any:
        """As every ROS backend; and when the robot reports arming (the ``armed`` topic) and is disarmed,
        wait (at most ``ARM_TIMEOUT_S``) until it reports armed, as the Crazyflie backend waits for its supervisor."""
        sent = super().command(command)
        transport = self._require()
        deadline_ns = transport.now_ns() + round(ARM_TIMEOUT_S * 1e9)
        while not self._reported_armed():
            if transport.now_ns() >= deadline_ns:
                raise TimeoutError(f"quadrotor over ROS: commanded, but {self.topics['armed']} did not report armed "
                                   f"within {ARM_TIMEOUT_S} s")
            transport.sleep(CONNECT_POLL_S)
        return sent

    def set_state(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, vel_m_s: np.ndarray,
                  body_rates_rad_s: np.ndarray) -> None:
        """The task's reset on a robot behind ROS: fly to ``pos_m`` (world frame, ENU, inside the geofence), level
        and at rest, with velocity commands from the host-side position loop
        (:meth:`~drivers.quad.control.QuadController.position_to_velocity`, yaw rate 0) every ``RESET_PERIOD_S``;
        ``quat_wxyz``, ``vel_m_s`` and ``body_rates_rad_s`` are not reproduced (warned once). Returns once
        within ``reset_tolerance_m`` and slower than ``reset_max_speed_m_s``, holding there (zero velocity)
        until the next command; after ``reset_timeout_s`` (transport clock) it holds where it is and raises
        TimeoutError. As after any command, the watchdog lands it when no command follows within ``watchdog_s``."""
        transport = self._require()
        if VELOCITY not in self._spec.command_levels:
            raise ValueError(f"quadrotor over ROS: set_state flies to the start with velocity commands, but "
                             f"command_levels is {self._spec.command_levels}: add 'velocity' (the cmd_vel Twist)")
        target = checked_start_m(self._spec, pos_m)
        self._reset_notice.warn_once()
        deadline_ns = transport.now_ns() + round(self.config.reset_timeout_s * 1e9)
        state = self.read_state()
        while not arrived(state.pos_m, state.vel_m_s, target, self.config.reset_tolerance_m,
                          self.config.reset_max_speed_m_s):
            if transport.now_ns() >= deadline_ns:
                self.command(VelocityCommand(vel_m_s=np.zeros(3), yaw_rate_rad_s=0.0))
                raise TimeoutError(f"quadrotor over ROS: set_state not within {self.config.reset_tolerance_m} m of "
                                   f"{target.tolist()} and slower than {self.config.reset_max_speed_m_s} m/s after "
                                   f"{self.config.reset_timeout_s} s (at {np.round(state.pos_m, 3).tolist()} m, "
                                   f"{np.linalg.norm(state.vel_m_s):.2f} m/s); holding there")
            vel = self._controller.position_to_velocity(state.pos_m, target, np)
            self.command(VelocityCommand(vel_m_s=vel, yaw_rate_rad_s=0.0))
            self.sync(RESET_PERIOD_S)
            state = self.read_state()
        self.command(VelocityCommand(vel_m_s=np.zeros(3), yaw_rate_rad_s=0.0))

    def _reported_armed(self) -> bool:
        """Armed by the newest ``armed`` message; True when the robot does not report arming at all."""
        with self._lock:
            armed = self._latest.get("armed")
        return armed is None or bool(armed["data"])

    def _clip(self, command: Any, state: Any) -> Any:
        level = getattr(command, "level", None)
        if level is None:
            raise ValueError(f"a quadrotor backend takes a quadrotor command, got {type(command).__name__}")
        if level not in self._spec.command_levels:
            raise ValueError(f"a quadrotor over ROS configured with command_levels {self._spec.command_levels} takes "
                             f"no {level!r} command: the ROS stack takes only those; thrust + body rates "
                             f"(quad_hover, quad_track) travel as mavros_msgs/AttitudeTarget with "
                             f"command_levels=('thrust_rates', 'velocity'), the other levels have no message here")
        if level != VELOCITY and not inside_geofence(self._spec, state.pos_m):
            self.stop()
            raise RuntimeError(f"quadrotor over ROS: at {np.round(state.pos_m, 3).tolist()} m, outside the geofence, "
                               f"with a {level!r} command: landing (stop topic); fly back in with velocity commands")
        return clip_quad_command(command, self._spec, state)

    def _choose_command_roles(self, wanted: str | None) -> tuple[str, ...]:
        """Each command goes to the topic of its level (``command_levels``); ``command_role`` has no say."""
        if wanted not in (None, LEVEL_ROLES[VELOCITY]):
            raise ValueError(f"quadrotor over ROS: each command goes to the topic of its level ({LEVEL_ROLES}); set "
                             f"command_levels, not command_role={wanted!r}")
        return tuple(LEVEL_ROLES[level] for level in self._spec.command_levels)

    def _publish_command(self, transport: Transport, command: Any) -> None:
        self._publish_on(transport, LEVEL_ROLES[command.level], command)


class RosArmBackend(RosTopicBackend):
    """An arm behind ROS 2 topics (TCP pose target + gripper); ``stop()`` holds the current pose."""

    family = "arm"

    def _clip(self, command: Any, state: Any) -> ArmTarget:
        if not isinstance(command, ArmTarget):
            raise ValueError(f"an arm backend takes an ArmTarget, got {type(command).__name__}")
        values = (command.tcp_pos_m, command.tcp_quat_wxyz, command.gripper_width_m)
        if not all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in values):
            raise ValueError(f"ArmTarget must be finite, got {command!r}")
        return clip_target(command, self._spec, state)

    def reset(self, joint_pos_rad: np.ndarray, target: ArmTarget | None = None) -> Any:
        """Go to a joint configuration (the robot node's ``cmd/reset_joints``), wait until the joint states
        show it, then, if given, command ``target`` until the TCP is there; each wait at most ``reset_timeout_s``."""
        transport = self._require()
        q = np.asarray(joint_pos_rad, dtype=np.float64)
        limits = self._spec.joint_limits_rad
        if q.shape != (self._spec.dof,) or not np.all(np.isfinite(q)) or np.any(q < limits[:, 0]) \
                or np.any(q > limits[:, 1]):
            raise ValueError(f"reset: need {self._spec.dof} finite joint positions inside joint_limits_rad, got {q}")
        names = self.messages.joint_names(self._spec)[0]
        message = {"header": header(transport.now_ns(), self.frames.base), "name": names, "position": q,
                   "velocity": np.zeros(0), "effort": np.zeros(0)}
        with self._lock:
            self._phase, self._previous = IDLE, None  # holds its reset pose; nothing to stream
            transport.publish(self.topics[RESET_JOINTS.role], RESET_JOINTS.typename, message,
                              qos_for("command", "publisher"))
        self._wait_until(lambda s: np.max(np.abs(s.joint_pos_rad - q)) < RESET_TOLERANCE_RAD, "the joint positions",
                         lambda: None)
        if target is not None:
            self._wait_until(lambda s: np.linalg.norm(s.tcp_pos_m - target.tcp_pos_m) < RESET_TOLERANCE_M,
                             "the TCP target", lambda: self.command(target))
        return self.read_state()

    def _wait_until(self, reached: Callable[[Any], bool], what: str, each_period: Callable[[], Any]) -> None:
        deadline_ns = self._require().now_ns() + round(self.config.reset_timeout_s * 1e9)
        while not reached(self.read_state()):
            if self._require().now_ns() >= deadline_ns:
                raise TimeoutError(f"arm over ROS: reset did not reach {what} within {self.config.reset_timeout_s} s "
                                   f"(newest state {self.read_state()})")
            each_period()
            self.sync(RESET_PERIOD_S)

    def _hold_command(self) -> ArmTarget | None:
        try:
            state = self.read_state()
        except (StaleStateError, ValueError) as err:
            log.error("arm over ROS: cannot hold the pose (%s); the stop topic is the only stop", err)
            return None
        width = self._previous.gripper_width_m if self._previous is not None else state.gripper_width_m
        return ArmTarget(tcp_pos_m=state.tcp_pos_m, tcp_quat_wxyz=state.tcp_quat_wxyz, gripper_width_m=width)


BACKEND_CLASSES = {cls.family: cls for cls in (RosCarBackend, RosQuadBackend, RosArmBackend)}


def make_backend(family: str, task: Any, obs: str, **options: Any) -> RosTopicBackend:
    """Registry entry point body: options are :class:`RosBackendConfig` fields; ``rig=`` names a rig file
    whose ``[<family>.ros]`` table is read first (the other options win over it). With ``obs="pixels"`` the
    configured cameras are observed (at least one is needed), with ``obs="state"`` only rendered."""
    if obs not in ("state", "pixels"):
        raise ValueError(f"obs must be 'state' or 'pixels', got {obs!r}")
    rig = options.pop("rig", None)
    config = load_ros_rig(rig, family, **options) if rig is not None else RosBackendConfig(**options)
    if obs == "pixels" and not config.cameras:
        raise ValueError(f"obs='pixels' on the ROS {family} backend needs its cameras: a "
                         f"[{family}.ros.cameras.<name>] table per camera in the rig file (height, width, "
                         f"image_transport, topic), or cameras={{...}}")
    return BACKEND_CLASSES[family](config, observe_cameras=obs == "pixels")


def make_car(task: Any, obs: str, **options: Any) -> RosCarBackend:
    return make_backend("car", task, obs, **options)


def make_quad(task: Any, obs: str, **options: Any) -> RosQuadBackend:
    return make_backend("quadrotor", task, obs, **options)


def make_arm(task: Any, obs: str, **options: Any) -> RosArmBackend:
    return make_backend("arm", task, obs, **options)


