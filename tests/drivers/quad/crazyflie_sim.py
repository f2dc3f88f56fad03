"""The simulated Crazyflie behind the test peer (:mod:`crazyflie_peer`): a vehicle, and a stand-in for
its firmware.

Vehicle: :mod:`sim.quad.dynamics` (rigid body + first-order motors, RK4, numpy) with
:mod:`sim.quad.model`'s Crazyflie parameters, on a floor at z = 0.

Firmware, as far as a host sees it: the setpoints are decoded with the firmware's own conventions
(``crtp_commander_rpyt.c``: the packet's pitch is legacy nose-up-positive, its yaw rate inverted;
``flightmode.stabModeRoll/Pitch`` select rate (0) or angle (1) mode; the thrust lock wants a
zero-thrust setpoint first; ``crtp_commander_generic.c``: velocity-world, stop, notify-stop; the
high-level commander's land), the commander watchdog (no setpoint for 0.5 s: level out, for 2 s:
motors off), the supervisor (arming, emergency stop, its bitfield) and Förster's PWM -> thrust curve.
The onboard controllers are :mod:`drivers.quad.control`'s cascade (rate PID at 100 Hz + mixer).
"""

from __future__ import annotations

import math
import threading
from typing import Any, NamedTuple

import numpy as np

from drivers.quad.control import QuadController
from drivers.quad.rotations import cos_tilt_arrays, yaw_arrays
from sim.quad.dynamics import BodyParams, RigidState, rk4_step_arrays
from sim.quad.model import QuadPhysics

PWM_TO_THRUST_N = (2.130295e-11, 1.032633e-6, 5.484560e-4)  # Förster 2015, one motor at full battery
WATCHDOG_LEVEL_S, WATCHDOG_SHUTDOWN_S = 0.5, 2.0  # the firmware's COMMANDER_WDT_TIMEOUT_{STABILIZE,SHUTDOWN}
RATE_LOOP_DT_S = 0.01  # the firmware's rate loop runs at 500 Hz; 100 Hz (the cascade flies at both) is lighter
BIT_CAN_BE_ARMED, BIT_ARMED, BIT_CAN_FLY, BIT_FLYING, BIT_TUMBLED, BIT_LOCKED = 1, 2, 8, 16, 32, 64


class Setpoint(NamedTuple):
    """A decoded setpoint: ``kind`` (``rpyt``, ``velocity``, ``stop``, ``land``), raw values, arrival time."""

    kind: str
    values: tuple
    time_s: float


def pwm_thrust_n(pwm: float) -> float:
    a, b, c = PWM_TO_THRUST_N
    return 0.0 if pwm <= 0 else a * pwm * pwm + b * pwm + c


