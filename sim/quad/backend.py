"""MuJoCo implementation of the :class:`~robot_rl.backends.quadrotor.QuadBackend` contract.

The scene is :func:`sim.quad.model.mjcf`: four filter actuators (the first-order motor model) on
motor sites push along body z and turn the body about z; MuJoCo's RK4 integrates body and motors
at ``physics_hz``; free-joint damping is the linear drag. Every command level is accepted:
motor thrusts go straight to the actuators; thrust + rates, attitude and velocity commands are
flown by the shared cascade of :mod:`drivers.quad.control` (body-rate PID + mixer) at every physics
step, as a flight controller would. ``command()`` applies
:func:`~robot_rl.backends.quadrotor.clip_quad_command` and returns what it applied.
``stop()`` lands (a 0.5 m/s descent through the velocity controller) and disarms on touchdown; on
the ground it cuts the motors at once. Simulator extras: ``set_state`` (the task's reset
distribution; motors at hover thrust), ``set_target_marker`` and ``motor_thrusts_n``.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from drivers.quad.control import QuadController
from robot_rl.backends.base import CameraSpec
from robot_rl.backends.quadrotor import (
    AttitudeCommand,
    MotorThrusts,
    QuadCommand,
    QuadState,
    ThrustRates,
    VelocityCommand,
    clip_quad_command,
)
from sim.quad.model import CAMERAS, HULL_HALF_SIZE_M, QuadPhysics, mjcf
from sim.rendering import OffscreenCameras, observed_cameras
from sim.scene import MujocoScene

TOUCHDOWN_HEIGHT_M = HULL_HALF_SIZE_M[2] + 0.01


@dataclasses.dataclass(frozen=True)
class MujocoQuadConfig(QuadPhysics):
    """Simulated quadrotor settings: the physics (:class:`~sim.quad.model.QuadPhysics` fields) plus

    Attributes:
        cameras: cameras observed with ``obs="pixels"`` (subset of ``fpv``, ``chase``, ``overview``).
        image_height, image_width: camera image size in pixels.
        land_speed_m_s: descent speed of ``stop()``'s landing.
    """

    cameras: tuple[str, ...] = ("fpv",)
    image_height: int = 64
    image_width: int = 64
    land_speed_m_s: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "cameras", tuple(self.cameras))
        unknown = set(self.cameras) - set(CAMERAS)
        if unknown:
            raise ValueError(f"unknown cameras {sorted(unknown)}; the sim quadrotor has {list(CAMERAS)}")
        if self.image_height <= 0 or self.image_width <= 0:
            raise ValueError(f"image size must be positive, got {self.image_height}x{self.image_width}")
        if not 0 < self.land_speed_m_s <= self.max_speed_m_s:
            raise ValueError(f"land_speed_m_s must be in (0, max_speed_m_s={self.max_speed_m_s}], got {self.land_speed_m_s}")


class MujocoQuad(MujocoScene):
    """The simulated quadrotor. Nothing happens in ``__init__``; ``connect()`` compiles the model
    and leaves it disarmed, at rest on the floor at the origin."""

    family = "quadrotor"

    def __init__(self, config: MujocoQuadConfig | None = None) -> None:
        self.config = config or MujocoQuadConfig()
        size = (self.config.image_height, self.config.image_width)
        cameras = {c: CameraSpec(c, *size) for c in self.config.cameras}
        super().__init__(self.config.spec(cameras), OffscreenCameras(CAMERAS, "the sim quadrotor", size))
        self.controller = QuadController.from_spec(self._spec, self.config.yaw_torque_per_thrust_m)

    # ------------------------------------------------------------------ lifecycle
    def _compile(self) -> mujoco.MjModel:
        model = mujoco.MjModel.from_xml_string(mjcf(self.config, self.config.image_height, self.config.image_width))
        dof = model.jnt_dofadr[model.joint("root").id]
        model.dof_damping[dof:dof + 3] = self.config.linear_drag_n_s_m  # world-frame linear velocity of the free joint
        return model

    def _bind(self) -> None:
        m = self.model
        joint = m.joint("root").id
        self._qpos, self._qvel = m.jnt_qposadr[joint], m.jnt_dofadr[joint]
        self._motors = np.array([m.actuator(f"motor{i}").id for i in range(4)])
        self._target_mocap = m.body_mocapid[m.body("target").id]
        self._command: QuadCommand | None = None
        self._armed = self._landing = False
        self._reset_rate_loop()
        mujoco.mj_forward(m, self.data)

    def _reset_rate_loop(self) -> None:
        self._integral = np.zeros(3)
        self._prev_rates = None

    # ------------------------------------------------------------------ state
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d, p, v = self.data, self._qpos, self._qvel
        return d.qpos[p:p + 3].copy(), d.qpos[p + 3:p + 7].copy(), d.qvel[v:v + 3].copy(), d.qvel[v + 3:v + 6].copy()

    def read_state(self) -> QuadState:
        _, d = self._require()
        pos, quat, vel, rates = self._arrays()
        return QuadState(time_s=float(d.time), pos_m=pos, quat_wxyz=quat, vel_m_s=vel, body_rates_rad_s=rates,
                         armed=self._armed)

    @property
    def motor_thrusts_n(self) -> np.ndarray:
        """``(4,)`` the motors' actual thrusts [N] (the motor model's state), motor order."""
        _, d = self._require()
        return d.act[self._motors] * self.config.max_thrust_per_motor_n if self.model.na else \
            d.ctrl[self._motors] * self.config.max_thrust_per_motor_n

    # ------------------------------------------------------------------ control
    def command(self, command: QuadCommand) -> QuadCommand:
        """Clip to the spec's limits, arm, fly it until the next command; return what was applied."""
        self._require()
        executed = clip_quad_command(command, self._spec, self.read_state())
        if self._command is None or executed.level != self._command.level or self._landing:
            self._reset_rate_loop()
        self._command, self._armed, self._landing = executed, True, False
        return executed

    def stop(self) -> None:
        """Land and disarm: on the ground cut the motors now, in the air descend at ``land_speed_m_s``
        (the velocity controller) and disarm on touchdown. The next ``command()`` flies again."""
        self._require()
        if self._on_ground():
            self._disarm()
        elif self._armed and not self._landing:
            self._landing = True
            self._reset_rate_loop()

    def _on_ground(self) -> bool:
        return bool(self.data.qpos[self._qpos + 2] <= TOUCHDOWN_HEIGHT_M)

    def _disarm(self) -> None:
        self._armed = self._landing = False
        self._command = None
        self.data.ctrl[self._motors] = 0.0

    def sync(self, period_s: float) -> None:
        """Advance physics by ``period_s`` (whole physics steps, at least one), flying the command."""
        m, d = self._require()
        steps = self.config.substeps(period_s)
        if not self._armed:
            d.ctrl[self._motors] = 0.0
            mujoco.mj_step(m, d, nstep=steps)
        elif isinstance(self._command, MotorThrusts) and not self._landing:
            d.ctrl[self._motors] = self._command.thrust_frac
            mujoco.mj_step(m, d, nstep=steps)
        else:
            for _ in range(steps):
                d.ctrl[self._motors] = self._cascade() if self._armed else 0.0
                mujoco.mj_step(m, d)
                if self._landing and self._on_ground() and np.linalg.norm(d.qvel[self._qvel:self._qvel + 3]) < 0.3:
                    self._disarm()
        if not np.all(np.isfinite(d.qpos)):
            raise FloatingPointError("quadrotor simulation diverged (non-finite state)")

    def _cascade(self) -> np.ndarray:
        """Motor thrust fractions for the current command level, one physics step of the flight controller."""
        ctl, command = self.controller, self._command
        _, quat, vel, rates = self._arrays()
        if self._landing:
            command = VelocityCommand(vel_m_s=[0.0, 0.0, -self.config.land_speed_m_s], yaw_rate_rad_s=0.0)
        if isinstance(command, ThrustRates):
            collective, target = command.collective_thrust_frac, command.body_rates_rad_s
        elif isinstance(command, AttitudeCommand):
            collective = command.collective_thrust_frac
            target = ctl.attitude_to_rates(quat, command.roll_rad, command.pitch_rad, command.yaw_rate_rad_s, np)
        else:
            collective, target = ctl.velocity_to_thrust_rates(command.vel_m_s, command.yaw_rate_rad_s, vel, quat, np)
        prev = rates if self._prev_rates is None else self._prev_rates
        torque, self._integral = ctl.rates_to_torque(target, rates, np, self._integral, prev, self.config.timestep_s)
        self._prev_rates = rates
        return ctl.motor_fractions(collective, torque, np)

    # ------------------------------------------------------------------ scene control (simulator only)
    def set_state(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, vel_m_s: np.ndarray,
                  body_rates_rad_s: np.ndarray) -> None:
        """Place the vehicle (world ENU position/velocity, body FLU rates) in flight: motors at hover
        thrust, flight controller reset; it stays armed or disarmed as it was."""
        m, d = self._require()
        parts = {"pos_m": (pos_m, 3), "quat_wxyz": (quat_wxyz, 4), "vel_m_s": (vel_m_s, 3),
                 "body_rates_rad_s": (body_rates_rad_s, 3)}
        arrays = {}
        for name, (value, size) in parts.items():
            arrays[name] = np.asarray(value, dtype=np.float64)
            if arrays[name].shape != (size,) or not np.all(np.isfinite(arrays[name])):
                raise ValueError(f"set_state needs a finite {name} of shape ({size},), got {value!r}")
        norm = np.linalg.norm(arrays["quat_wxyz"])
        if norm < 1e-6:
            raise ValueError(f"set_state needs a non-zero quaternion, got {quat_wxyz!r}")
        target = d.mocap_pos[self._target_mocap].copy()
        mujoco.mj_resetData(m, d)
        d.mocap_pos[self._target_mocap] = target
        p, v = self._qpos, self._qvel
        d.qpos[p:p + 3], d.qpos[p + 3:p + 7] = arrays["pos_m"], arrays["quat_wxyz"] / norm
        d.qvel[v:v + 3], d.qvel[v + 3:v + 6] = arrays["vel_m_s"], arrays["body_rates_rad_s"]
        hover = self.config.hover_thrust_frac
        d.act[:] = hover if m.na else 0.0
        d.ctrl[self._motors] = hover if self._armed else 0.0
        self._reset_rate_loop()
        self._landing = False
        mujoco.mj_forward(m, d)

    def set_target_marker(self, pos_m: np.ndarray) -> None:
        """Move the (contact-free) target sphere to ``pos_m`` ``(3,)``, world ENU."""
        m, d = self._require()
        d.mocap_pos[self._target_mocap] = np.asarray(pos_m, dtype=np.float64)
        mujoco.mj_forward(m, d)


def make_backend(task, obs: str, **options) -> MujocoQuad:
    """Registry entry point: the sim quadrotor. Options are :class:`MujocoQuadConfig` fields; with
    ``obs="state"`` no camera is rendered per step unless ``cameras`` is given."""
    return MujocoQuad(observed_cameras(MujocoQuadConfig(**options), obs, options))
