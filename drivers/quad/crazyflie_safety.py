"""What the Crazyflie is sent at every tick of the setpoint stream: the policy's command or a fallback.

:class:`FlightSupervisor` holds the flight mode and decides, from the newest state estimate and
battery voltage, what the stream sends (no cflib, no threads: the backend calls it under its lock)::

    IDLE     disarmed: nothing is streamed (motors off)
    FLYING   the policy's newest command (already clipped by clip_quad_command)
    HOLD     hold a position: the dead-man (no command for spec.watchdog_s), the tilt guard, after a reset
    FLY_TO   fly to a position (quad_hover's reset on a real drone)
    LANDING  descend at land_speed_m_s; touchdown -> cut the motors, IDLE
    LOST     the link is gone: nothing can be sent (the backend asked the firmware to land itself)
    LOCKED   emergency-stopped: the firmware must be restarted

Fallbacks are flown by :mod:`drivers.quad.control`'s cascade on the host (position -> velocity ->
thrust + rates, or attitude), at the level of the policy's last command, so ``command()`` can return
the fallback it really sent at the level it was asked for. Rules, checked at every tick:

* dead-man: FLYING and no command for ``watchdog_s`` -> HOLD where it is; a HOLD without commands
  for ``deadman_hold_s`` -> LANDING. A fresh command resumes FLYING.
* tilt guard (thrust + rates only; attitude commands are tilt-limited by clip_quad_command):
  FLYING with a measured tilt beyond ``tilt_guard_rad`` -> HOLD (levels out); resumes once the tilt
  is back within ``max_tilt_rad``.
* geofence (below the velocity level; velocity commands are fenced by clip_quad_command): FLYING
  outside the fence -> LANDING, not resumable before touchdown.
* battery: below ``min_battery_v`` for ``low_battery_dwell_s`` -> LANDING, never resumable, and
  arming is refused afterwards.
* ``stop()``: LANDING (resumable by a command); on the ground: cut the motors now.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Callable

import numpy as np

from drivers.quad.control import QuadController, velocity_to_attitude_arrays
from drivers.quad.crazyflie_config import CrazyflieConfig
from drivers.quad.rotations import cos_tilt_arrays
from robot_rl.backends.quadrotor import (
    ATTITUDE,
    THRUST_RATES,
    VELOCITY,
    AttitudeCommand,
    QuadCommand,
    QuadSpec,
    QuadState,
    ThrustRates,
    VelocityCommand,
    clip_quad_command,
    inside_geofence,
)
from robot_rl.backends.watchdog import CommandWatchdog

LANDED_MAX_SPEED_M_S = 0.3


class Mode(str, enum.Enum):
    IDLE = "idle"
    FLYING = "flying"
    HOLD = "hold"
    FLY_TO = "fly_to"
    LANDING = "landing"
    LOST = "lost"
    LOCKED = "locked"


class Release(str, enum.Enum):
    """When a fallback gives control back to the policy's commands."""

    COMMAND = "command"      # the next command
    LEVEL = "level"          # the next command once the tilt is within max_tilt_rad
    TOUCHDOWN = "touchdown"  # not before it has landed
    NEVER = "never"          # not at all (low battery)


