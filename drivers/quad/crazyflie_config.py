"""Settings of the Crazyflie backend (:mod:`drivers.quad.crazyflie`) and its thrust curve.

Every field can be given to ``robot_rl.make("quad_hover", backend="crazyflie", uri=..., ...)``; the
radio address and the room's geofence belong in a per-rig file, not in code. The defaults describe a
bare Crazyflie 2.1 (27 g) with Förster's identification ("System Identification of the Crazyflie
2.0 Nano Quadrocopter", ETH Zurich 2015, the numbers :mod:`sim.quad.model` also uses): add the mass
of your decks and markers. The geofence default is a small 3 x 3 x 2 m box: set your room's.
"""

from __future__ import annotations

import dataclasses
import math

from robot_rl.backends.checks import check_range
from robot_rl.backends.quadrotor import ATTITUDE, THRUST_RATES, VELOCITY, QuadSpec

#: The Crazyflie's 16-bit thrust command (the RPYT packet's ``thrust``, motor PWM ``0..65535``).
THRUST_U16_MAX = 65535
#: Förster 2015, one motor's static thrust [N] at PWM ``p``: ``a p^2 + b p + c`` (fitted at full battery).
FORSTER_THRUST_CURVE_N = (2.130295e-11, 1.032633e-6, 5.484560e-4)
LEVELS = (THRUST_RATES, ATTITUDE)


def motor_force_n(thrust_u16: float, curve_n: tuple[float, float, float] = FORSTER_THRUST_CURVE_N) -> float:
    """One motor's thrust [N] at the 16-bit command ``thrust_u16`` (``0`` -> ``0``: motors off)."""
    a, b, c = curve_n
    return 0.0 if thrust_u16 <= 0 else a * thrust_u16 ** 2 + b * thrust_u16 + c


def thrust_u16_for_force(force_n: float, curve_n: tuple[float, float, float] = FORSTER_THRUST_CURVE_N) -> int:
    """The 16-bit command whose motor thrust is closest to ``force_n`` [N] (inverse of
    :func:`motor_force_n`): ``0`` at or below the curve's floor ``c``, ``65535`` at or above its top."""
    a, b, c = curve_n
    if force_n <= c:
        return 0
    pwm = (-b + math.sqrt(b * b - 4.0 * a * (c - force_n))) / (2.0 * a)
    return int(min(THRUST_U16_MAX, max(1, round(pwm))))


def _tuple3(owner: object, name: str) -> None:
    value = tuple(float(v) for v in getattr(owner, name))  # a JSON list from --env-kwargs -> tuple
    if len(value) != 3 or not all(math.isfinite(v) for v in value):
        raise ValueError(f"{type(owner).__name__}.{name} must be 3 finite numbers, got {getattr(owner, name)!r}")
    object.__setattr__(owner, name, value)


