"""MuJoCo implementation of the :class:`~robot_rl.backends.arm.ArmBackend` contract.

The arm is torque-controlled: every physics step (500 Hz by default) runs the very
:class:`~drivers.arm.impedance.CartesianImpedanceController` a torque-controlled real arm runs,
with MuJoCo's Jacobian and bias forces standing in for the robot model. ``command()`` only moves
the controller's target, ``sync(period_s)`` advances physics.
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings

import mujoco
import numpy as np

from drivers.arm import panda
from drivers.arm.impedance import NON_FINITE_TORQUE, ImpedanceConfig, make_impedance_controller
from robot_rl.backends.arm import ArmSpec, ArmState, ArmTarget, ObjectSpec, clip_target
from robot_rl.backends.base import CameraSpec
from sim.arm.native import native_tick_args, native_ticks_unavailable
from sim.arm.objects import ObjectBindings, add_objects, hand_geoms
from sim.rendering import OffscreenCameras, observed_cameras
from sim.scene import MujocoScene

ASSET = pathlib.Path(__file__).parent / "assets" / "arm7.xml"
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
CAMERAS = ("front", "wrist")


@dataclasses.dataclass(frozen=True)
class MujocoArmConfig:
    """Simulated arm settings.

    Attributes:
        physics_hz: physics (and impedance controller) rate.
        impedance: controller gains; its ``dt_s`` is replaced by ``1 / physics_hz``.
        cameras: cameras to expose (subset of ``front``, ``wrist``).
        image_height, image_width: camera image size in pixels.
        workspace_low_m, workspace_high_m: TCP target box, base frame.
        max_step_m, max_step_rad: per-command limits relative to the current TCP pose.
        settle_s: how long ``reset(..., target)`` lets the controller settle at the target.
    """

    physics_hz: float = 500.0
    impedance: ImpedanceConfig = ImpedanceConfig()
    cameras: tuple[str, ...] = CAMERAS
    image_height: int = 128
    image_width: int = 128
    workspace_low_m: tuple[float, float, float] = (0.2, -0.4, 0.012)
    workspace_high_m: tuple[float, float, float] = (0.8, 0.4, 0.6)
    max_step_m: float = 0.05
    max_step_rad: float = 0.3
    settle_s: float = 0.2

    def __post_init__(self) -> None:
        if not 50 <= self.physics_hz <= 10_000:
            raise ValueError(f"physics_hz must be in [50, 10000], got {self.physics_hz}")
        unknown = set(self.cameras) - set(CAMERAS)
        if unknown:
            raise ValueError(f"unknown cameras {sorted(unknown)}; the sim arm has {list(CAMERAS)}")
        if np.any(np.asarray(self.workspace_low_m) >= np.asarray(self.workspace_high_m)):
            raise ValueError(f"workspace_low_m {self.workspace_low_m} must be below workspace_high_m {self.workspace_high_m}")


def build_model(objects: tuple[ObjectSpec, ...], config: MujocoArmConfig) -> mujoco.MjModel:
    """Compile the arm scene plus the task's objects (:mod:`sim.arm.objects`) with MuJoCo's model editor."""
    spec = mujoco.MjSpec.from_file(str(ASSET))
    spec.option.timestep = 1.0 / config.physics_hz
    spec.visual.global_.offwidth = max(640, config.image_width)
    spec.visual.global_.offheight = max(480, config.image_height)
    add_objects(spec, objects)
    return spec.compile()


class MujocoArm(MujocoScene):
    """Simulated torque-controlled 7-DoF arm with a parallel gripper (Panda kinematics and limits,
    :mod:`drivers.arm.panda`).

    Nothing happens in ``__init__``; ``connect()`` compiles the model. Use as a context manager.
    """

    family = "arm"

    def __init__(self, config: MujocoArmConfig | None = None, objects: tuple[ObjectSpec, ...] = ()) -> None:
        self.config = config or MujocoArmConfig()
        self.objects = tuple(objects)
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"object names must be unique, got {names}")
        spec = ArmSpec(
            dof=7,
            joint_limits_rad=np.array(panda.JOINT_LIMITS_RAD),
            workspace_low_m=np.asarray(self.config.workspace_low_m, dtype=np.float64),
            workspace_high_m=np.asarray(self.config.workspace_high_m, dtype=np.float64),
            gripper_max_width_m=panda.GRIPPER_MAX_WIDTH_M,
            cameras={c: CameraSpec(c, self.config.image_height, self.config.image_width) for c in self.config.cameras},
            max_step_m=self.config.max_step_m,
            max_step_rad=self.config.max_step_rad,
            home_joint_pos_rad=np.array(panda.READY_JOINT_POS_RAD),
            render_cameras=CAMERAS,
        )
        super().__init__(spec, OffscreenCameras(CAMERAS, "the sim arm", (self.config.image_height, self.config.image_width)))

    # ------------------------------------------------------------------ lifecycle
    def _compile(self) -> mujoco.MjModel:
        return build_model(self.objects, self.config)

    def _bind(self) -> None:
        """Look up ids and make the views the 500 Hz loop reads (no allocation per tick)."""
        m, d = self.model, self.data
        qadr = [m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS]
        vadr = [m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS]
        if qadr != list(range(7)) or vadr != list(range(7)):
            raise RuntimeError("the arm joints must be the model's first 7 dofs")
        self._tcp = m.site("tcp").id
        self._hand = m.body("hand").id
        self._gripper_act = m.actuator("gripper").id
        self._fingers = [m.jnt_qposadr[m.joint(f).id] for f in ("finger_left", "finger_right")]
        self._jac = np.zeros((6, m.nv))
        self._jac_arm = self._jac[:, :7]
        self._q, self._dq = d.qpos[:7], d.qvel[:7]
        self._bias = d.qfrc_bias[:7]
        self._tcp_pos = d.site_xpos[self._tcp]
        self._tcp_rot = d.site_xmat[self._tcp].reshape(3, 3)
        self._ctrl_arm = d.ctrl[:7]
        self._tick_inputs = (self._q, self._dq, self._tcp_pos, self._tcp_rot, self._jac_arm, self._bias)
        self._gripper_geoms = hand_geoms(m)  # hand, fingers and held objects
        self._object_bindings = ObjectBindings.bind(m, self.objects)
        impedance = dataclasses.replace(self.config.impedance, dt_s=float(m.opt.timestep))
        self.controller = make_impedance_controller(impedance)
        self._native_ticks = self._bind_native_ticks()

    def _bind_native_ticks(self) -> tuple | None:
        """(compiled tick loop, MuJoCo C addresses) when the controller is compiled and MuJoCo's C
        functions are reachable (sim/arm/native.py), else ``None``: ticks run from Python."""
        if not hasattr(self.controller, "kernel_state"):
            return None  # the numpy reference controller
        reason = native_ticks_unavailable(self.model, self.data)
        if reason:
            warnings.warn(f"sim arm: physics ticks run from Python ({reason})", RuntimeWarning, stacklevel=3)
            return None
        from drivers.arm.impedance_kernel import run_native_ticks

        return run_native_ticks, native_tick_args(self.model, self.data, self._jac, self._tcp)

    def controller_inputs(self) -> tuple[np.ndarray, ...]:
        """The arrays one controller tick reads (q, dq, tcp_pos, tcp_rot, jac, bias), as live views
        into the simulation, refreshed by ``mj_step1`` + ``mj_jacSite`` (for benchmarks and tests)."""
        self._require()
        mujoco.mj_step1(self.model, self.data)
        mujoco.mj_jacSite(self.model, self.data, self._jac[:3], self._jac[3:], self._tcp)
        return self._tick_inputs

    # ------------------------------------------------------------------ control
    def read_state(self) -> ArmState:
        m, d = self._require()
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_SITE, self._tcp, vel, 0)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        objects = self._object_bindings.poses(d)
        return ArmState(
            time_s=float(d.time),
            tcp_pos_m=d.site_xpos[self._tcp].copy(),
            tcp_quat_wxyz=quat,
            tcp_linvel_m_s=vel[3:].copy(),
            tcp_angvel_rad_s=vel[:3].copy(),
            joint_pos_rad=d.qpos[:7].copy(),
            joint_vel_rad_s=d.qvel[:7].copy(),
            gripper_width_m=float(d.qpos[self._fingers[0]] + d.qpos[self._fingers[1]]),
            ext_wrench_n_nm=self._contact_wrench(),
            objects=objects,
        )

    def _contact_wrench(self) -> np.ndarray:
        """Wrench [N, Nm] that contacts on the hand and fingers apply to the robot, about the TCP."""
        m, d = self.model, self.data
        wrench = np.zeros(6)
        force6 = np.zeros(6)
        for i in range(d.ncon):
            con = d.contact[i]
            ours = (con.geom1 in self._gripper_geoms, con.geom2 in self._gripper_geoms)
            if ours[0] == ours[1]:
                continue
            mujoco.mj_contactForce(m, d, i, force6)
            frame = con.frame.reshape(3, 3)  # rows: contact normal and tangents, world frame
            force = frame.T @ force6[:3]  # force on geom2 from geom1
            if ours[0]:
                force = -force
            wrench[:3] += force
            wrench[3:] += np.cross(con.pos - d.site_xpos[self._tcp], force)
        return wrench

    def command(self, target: ArmTarget) -> ArmTarget:
        self._require()
        executed = clip_target(target, self._spec, self.read_state())
        self.controller.set_target(executed.tcp_pos_m, executed.tcp_quat_wxyz)
        self.data.ctrl[self._gripper_act] = executed.gripper_width_m / 2.0
        return executed

    def stop(self) -> None:
        """Hold the current TCP pose: the controller's target becomes the measured pose (the
        gripper keeps its command, so a held object stays held)."""
        self._require()
        state = self.read_state()
        self.controller.set_target(state.tcp_pos_m, state.tcp_quat_wxyz)

    def sync(self, period_s: float) -> None:
        """Advance physics by ``period_s``, running the impedance controller every step."""
        m, _ = self._require()
        self.run_ticks(max(1, int(round(period_s / m.opt.timestep))))

    @property
    def native_ticks(self) -> bool:
        """Whether ``sync`` runs all its physics steps in one compiled call (see ``run_ticks``)."""
        return self._native_ticks is not None

    def run_ticks(self, steps: int, native: bool = True) -> None:
        """``steps`` physics steps, each: MuJoCo's first half (kinematics, Jacobian inputs and bias
        forces at the current state), the TCP Jacobian, one controller tick, the second half
        (actuation, integration). With a compiled controller all steps run in one native call
        (``native=False``: from Python, as with the numpy controller; the same numbers)."""
        m, d = self._require()
        if native and self._native_ticks is not None:
            loop, addresses = self._native_ticks
            if addresses[4] != d._address:  # e.g. a copied arm: never step another MjData's memory
                raise RuntimeError("the sim arm's native tick loop is bound to another MjData; connect() again")
            if loop(addresses, steps, self.controller.kernel_state, *self._tick_inputs, self._ctrl_arm):
                raise FloatingPointError(NON_FINITE_TORQUE)
        else:
            self._run_python_ticks(m, d, steps)
        if not np.all(np.isfinite(d.qpos)):
            raise FloatingPointError("simulation diverged (non-finite joint positions); check controller gains")

    def _run_python_ticks(self, m: mujoco.MjModel, d: mujoco.MjData, steps: int) -> None:
        compute, ctrl, inputs = self.controller.compute, self._ctrl_arm, self._tick_inputs
        jac_lin, jac_rot, site = self._jac[:3], self._jac[3:], self._tcp
        for _ in range(steps):
            mujoco.mj_step1(m, d)
            mujoco.mj_jacSite(m, d, jac_lin, jac_rot, site)
            ctrl[:] = compute(*inputs)
            mujoco.mj_step2(m, d)

    def reset(self, joint_pos_rad: np.ndarray, target: ArmTarget | None = None) -> ArmState:
        """Start from ``joint_pos_rad``; with a ``target``, jump to its inverse kinematics and let
        the controller settle there for ``settle_s`` (a real arm would drive there instead)."""
        m, d = self._require()
        mujoco.mj_resetData(m, d)
        d.qpos[:7] = joint_pos_rad
        width = panda.GRIPPER_MAX_WIDTH_M if target is None else target.gripper_width_m
        d.qpos[self._fingers] = width / 2.0
        d.ctrl[self._gripper_act] = width / 2.0
        # mj_resetData put the objects back at their model poses (free: qpos0, fixed: mocap).
        if target is not None:
            self._inverse_kinematics(target)
        mujoco.mj_forward(m, d)
        state = self.read_state()
        self.controller.reset(state.tcp_pos_m, state.tcp_quat_wxyz, d.qpos[:7], tau=d.qfrc_bias[:7])
        if target is not None:
            self.command(target)
            self.sync(self.config.settle_s)
        return self.read_state()

    def _inverse_kinematics(self, target: ArmTarget, iterations: int = 100) -> None:
        """Damped least-squares IK of the TCP pose, pulled toward the starting posture, in qpos."""
        m, d = self.model, self.data
        posture = d.qpos[:7].copy()
        goal_rot = np.zeros(9)
        mujoco.mju_quat2Mat(goal_rot, np.asarray(target.tcp_quat_wxyz, dtype=np.float64))
        goal_rot = goal_rot.reshape(3, 3)
        limits = self._spec.joint_limits_rad
        for _ in range(iterations):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err = np.zeros(6)
            err[:3] = target.tcp_pos_m - d.site_xpos[self._tcp]
            rr = goal_rot @ d.site_xmat[self._tcp].reshape(3, 3).T
            err[3:] = 0.5 * np.array([rr[2, 1] - rr[1, 2], rr[0, 2] - rr[2, 0], rr[1, 0] - rr[0, 1]])
            if np.max(np.abs(err)) < 1e-5:
                return
            mujoco.mj_jacSite(m, d, self._jac[:3], self._jac[3:], self._tcp)
            jac = self._jac_arm
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            step += 0.1 * (np.eye(7) - np.linalg.pinv(jac) @ jac) @ (posture - d.qpos[:7])
            d.qpos[:7] = np.clip(d.qpos[:7] + step, limits[:, 0], limits[:, 1])
        raise RuntimeError(f"no inverse kinematics solution for TCP target {target.tcp_pos_m} within joint limits")

    def set_object_pose(self, name: str, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Place a free object (at rest) or a fixed one; a held object raises ``KeyError``."""
        m, d = self._require()
        self._object_bindings.place(d, name, pos_m, quat_wxyz)
        mujoco.mj_forward(m, d)


def make_backend(task, obs: str, **options) -> MujocoArm:
    """Registry entry point: the sim arm for ``task`` (its scene objects added). Options are
    :class:`MujocoArmConfig` fields; with ``obs="state"`` no camera is rendered per step unless
    ``cameras`` is given (``render()`` still films any camera)."""
    return MujocoArm(observed_cameras(MujocoArmConfig(**options), obs, options), objects=tuple(getattr(task, "objects", ())))