@dataclasses.dataclass(frozen=True)
class Override:
    """A fallback in force: ``mode`` (HOLD, FLY_TO, LANDING), why, since when, where to (world frame)."""

    mode: Mode
    reason: str
    since_s: float
    release: Release
    target_m: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the stream does this tick: send ``command`` (None: nothing), and/or ``cut`` the motors."""

    mode: Mode
    command: QuadCommand | None = None
    cut: bool = False


class FlightSupervisor:
    """The flight mode and its rules (module docstring). ``clock``: monotonic seconds."""

    def __init__(self, spec: QuadSpec, config: CrazyflieConfig, clock: Callable[[], float]) -> None:
        self.spec, self.config, self._clock = spec, config, clock
        self.controller = QuadController.from_spec(spec)
        self.watchdog = CommandWatchdog(spec.watchdog_s, clock)
        self.mode = Mode.IDLE
        self.level = config.level
        self.policy: QuadCommand | None = None
        self.override: Override | None = None
        self.battery_low = False
        self.events: list[str] = []  # why the mode changed, newest last
        self._low_since_s: float | None = None

    # ------------------------------------------------------------------ requests (user thread)
    @property
    def armed(self) -> bool:
        return self.mode not in (Mode.IDLE, Mode.LOST, Mode.LOCKED)

    def on_command(self, executed: QuadCommand, state: QuadState) -> bool:
        """A fresh (clipped) policy command; True when it is what the stream now sends."""
        self.watchdog.feed()
        self.level, self.policy = executed.level, executed
        if self.override is not None and not self._releasable(state):
            return False
        if self.mode is not Mode.FLYING:
            self._enter(Mode.FLYING, "a command")
        self.override = None
        return True

    def stop(self, reason: str) -> Decision:
        """Land (resumable by a command); when disarmed, cut the motors."""
        if not self.armed:
            return Decision(self.mode, cut=self.mode is Mode.IDLE)
        if self.mode is not Mode.LANDING:
            self._override(Mode.LANDING, reason, Release.COMMAND)
        return Decision(self.mode)

    def fly_to(self, target_m: np.ndarray, reason: str) -> None:
        if self.battery_low:
            raise RuntimeError(f"Crazyflie: battery below {self.spec.min_battery_v} V; it lands and will not fly again "
                               f"until the battery is swapped")
        self._override(Mode.FLY_TO, reason, Release.COMMAND, np.asarray(target_m, dtype=np.float64))

    def hold(self, target_m: np.ndarray, reason: str, release: Release = Release.COMMAND) -> None:
        self._override(Mode.HOLD, reason, release, np.asarray(target_m, dtype=np.float64))

    def lose(self, reason: str) -> None:
        self._enter(Mode.LOST, reason)

    def lock(self, reason: str) -> None:
        self.override = None
        self._enter(Mode.LOCKED, reason)

    # ------------------------------------------------------------------ the stream's tick
    def tick(self, state: QuadState) -> Decision:
        """Apply the rules to the newest state; what to send now."""
        if not self.armed:
            return Decision(self.mode)
        self._check_battery(state)
        if self.mode is Mode.FLYING:
            self._check_flying(state)
        elif self.mode is Mode.HOLD and self.watchdog.expired() and \
                self._clock() - self.override.since_s >= self.config.deadman_hold_s:
            self._override(Mode.LANDING, f"dead-man: held {self.config.deadman_hold_s} s without a command",
                           Release.COMMAND)
        if self.mode is Mode.LANDING and self._touched_down(state):
            self.override = None
            self._enter(Mode.IDLE, "touchdown")
            return Decision(self.mode, cut=True)
        if self.mode is Mode.FLYING:
            return Decision(self.mode, self.policy)
        return Decision(self.mode, self.fallback(state))

    def _check_flying(self, state: QuadState) -> None:
        if self.watchdog.expired():
            self.hold(state.pos_m, f"dead-man: no command for {self.watchdog.age_s():.2f} s "
                                   f"(watchdog {self.spec.watchdog_s} s)")
        elif self.level != VELOCITY and not inside_geofence(self.spec, state.pos_m):
            self._override(Mode.LANDING, f"left the geofence at {np.round(state.pos_m, 3).tolist()} m",
                           Release.TOUCHDOWN)
        elif self.level == THRUST_RATES and _tilt_rad(state) > self.config.tilt_guard_rad:
            self.hold(state.pos_m, f"tilt guard: tilted {math.degrees(_tilt_rad(state)):.0f} deg", Release.LEVEL)

    def _check_battery(self, state: QuadState) -> None:
        volts = state.battery_v
        if math.isnan(volts) or volts >= self.spec.min_battery_v:
            self._low_since_s = None
            return
        now = self._clock()
        self._low_since_s = now if self._low_since_s is None else self._low_since_s
        if now - self._low_since_s >= self.config.low_battery_dwell_s and not self.battery_low:
            self.battery_low = True
            self._override(Mode.LANDING, f"battery {volts:.2f} V below {self.spec.min_battery_v} V", Release.NEVER)

    def _touched_down(self, state: QuadState) -> bool:
        return bool(state.pos_m[2] <= self.config.touchdown_height_m and
                    np.linalg.norm(state.vel_m_s) < LANDED_MAX_SPEED_M_S)

    def _releasable(self, state: QuadState) -> bool:
        release = self.override.release
        return release is Release.COMMAND or (release is Release.LEVEL and _tilt_rad(state) <= self.spec.max_tilt_rad)

    # ------------------------------------------------------------------ fallbacks (host-side cascade)
    def fallback(self, state: QuadState, level: str | None = None) -> QuadCommand:
        """The fallback in force, at ``level`` (default: the policy's last level), clipped."""
        override = self.override
        if override is None or override.mode is Mode.LANDING:
            vel_target = np.array([0.0, 0.0, -self.config.land_speed_m_s])
        else:
            vel_target = self.controller.position_to_velocity(state.pos_m, override.target_m, np)
        return clip_quad_command(self._at_level(vel_target, state, level or self.level), self.spec, state)

    def _at_level(self, vel_target_m_s: np.ndarray, state: QuadState, level: str) -> QuadCommand:
        ctl = self.controller
        if level == THRUST_RATES:
            collective, rates = ctl.velocity_to_thrust_rates(vel_target_m_s, 0.0, state.vel_m_s, state.quat_wxyz, np)
            return ThrustRates(collective_thrust_frac=float(collective), body_rates_rad_s=rates)
        if level == ATTITUDE:
            collective, roll, pitch = velocity_to_attitude_arrays(
                vel_target_m_s, state.vel_m_s, state.quat_wxyz, ctl.mass_kg, ctl.max_total_thrust_n,
                ctl.gains.velocity_p_per_s, ctl.max_tilt_rad, np)
            return AttitudeCommand(collective_thrust_frac=float(collective), roll_rad=float(roll),
                                   pitch_rad=float(pitch), yaw_rate_rad_s=0.0)
        return VelocityCommand(vel_m_s=vel_target_m_s, yaw_rate_rad_s=0.0)

    # ------------------------------------------------------------------ bookkeeping
    def _override(self, mode: Mode, reason: str, release: Release, target_m: np.ndarray | None = None) -> None:
        if self.override is not None and self.override.release is Release.NEVER:
            release = Release.NEVER  # a low-battery landing stays one
        self.override = Override(mode, reason, self._clock(), release, target_m)
        self._enter(mode, reason)

    def _enter(self, mode: Mode, reason: str) -> None:
        if mode is not self.mode:
            self.events.append(f"{self.mode.value} -> {mode.value}: {reason}")
            del self.events[:-50]
        self.mode = mode


def _tilt_rad(state: QuadState) -> float:
    return math.acos(float(np.clip(cos_tilt_arrays(state.quat_wxyz, np), -1.0, 1.0)))