@dataclasses.dataclass(frozen=True)
class CrazyflieConfig:
    """Attributes:
        uri: the cflib link URI (``radio://0/80/2M/E7E7E7E7E7``, ``usb://0``, ``udp://127.0.0.1:19850``).
        level: the policy's command level, ``"thrust_rates"`` (the quadrotor tasks' action) or
            ``"attitude"``; ``connect()`` writes the firmware parameters ``flightmode.stabModeRoll`` and
            ``stabModePitch`` (0 = rate, 1 = angle) to match, once, so every RPYT packet means one thing.
        velocity_level: also accept world-velocity commands (flown by the firmware's position controller).
        setpoint_hz: rate of the setpoint stream (its own thread), above the 100 Hz the issue asks for
            with margin for a loaded host.
        log_hz, status_hz: rates of the state-estimate and battery/supervisor log blocks (multiples of
            10 ms, cflib's log period unit).
        connect_timeout_s: deadline for the link, the TOCs, the parameters and the first state sample.
        link_timeout_s: no state estimate for this long = the link is lost.
        arm_timeout_s: deadline for the firmware to report "armed" after the arming request.
        mass_kg, arm_length_m, inertia_kg_m2, motor_time_constant_s: the vehicle (spec; the fallback
            controller's model).
        thrust_curve_n: one motor's thrust [N] as ``a p^2 + b p + c`` of the 16-bit command ``p``.
        max_tilt_rad, max_body_rate_rad_s, max_speed_m_s, geofence_low_m, geofence_high_m: the spec's
            limits (world frame: the positioning system's, z up).
        tilt_guard_rad: below the attitude level, a measured tilt beyond this hands control to the
            level-out fallback until the tilt is back within ``max_tilt_rad``.
        watchdog_s: the dead-man: no command for this long -> hold the position.
        deadman_hold_s: hold this long after the dead-man fired, then land.
        min_battery_v, low_battery_dwell_s: below this voltage for this long -> land, refuse to re-arm.
        land_speed_m_s: descent speed of every landing.
        touchdown_height_m: landed = estimated height below this and slower than 0.3 m/s.
        land_timeout_s: ``close()`` waits this long for a landing before it closes anyway.
        reset_tolerance_m, reset_max_speed_m_s, reset_timeout_s: ``set_state`` (the task's reset) flies
            to the start and returns once within the tolerance and slower than the speed, or raises.
        rw_cache: a directory where cflib caches the log/param TOCs (faster reconnects); None: no cache.
    """

    uri: str = "radio://0/80/2M/E7E7E7E7E7"
    level: str = THRUST_RATES
    velocity_level: bool = True
    setpoint_hz: float = 125.0
    log_hz: float = 100.0
    status_hz: float = 10.0
    connect_timeout_s: float = 10.0
    link_timeout_s: float = 0.3
    arm_timeout_s: float = 1.0
    mass_kg: float = 0.027
    arm_length_m: float = 0.046
    inertia_kg_m2: tuple[float, float, float] = (16.571710e-6, 16.655602e-6, 29.261652e-6)
    motor_time_constant_s: float = 0.15
    thrust_curve_n: tuple[float, float, float] = FORSTER_THRUST_CURVE_N
    max_tilt_rad: float = 0.6
    max_body_rate_rad_s: tuple[float, float, float] = (6.0, 6.0, 3.0)
    max_speed_m_s: float = 1.0
    geofence_low_m: tuple[float, float, float] = (-1.5, -1.5, 0.0)
    geofence_high_m: tuple[float, float, float] = (1.5, 1.5, 2.0)
    tilt_guard_rad: float = 1.0
    watchdog_s: float = 0.2
    deadman_hold_s: float = 1.0
    min_battery_v: float = 3.2
    low_battery_dwell_s: float = 0.5
    land_speed_m_s: float = 0.4
    touchdown_height_m: float = 0.05
    land_timeout_s: float = 15.0
    reset_tolerance_m: float = 0.1
    reset_max_speed_m_s: float = 0.2
    reset_timeout_s: float = 15.0
    rw_cache: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or "://" not in self.uri:
            raise ValueError(f"CrazyflieConfig.uri must be a cflib URI like 'radio://0/80/2M/E7E7E7E7E7', got {self.uri!r}")
        if self.level not in LEVELS:
            raise ValueError(f"CrazyflieConfig.level must be one of {LEVELS}, got {self.level!r}")
        for name in ("setpoint_hz", "log_hz", "status_hz", "connect_timeout_s", "link_timeout_s", "arm_timeout_s",
                     "tilt_guard_rad", "deadman_hold_s", "low_battery_dwell_s", "land_speed_m_s",
                     "touchdown_height_m", "land_timeout_s", "reset_tolerance_m", "reset_max_speed_m_s",
                     "reset_timeout_s"):
            check_range(self, name, low=0.0, high=1e6, low_open=True)  # finite: every one feeds a wait
        for name in ("log_hz", "status_hz"):
            period_ms = 1000.0 / getattr(self, name)
            if abs(period_ms / 10.0 - round(period_ms / 10.0)) > 1e-6 or not 10 <= period_ms <= 2540:
                raise ValueError(f"CrazyflieConfig.{name} must make a log period that is a multiple of 10 ms "
                                 f"between 10 and 2540 ms (cflib's unit), got {getattr(self, name)} Hz")
        for name in ("inertia_kg_m2", "thrust_curve_n", "max_body_rate_rad_s", "geofence_low_m", "geofence_high_m"):
            _tuple3(self, name)
        if self.link_timeout_s <= 1.5 / self.log_hz:
            raise ValueError(f"CrazyflieConfig.link_timeout_s must exceed 1.5 log periods "
                             f"({1.5 / self.log_hz:.3f} s), got {self.link_timeout_s}")
        if self.land_speed_m_s > self.max_speed_m_s:
            raise ValueError(f"CrazyflieConfig.land_speed_m_s {self.land_speed_m_s} exceeds max_speed_m_s {self.max_speed_m_s}")
        self.spec()  # QuadSpec checks the rest (tilt range, fence order, can it hover at all)

    @property
    def max_thrust_per_motor_n(self) -> float:
        """One motor's thrust at full command, from the thrust curve."""
        return motor_force_n(THRUST_U16_MAX, self.thrust_curve_n)

    @property
    def command_levels(self) -> tuple[str, ...]:
        return (self.level, VELOCITY) if self.velocity_level else (self.level,)

    def spec(self) -> QuadSpec:
        return QuadSpec(mass_kg=self.mass_kg, arm_length_m=self.arm_length_m, inertia_kg_m2=self.inertia_kg_m2,
                        max_thrust_per_motor_n=self.max_thrust_per_motor_n,
                        motor_time_constant_s=self.motor_time_constant_s, command_levels=self.command_levels,
                        max_tilt_rad=self.max_tilt_rad, max_body_rate_rad_s=self.max_body_rate_rad_s,
                        max_speed_m_s=self.max_speed_m_s, geofence_low_m=self.geofence_low_m,
                        geofence_high_m=self.geofence_high_m, watchdog_s=self.watchdog_s,
                        min_battery_v=self.min_battery_v)