class SimulatedCrazyflie:
    """One simulated vehicle; every method takes the lock (the peer's thread and the test's share it)."""

    def __init__(self, physics: QuadPhysics | None = None, battery_v: float = 4.0) -> None:
        self.physics = physics or QuadPhysics()
        p = self.physics
        self.params = BodyParams(p.mass_kg, np.array(p.inertia_kg_m2), p.motor_time_constant_s, p.linear_drag_n_s_m,
                                 np.zeros(3), np.zeros(3), p.arm_length_m, p.yaw_torque_per_thrust_m)
        self.controller = QuadController.from_spec(p.spec(), p.yaw_torque_per_thrust_m)
        self.lock = threading.RLock()
        self.flight_params = {"flightmode.stabModeRoll": 1, "flightmode.stabModePitch": 1,
                              "flightmode.stabModeYaw": 0, "commander.enHighLevel": 0}
        self.battery_v = battery_v
        self.armed = self.locked = False
        self.thrust_locked = True
        self.setpoint: Setpoint | None = None
        self.received: list[Setpoint] = []  # every setpoint packet, in order
        self.notify_stops: list[float] = []
        self.place(np.zeros(3))
        self._integral, self._prev_rates = np.zeros(3), None
        self.motors_on = False
        self.frozen = False  # on a test stand: the state stays as placed (decoding tests)

    # ------------------------------------------------------------------ test helpers
    def place(self, pos_m: Any, quat_wxyz: Any = (1.0, 0.0, 0.0, 0.0), vel_m_s: Any = (0.0, 0.0, 0.0),
              rates_rad_s: Any = (0.0, 0.0, 0.0)) -> None:
        """Move the vehicle (world frame; rates body FLU); motors at hover thrust when in the air."""
        with self.lock:
            hover_n = self.physics.mass_kg * 9.80665 / 4.0 if pos_m[2] > 0 else 0.0
            self.state = RigidState(np.array(pos_m, dtype=float), np.array(quat_wxyz, dtype=float),
                                    np.array(vel_m_s, dtype=float), np.array(rates_rad_s, dtype=float),
                                    np.full(4, hover_n))

    def snapshot(self) -> RigidState:
        with self.lock:
            return RigidState(*(np.array(part, copy=True) for part in self.state))

    def count(self, kind: str, since_s: float = -math.inf) -> int:
        with self.lock:
            return sum(1 for s in self.received if s.kind == kind and s.time_s >= since_s)

    # ------------------------------------------------------------------ packets (the peer's thread)
    def receive(self, kind: str, values: tuple, now_s: float) -> None:
        with self.lock:
            setpoint = Setpoint(kind, values, now_s)
            self.received.append(setpoint)
            if kind == "rpyt" and values[3] == 0:
                self.thrust_locked = False
            if kind == "land" and self.flight_params["commander.enHighLevel"] != 1:
                return  # the high-level commander is off: the packet is ignored
            self.setpoint = setpoint

    def notify_stop(self, now_s: float) -> None:
        with self.lock:
            self.notify_stops.append(now_s)

    def arm(self, do_arm: bool) -> bool:
        with self.lock:
            if not self.locked:
                self.armed = bool(do_arm)
            return self.armed

    def emergency_stop(self) -> None:
        with self.lock:
            self.locked, self.armed = True, False

    def supervisor_info(self) -> int:
        with self.lock:
            bits = 0 if self.locked else BIT_CAN_BE_ARMED
            bits |= (BIT_ARMED | BIT_CAN_FLY) if self.armed else 0
            bits |= BIT_FLYING if self.motors_on else 0
            bits |= BIT_TUMBLED if cos_tilt_arrays(self.state.quat_wxyz, np) < 0 else 0
            return bits | (BIT_LOCKED if self.locked else 0)

    # ------------------------------------------------------------------ the firmware's control
    def _targets(self, now_s: float) -> tuple[float, np.ndarray] | None:
        """``(collective_thrust_frac, body_rates_target_rad_s FLU)``, or None: motors off."""
        sp = self.setpoint
        if sp is None or self.locked or not self.armed or sp.kind == "stop":
            return None
        age_s = now_s - sp.time_s
        if sp.kind == "land":
            return self._land(sp)
        if age_s > WATCHDOG_SHUTDOWN_S:
            return None
        s = self.state
        if sp.kind == "velocity":
            vx, vy, vz, yawrate_deg_s = sp.values if age_s <= WATCHDOG_LEVEL_S else (0.0, 0.0, 0.0, 0.0)
            return self.controller.velocity_to_thrust_rates(np.array([vx, vy, vz]), math.radians(yawrate_deg_s),
                                                            s.vel_m_s, s.quat_wxyz, np)
        roll, pitch, yaw, thrust = sp.values
        if self.thrust_locked or thrust == 0:
            return None
        collective = pwm_thrust_n(thrust) / self.physics.max_thrust_per_motor_n
        if age_s > WATCHDOG_LEVEL_S:  # the watchdog levels it out: angle mode, zero angles and yaw rate
            return collective, self.controller.attitude_to_rates(s.quat_wxyz, 0.0, 0.0, 0.0, np)
        yaw_rate = math.radians(-yaw)  # "legacy rate input is inverted"; the PID then compares with gyro.z
        # angle mode: attitude.roll/pitch are the packet's; the legacy pitch is nose-up-positive
        angles = self.controller.attitude_to_rates(s.quat_wxyz, math.radians(roll), math.radians(-pitch), yaw_rate, np)
        # rate mode: attitudeRate.roll vs gyro.x, attitudeRate.pitch vs -gyro.y
        rates = np.array([math.radians(roll), math.radians(-pitch), yaw_rate])
        rate_mode = (self.flight_params["flightmode.stabModeRoll"] == 0, self.flight_params["flightmode.stabModePitch"] == 0)
        return collective, np.array([rates[0] if rate_mode[0] else angles[0], rates[1] if rate_mode[1] else angles[1],
                                     yaw_rate])

    def _land(self, sp: Setpoint) -> tuple[float, np.ndarray] | None:
        """The high-level commander's land: descend to the height over the duration, then stop."""
        height_m, _yaw, _use_current, duration_s = sp.values
        s = self.state
        if s.pos_m[2] <= height_m + 0.02:
            return None
        speed = max(0.2, (s.pos_m[2] - height_m) / max(duration_s, 0.1))
        return self.controller.velocity_to_thrust_rates(np.array([0.0, 0.0, -speed]), 0.0, s.vel_m_s, s.quat_wxyz, np)

    def advance(self, dt_s: float, now_s: float) -> None:
        """Integrate ``dt_s`` of flight (rate loop and RK4 at 100 Hz) under the newest setpoint."""
        with self.lock:
            for _ in range(0 if self.frozen else max(1, round(dt_s / RATE_LOOP_DT_S))):
                self._step(now_s)

    def _step(self, now_s: float) -> None:
        targets = self._targets(now_s)
        s = self.state
        if targets is None:
            thrust_cmd_n, self._integral, self._prev_rates = np.zeros(4), np.zeros(3), None
        else:
            collective, rates_target = targets
            prev = s.rates_rad_s if self._prev_rates is None else self._prev_rates
            torque, self._integral = self.controller.rates_to_torque(rates_target, s.rates_rad_s, np, self._integral,
                                                                     prev, RATE_LOOP_DT_S)
            self._prev_rates = s.rates_rad_s.copy()
            thrust_cmd_n = self.controller.motor_fractions(collective, torque, np) * self.physics.max_thrust_per_motor_n
        self.motors_on = bool(np.any(thrust_cmd_n > 0))
        self.state = self._floor(rk4_step_arrays(s, thrust_cmd_n, self.params, RATE_LOOP_DT_S, np))

    def _floor(self, s: RigidState) -> RigidState:
        """A flat floor at z = 0: no sinking; resting on it without enough thrust to lift, it sits level."""
        if s.pos_m[2] > 0:
            return s
        pos, vel = s.pos_m.copy(), s.vel_m_s.copy()
        pos[2], vel[2] = 0.0, max(0.0, vel[2])
        if float(np.sum(s.thrust_n)) < self.physics.mass_kg * 9.80665:
            half_yaw = 0.5 * float(yaw_arrays(s.quat_wxyz, np))
            return RigidState(pos, np.array([math.cos(half_yaw), 0.0, 0.0, math.sin(half_yaw)]), np.zeros(3),
                              np.zeros(3), s.thrust_n)
        return RigidState(pos, s.quat_wxyz, vel, s.rates_rad_s, s.thrust_n)
