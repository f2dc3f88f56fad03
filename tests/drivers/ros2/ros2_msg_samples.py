"""Real states from the sim backends (cached per test process) and random states, for the ROS 2 message tests."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st

from robot_rl.backends.arm import ArmState, ArmTarget
from robot_rl.backends.car import CarCommand, CarState
from robot_rl.backends.quadrotor import QuadState, VelocityCommand
from robot_rl.geometry import quat_normalize


@functools.cache
def sim_car():
    """(spec, state) of the MuJoCo car after a second of driving a left curve."""
    from sim.car.backend import MujocoCar

    with MujocoCar() as car:
        for _ in range(10):
            car.command(CarCommand(steering_rad=0.2, speed_m_s=1.0))
            car.sync(0.1)
        return car.spec, car.read_state()


@functools.cache
def sim_quad():
    """(spec, state) of the MuJoCo quadrotor climbing and drifting, tilted and yawing."""
    from sim.quad.backend import MujocoQuad

    with MujocoQuad() as quad:
        quad.set_state(np.array([0.3, -0.2, 1.0]), quat_normalize(np.array([0.95, 0.1, -0.05, 0.3])),
                       np.array([0.5, -0.3, 0.2]), np.array([0.1, -0.2, 0.4]))
        quad.command(VelocityCommand(vel_m_s=np.array([0.5, 0.0, 0.1]), yaw_rate_rad_s=0.2))
        quad.sync(0.05)
        return quad.spec, quad.read_state()


@functools.cache
def sim_arm():
    """(spec, state) of the MuJoCo arm moving toward a target and opening its gripper."""
    from sim.arm.backend import MujocoArm

    with MujocoArm() as arm:
        home = arm.read_state()
        arm.command(ArmTarget(tcp_pos_m=home.tcp_pos_m + [0.03, -0.02, 0.02], tcp_quat_wxyz=home.tcp_quat_wxyz,
                              gripper_width_m=0.06))
        arm.sync(0.1)
        return arm.spec, arm.read_state()


def finite(low: float = -50.0, high: float = 50.0):
    return st.floats(low, high, allow_nan=False)


def vectors(n: int, low: float = -50.0, high: float = 50.0):
    return st.lists(finite(low, high), min_size=n, max_size=n).map(np.array)


def unit_quats():
    return vectors(4, -1.0, 1.0).filter(lambda q: np.linalg.norm(q) > 0.1).map(quat_normalize)


def times_ns():
    return st.integers(0, 2 ** 31 * 10 ** 9 - 1)


def car_states():
    return st.builds(CarState, time_s=st.just(0.0), pos_m=vectors(2), yaw_rad=finite(-3.14, 3.14),
                     vel_body_m_s=vectors(2), yaw_rate_rad_s=finite(-5, 5), wheel_speed_m_s=finite(-10, 10),
                     steering_rad=finite(-0.5, 0.5), imu_accel_m_s2=vectors(3), imu_gyro_rad_s=vectors(3),
                     battery_v=st.one_of(st.just(np.nan), finite(6.0, 17.0)))


def quad_states():
    return st.builds(QuadState, time_s=st.just(0.0), pos_m=vectors(3), quat_wxyz=unit_quats(), vel_m_s=vectors(3),
                     body_rates_rad_s=vectors(3, -10, 10), armed=st.booleans(),
                     battery_v=st.one_of(st.just(np.nan), finite(3.0, 4.3)))


def arm_states(dof: int):
    return st.builds(ArmState, time_s=st.just(0.0), tcp_pos_m=vectors(3, -1, 1), tcp_quat_wxyz=unit_quats(),
                     tcp_linvel_m_s=vectors(3, -1, 1), tcp_angvel_rad_s=vectors(3, -3, 3),
                     joint_pos_rad=vectors(dof, -3, 3), joint_vel_rad_s=vectors(dof, -3, 3),
                     gripper_width_m=finite(0.0, 0.08), ext_wrench_n_nm=vectors(6, -100, 100))


def through_cdr(messages: dict, topics, distro: str = "humble") -> dict:
    """Role -> message dict after a CDR round trip through rosbags (as a subscriber would receive them)."""
    from drivers.ros2.msg_dicts import deserialize, serialize, typestore

    store = typestore(distro)
    typenames = {topic.role: topic.typename for topic in topics}
    return {role: deserialize(store, typenames[role], serialize(store, typenames[role], message))
            for role, message in messages.items()}


def assert_close(actual, expected, float32: bool = False) -> None:
    """Arrays/floats equal (nan where nan); to float32 precision when the message field is float32."""
    np.testing.assert_allclose(actual, expected, rtol=1e-6 if float32 else 1e-12, atol=1e-6 if float32 else 1e-12)


def round_trip(family, spec, state, time_ns: int, frames):
    """``state -> messages -> CDR -> messages -> state`` with one family's conversions."""
    messages = through_cdr(family.state_to_messages(state, spec, time_ns, frames), family.state_topics)
    return family.state_from_messages(messages, spec)
