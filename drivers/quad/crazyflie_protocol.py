"""The Crazyflie's own conventions, converted to the quadrotor contract's here and nowhere else.

Frames: the Crazyflie's body frame is FLU (x forward, y left, z up), as the contract's; its world frame
is the positioning system's (z up, right-handed), which the backend calls world ENU.

Setpoints (cflib's ``Commander``; the firmware's ``crtp_commander_rpyt.c`` and ``controller_pid.c``):

* the RPYT packet carries roll, pitch (degrees, or degrees/s in rate mode), a yaw rate (degrees/s)
  and a 16-bit thrust (motor PWM ``0..65535``, not force: :func:`thrust_u16_for_force` applies the
  thrust curve);
* its pitch is the legacy nose-up-positive one; ``Commander.send_setpoint`` negates its ``pitch``
  argument for us, so that argument is nose-down-positive: the contract's pitch, rotation about +y;
* the firmware inverts the packet's yaw rate ("legacy rate input is inverted"), so
  ``send_setpoint``'s ``yawrate`` turns clockwise seen from above: we pass ``-degrees(yaw_rate)``;
* roll is the contract's (right side down, rotation about +x) in both modes;
* the generic velocity-world setpoint is in m/s (world frame) with a counter-clockwise yaw rate in
  degrees/s (cflib handles the legacy negation of firmware with protocol <= 8).

State log (``stateEstimateZ``, one 22-byte block, so position, attitude and rates are one sample):
positions in mm and velocities in mm/s as int16 (world frame), the attitude as the firmware's
compressed quaternion (``quatcompress.h``, decoded with cflib's ``decompress_quaternion``, order
x, y, z, w), body rates in mrad/s as int16 with the legacy pitch sign (``ratePitch = -gyro.y``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from drivers.quad.crazyflie_config import motor_force_n, thrust_u16_for_force
from robot_rl.backends.quadrotor import AttitudeCommand, QuadSpec, ThrustRates, VelocityCommand

STATE_LOG_VARIABLES = (
    ("stateEstimateZ.x", "int16_t"), ("stateEstimateZ.y", "int16_t"), ("stateEstimateZ.z", "int16_t"),
    ("stateEstimateZ.vx", "int16_t"), ("stateEstimateZ.vy", "int16_t"), ("stateEstimateZ.vz", "int16_t"),
    ("stateEstimateZ.quat", "uint32_t"),
    ("stateEstimateZ.rateRoll", "int16_t"), ("stateEstimateZ.ratePitch", "int16_t"),
    ("stateEstimateZ.rateYaw", "int16_t"),
)
BATTERY_LOG_VARIABLE = ("pm.vbat", "float")
#: The supervisor's bitfield (firmware >= 2023.02); the backend logs it when the firmware has it.
SUPERVISOR_LOG_VARIABLE = ("supervisor.info", "uint16_t")
SUPERVISOR_IS_ARMED = 1 << 1
SUPERVISOR_IS_FLYING = 1 << 4
SUPERVISOR_IS_TUMBLED = 1 << 5
SUPERVISOR_IS_LOCKED = 1 << 6
#: Firmware parameters that select what the RPYT packet's roll and pitch mean (0: rate, 1: angle).
FLIGHT_MODE_PARAMS = ("flightmode.stabModeRoll", "flightmode.stabModePitch")
#: Older firmware switches the high-level commander (the onboard landing) on with this parameter.
HIGH_LEVEL_COMMANDER_PARAM = "commander.enHighLevel"


@dataclasses.dataclass(frozen=True)
class RpytSetpoint:
    """The arguments of cflib's ``Commander.send_setpoint(roll, pitch, yawrate, thrust)``.

    Attributes:
        roll, pitch: degrees (angle mode) or degrees/s (rate mode), right-handed about body x and y.
        yawrate_cw_deg_s: yaw rate, clockwise seen from above (cflib's legacy sign).
        thrust_u16: 16-bit thrust command.
    """

    roll: float
    pitch: float
    yawrate_cw_deg_s: float
    thrust_u16: int


@dataclasses.dataclass(frozen=True)
class VelocitySetpoint:
    """The arguments of cflib's ``Commander.send_velocity_world_setpoint(vx, vy, vz, yawrate)``:
    m/s in the world frame and a counter-clockwise yaw rate in degrees/s."""

    vx_m_s: float
    vy_m_s: float
    vz_m_s: float
    yawrate_ccw_deg_s: float


@dataclasses.dataclass(frozen=True)
class StateSample:
    """One decoded state-estimate log packet.

    Attributes:
        time_s: host monotonic time when it arrived.
        timestamp_ms: the Crazyflie's own clock (ms since boot, 24 bits on the wire).
        pos_m, vel_m_s: world frame (z up); quat_wxyz: body (FLU) -> world; body_rates_rad_s: body FLU.
    """

    time_s: float
    timestamp_ms: int
    pos_m: np.ndarray
    quat_wxyz: np.ndarray
    vel_m_s: np.ndarray
    body_rates_rad_s: np.ndarray


def collective_to_thrust_u16(collective_thrust_frac: float, spec: QuadSpec,
                             curve_n: tuple[float, float, float]) -> int:
    """The 16-bit thrust giving each motor ``collective * max_thrust_per_motor_n`` (the contract's thrust is
    linear in force; the firmware's is PWM)."""
    return thrust_u16_for_force(collective_thrust_frac * spec.max_thrust_per_motor_n, curve_n)


def thrust_u16_to_collective(thrust_u16: int, spec: QuadSpec, curve_n: tuple[float, float, float]) -> float:
    """The collective thrust fraction a 16-bit thrust command really asks for."""
    return min(1.0, motor_force_n(thrust_u16, curve_n) / spec.max_thrust_per_motor_n)


def _f32(value: float) -> float:
    """``value`` as the float32 the packet carries."""
    return float(np.float32(value))


def rates_setpoint(command: ThrustRates, spec: QuadSpec, curve_n: tuple[float, float, float]) -> tuple[RpytSetpoint, ThrustRates]:
    """A (clipped) thrust + body-rates command -> the rate-mode RPYT setpoint and the command it really is
    (thrust quantized to the 16-bit command, rates to the packet's float32 degrees)."""
    wx, wy, wz = (math.degrees(v) for v in command.body_rates_rad_s)
    thrust = collective_to_thrust_u16(command.collective_thrust_frac, spec, curve_n)
    setpoint = RpytSetpoint(roll=_f32(wx), pitch=_f32(wy), yawrate_cw_deg_s=_f32(-wz), thrust_u16=thrust)
    sent = ThrustRates(collective_thrust_frac=thrust_u16_to_collective(thrust, spec, curve_n),
                       body_rates_rad_s=np.radians([setpoint.roll, setpoint.pitch, -setpoint.yawrate_cw_deg_s]))
    return setpoint, sent


def attitude_setpoint(command: AttitudeCommand, spec: QuadSpec,
                      curve_n: tuple[float, float, float]) -> tuple[RpytSetpoint, AttitudeCommand]:
    """A (clipped) attitude command -> the angle-mode RPYT setpoint and the command it really is."""
    thrust = collective_to_thrust_u16(command.collective_thrust_frac, spec, curve_n)
    setpoint = RpytSetpoint(roll=_f32(math.degrees(command.roll_rad)), pitch=_f32(math.degrees(command.pitch_rad)),
                            yawrate_cw_deg_s=_f32(-math.degrees(command.yaw_rate_rad_s)), thrust_u16=thrust)
    sent = AttitudeCommand(collective_thrust_frac=thrust_u16_to_collective(thrust, spec, curve_n),
                           roll_rad=math.radians(setpoint.roll), pitch_rad=math.radians(setpoint.pitch),
                           yaw_rate_rad_s=-math.radians(setpoint.yawrate_cw_deg_s))
    return setpoint, sent


def velocity_setpoint(command: VelocityCommand) -> tuple[VelocitySetpoint, VelocityCommand]:
    """A (clipped) world-velocity command -> the velocity-world setpoint and the command it really is."""
    vx, vy, vz = (_f32(v) for v in command.vel_m_s)
    setpoint = VelocitySetpoint(vx, vy, vz, _f32(math.degrees(command.yaw_rate_rad_s)))
    return setpoint, VelocityCommand(vel_m_s=[vx, vy, vz], yaw_rate_rad_s=math.radians(setpoint.yawrate_ccw_deg_s))


def zero_thrust_setpoint() -> RpytSetpoint:
    """All zero: releases the firmware's thrust lock before the first flying setpoint, and stops the motors."""
    return RpytSetpoint(0.0, 0.0, 0.0, 0)


def decode_state(values: Mapping[str, int], time_s: float, timestamp_ms: int) -> StateSample:
    """One ``stateEstimateZ`` log packet (cflib's dict of raw integers) -> SI units, contract frames."""
    from cflib.utils.encoding import decompress_quaternion  # cflib is imported only once connected

    g = "stateEstimateZ."
    x, y, z, w = decompress_quaternion(int(values[g + "quat"]))
    return StateSample(
        time_s=time_s, timestamp_ms=int(timestamp_ms),
        pos_m=np.array([values[g + "x"], values[g + "y"], values[g + "z"]], dtype=np.float64) / 1000.0,
        quat_wxyz=np.array([w, x, y, z], dtype=np.float64),
        vel_m_s=np.array([values[g + "vx"], values[g + "vy"], values[g + "vz"]], dtype=np.float64) / 1000.0,
        body_rates_rad_s=np.array([values[g + "rateRoll"], -values[g + "ratePitch"], values[g + "rateYaw"]],
                                  dtype=np.float64) / 1000.0,
    )
