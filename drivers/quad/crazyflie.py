"""A real Crazyflie 2.x as a :class:`~robot_rl.backends.quadrotor.QuadBackend`, through cflib.

What it supports:

* **Command levels**: ``thrust_rates`` (the quadrotor tasks' action) *or* ``attitude`` -- one per
  connection, chosen by ``CrazyflieConfig.level`` and written to the firmware's ``flightmode``
  parameters at ``connect()`` -- plus ``velocity`` (``velocity_level=True``; the firmware's position
  controller flies it). All go through cflib's ``Commander`` (the RPYT packet, the generic
  velocity-world packet). **Motor level is not supported**: the stock firmware has no motor-level
  setpoint packet; its ``motorPowerSet`` parameters are a bench-test path written one acknowledged
  parameter at a time, neither fast enough for 100 Hz nor guarded by the firmware's commander watchdog.
* **Setpoints** are streamed by the backend's own thread at ``setpoint_hz`` (125 Hz) whatever the
  policy's rate; ``command()`` only replaces what the stream sends and returns what it really sends
  (clipped by :func:`~robot_rl.backends.quadrotor.clip_quad_command`, thrust quantized to the 16-bit
  command, or the fallback in force, at the level asked for).
* **State**: the firmware's state estimate (``stateEstimateZ``: position, velocity, compressed
  quaternion, body rates) logged at ``log_hz`` (100 Hz) in one block; battery voltage and the
  supervisor's bitfield at ``status_hz``. ``read_state()`` gives the newest sample. A position
  source (Flow deck, Lighthouse, Loco, motion capture) is needed: the fallbacks fly on it.
* **Arming**: ``connect()`` leaves it disarmed; the first ``command()`` (or ``set_state``) sends the
  supervisor's arming request, waits for "armed" in ``supervisor.info``, then a zero-thrust setpoint
  (the firmware's thrust lock wants one before any thrust). Every touchdown (and ``stop()`` on the
  ground) sends the STOP setpoint and a disarming request; the next command re-arms.
* **Link**: ``link_status()`` reports cflib's latency (its echo pings), the radio's link quality
  (``nan`` on links without one, e.g. ``udp://``), the measured log and setpoint rates, the age of
  the newest sample, the battery and the supervisor bits.
* **Safety**: the rules of :mod:`drivers.quad.crazyflie_safety` (dead-man after ``watchdog_s``,
  tilt guard, geofence, low battery), ``stop()`` lands (on the ground: cuts the motors),
  ``emergency_stop()`` cuts the motors now and locks the firmware, ``close()`` lands before it
  closes (cflib's ``close_link`` ends with a zero-thrust setpoint). If the link is lost -- cflib
  reports it, or no state estimate for ``link_timeout_s`` -- the stream stops, the backend asks the
  firmware's high-level commander to land on its own (it arrives if the uplink still works), and every
  later call raises :class:`CrazyflieLinkLost` with the reason; without that, the firmware's own
  commander watchdog levels the drone after 0.5 s and stops its motors after 2 s.
* **Reset**: a real drone cannot be placed. ``set_state`` (what ``quad_hover``'s reset calls) takes
  off if needed and flies to the requested position with the host-side position controller, level and
  at rest; the requested attitude, velocity and rates are not reproduced (logged once).
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
from typing import Any

import numpy as np

from drivers.quad import fly_to_start
from drivers.quad.crazyflie_config import CrazyflieConfig
from drivers.quad.crazyflie_link import CrazyflieLink, CrazyflieLinkStatus, RateMeter, wait_until
from drivers.quad.crazyflie_protocol import (
    attitude_setpoint,
    rates_setpoint,
    velocity_setpoint,
    zero_thrust_setpoint,
)
from drivers.quad.crazyflie_safety import Decision, FlightSupervisor, Mode
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.quadrotor import (
    AttitudeCommand,
    MotorThrusts,
    QuadCommand,
    QuadSpec,
    QuadState,
    ThrustRates,
    clip_quad_command,
)
from robot_rl.rate import Rate

log = logging.getLogger(__name__)
MOTOR_LEVEL_UNSUPPORTED = (
    "the Crazyflie backend cannot send motor-level commands: the stock firmware has no motor-level setpoint "
    "packet (its motorPowerSet parameters are a bench-test path, one acknowledged parameter write per motor, "
    "too slow for 100 Hz and outside the commander's watchdog); use thrust_rates or attitude")


class CrazyflieLinkLost(ConnectionError):
    """The link to the Crazyflie went away; the message says why and what the drone does now."""


class CrazyflieBackend(ConnectOnEnter):
    """The Crazyflie (module docstring). Nothing happens in ``__init__``.

    Args:
        config: its settings (URI, rates, limits).
        cf: a cflib ``Crazyflie`` to use (e.g. with a TOC cache); None: one is made on ``connect()``.
    """

    family = "quadrotor"

    def __init__(self, config: CrazyflieConfig | None = None, cf: Any = None) -> None:
        self.config = config or CrazyflieConfig()
        self._spec = self.config.spec()
        self._cf = cf
        self._link: CrazyflieLink | None = None
        self._supervisor: FlightSupervisor | None = None
        self._lock = threading.RLock()
        self._stream_stop = threading.Event()
        self._stream: threading.Thread | None = None
        self._rate: Rate | None = None
        self._sent = 0
        self._meters = (RateMeter(), RateMeter())  # state samples, setpoints
        self._reset_notice = fly_to_start.ResetNotice(log, f"Crazyflie at {self.config.uri}")

    @property
    def spec(self) -> QuadSpec:
        return self._spec

    @property
    def connected(self) -> bool:
        return self._link is not None

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the link, set the flight mode, start logging and the setpoint stream; disarmed."""
        if self._link is not None:
            return
        link = CrazyflieLink(self.config, self._cf)
        link.open()
        self._link, self._sent = link, 0
        self._supervisor = FlightSupervisor(self._spec, self.config, time.monotonic)
        self._stream_stop.clear()
        self._stream = threading.Thread(target=self._stream_loop, name=f"crazyflie setpoints {self.config.uri}",
                                        daemon=True)
        self._stream.start()
        atexit.register(self.close)  # a script that ends without close() still lands (the stream runs until then)

    def close(self) -> None:
        """Land if flying (up to ``land_timeout_s``), stop the stream, close the link."""
        link, supervisor = self._link, self._supervisor
        if link is None:
            return
        atexit.unregister(self.close)
        if supervisor.armed and link.lost_reason is None:
            self.stop()
            if not wait_until(lambda: not supervisor.armed, self.config.land_timeout_s):
                log.error("Crazyflie at %s: landing did not finish within %s s; closing anyway (motors stop)",
                          self.config.uri, self.config.land_timeout_s)
        self._stream_stop.set()
        if self._stream is not None:
            self._stream.join(timeout=2.0)
        self._stream = None
        self._link = None
        link.close()

    # ------------------------------------------------------------------ state
    def _require(self) -> tuple[CrazyflieLink, FlightSupervisor]:
        if self._link is None:
            raise RuntimeError(f"Crazyflie at {self.config.uri} is not connected: call connect() first")
        if self._link.lost_reason is not None:  # set by cflib's callback or by the stream's own check
            raise CrazyflieLinkLost(self._lost_message())
        return self._link, self._supervisor

    def _lost_message(self) -> str:
        return (f"Crazyflie at {self.config.uri}: link lost ({self._link.lost_reason}). The backend stopped "
                f"streaming and asked the firmware to land on its own; if that request did not get through, the "
                f"firmware levels the drone after 0.5 s without setpoints and stops its motors after 2 s.")

    def read_state(self) -> QuadState:
        """The newest state estimate (world frame z up, body FLU), battery voltage and armed flag."""
        link, supervisor = self._require()
        return self._state(link, supervisor)

    def _state(self, link: CrazyflieLink, supervisor: FlightSupervisor) -> QuadState:
        sample = link.state
        return QuadState(time_s=sample.time_s, pos_m=sample.pos_m, quat_wxyz=sample.quat_wxyz, vel_m_s=sample.vel_m_s,
                         body_rates_rad_s=sample.body_rates_rad_s, armed=supervisor.armed, battery_v=link.battery_v)

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        """No camera is streamed over the Crazyflie's radio (``spec.render_cameras`` is empty)."""
        raise KeyError(f"the Crazyflie backend has no cameras (an AI-deck's stream is not read here); got {camera!r}")

    def link_status(self) -> CrazyflieLinkStatus:
        link, supervisor = self._link, self._supervisor
        if link is None:
            raise RuntimeError(f"Crazyflie at {self.config.uri} is not connected")
        age = time.monotonic() - link.state.time_s if link.state is not None else math.inf
        return CrazyflieLinkStatus(
            mode=supervisor.mode.value, lost_reason=link.lost_reason, latency_ms=link.latency_ms,
            radio_link_quality=link.radio_link_quality, state_rate_hz=self._meters[0].hz(),
            setpoint_rate_hz=self._meters[1].hz(), state_age_s=age, battery_v=link.battery_v,
            supervisor_info=link.supervisor_info, events=tuple(supervisor.events))

    # ------------------------------------------------------------------ commands
    def command(self, command: QuadCommand) -> QuadCommand:
        """Clip, arm if disarmed, and have the stream send it; returns what the stream really sends."""
        if isinstance(command, MotorThrusts):
            raise NotImplementedError(MOTOR_LEVEL_UNSUPPORTED)
        link, supervisor = self._require()
        self._refuse_if(supervisor)
        executed = self._quantized(clip_quad_command(command, self._spec, self._state(link, supervisor)))
        if not supervisor.armed:
            self._arm(link, supervisor)
        with self._lock:
            state = self._state(link, supervisor)
            if supervisor.on_command(executed, state):
                return executed
            return self._quantized(supervisor.fallback(state, executed.level))

    def _refuse_if(self, supervisor: FlightSupervisor) -> None:
        if supervisor.mode is Mode.LOCKED:
            raise RuntimeError(f"Crazyflie at {self.config.uri} was emergency-stopped: restart it and reconnect")
        if supervisor.battery_low and not supervisor.armed:
            raise RuntimeError(f"Crazyflie at {self.config.uri}: battery {self._link.battery_v:.2f} V below "
                               f"{self._spec.min_battery_v} V; it landed and will not arm again: swap the battery")

    def _quantized(self, command: QuadCommand) -> QuadCommand:
        """The command as the packet carries it (see :mod:`drivers.quad.crazyflie_protocol`)."""
        if isinstance(command, ThrustRates):
            return rates_setpoint(command, self._spec, self.config.thrust_curve_n)[1]
        if isinstance(command, AttitudeCommand):
            return attitude_setpoint(command, self._spec, self.config.thrust_curve_n)[1]
        return velocity_setpoint(command)[1]

    def _arm(self, link: CrazyflieLink, supervisor: FlightSupervisor) -> None:
        link.arm()
        link.send_rpyt(zero_thrust_setpoint())  # releases the firmware's thrust lock

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (:class:`robot_rl.rate.Rate`)."""
        if self._rate is None or not math.isclose(self._rate.period, period_s):
            self._rate = Rate(1.0 / period_s)
        self._rate.sleep()

    def stop(self) -> None:
        """Land and disarm on touchdown; on the ground (disarmed) cut the motors now. Commands resume.
        With the link lost there is nothing to send (the onboard landing was requested): it only logs."""
        if self._link is not None and self._link.lost_reason is not None:
            log.warning("Crazyflie at %s: stop() with the link lost: %s", self.config.uri, self._link.lost_reason)
            return
        link, supervisor = self._require()
        with self._lock:
            decision = supervisor.stop("stop()")
        if decision.cut:
            link.cut_motors(disarm=True)

    def emergency_stop(self) -> None:
        """Motors off now (the drone falls) and the firmware locked until restarted; for a human's kill switch.
        Sent even when the link counts as lost (the uplink may still work)."""
        link, supervisor = self._link, self._supervisor
        if link is None:
            raise RuntimeError(f"Crazyflie at {self.config.uri} is not connected")
        with self._lock:
            supervisor.lock("emergency_stop()")
        link.emergency_stop()
        link.cut_motors()

    def set_state(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, vel_m_s: np.ndarray,
                  body_rates_rad_s: np.ndarray) -> None:
        """The task's reset on a real drone: fly to ``pos_m`` (world frame), level and at rest, taking off if
        needed; ``quat_wxyz``, ``vel_m_s`` and ``body_rates_rad_s`` are not reproduced. Returns once within
        ``reset_tolerance_m`` and slower than ``reset_max_speed_m_s`` (then holds there until a command);
        raises TimeoutError after ``reset_timeout_s`` (holding where it is)."""
        link, supervisor = self._require()
        target = fly_to_start.checked_start_m(self._spec, pos_m)
        self._reset_notice.warn_once()
        self._refuse_if(supervisor)
        if not supervisor.armed:
            self._arm(link, supervisor)
        with self._lock:
            supervisor.fly_to(target, f"reset: fly to {np.round(target, 3).tolist()} m")
        arrived = wait_until(lambda: supervisor.mode is not Mode.FLY_TO or self._arrived(link, target),
                             self.config.reset_timeout_s)
        with self._lock:
            if link.lost_reason is not None:
                raise CrazyflieLinkLost(self._lost_message())
            if supervisor.mode is not Mode.FLY_TO:
                raise RuntimeError(f"set_state: the flight to the start was interrupted ({supervisor.events[-1]})")
            if not arrived:
                supervisor.hold(link.state.pos_m, "reset timed out")
                raise TimeoutError(f"set_state: not within {self.config.reset_tolerance_m} m of "
                                   f"{target.tolist()} after {self.config.reset_timeout_s} s")
            supervisor.hold(target, "reset: at the start, waiting for the first command")

    def _arrived(self, link: CrazyflieLink, target: np.ndarray) -> bool:
        sample = link.state
        return fly_to_start.arrived(sample.pos_m, sample.vel_m_s, target, self.config.reset_tolerance_m,
                                    self.config.reset_max_speed_m_s)

    # ------------------------------------------------------------------ the stream (its own thread)
    def _stream_loop(self) -> None:
        rate = Rate(self.config.setpoint_hz)
        while not self._stream_stop.is_set():
            try:
                if not self._tick():
                    return
            except Exception:  # the stream must not die silently: report, land through the firmware
                log.exception("Crazyflie setpoint stream failed")
                self._lose("the setpoint stream failed (see the log)")
                return
            rate.sleep()

    def _tick(self) -> bool:
        link, supervisor = self._link, self._supervisor
        now = time.monotonic()
        self._meters[0].record(now, link.state_count)
        self._meters[1].record(now, self._sent)
        age = now - link.state.time_s
        if link.lost_reason or age > self.config.link_timeout_s:
            self._lose(link.lost_reason or f"no state estimate for {age:.2f} s "
                                           f"(link_timeout_s {self.config.link_timeout_s})")
            return False
        with self._lock:
            decision = supervisor.tick(self._state(link, supervisor))
        self._send(link, decision)
        return True

    def _send(self, link: CrazyflieLink, decision: Decision) -> None:
        command = decision.command
        if isinstance(command, ThrustRates):
            link.send_rpyt(rates_setpoint(command, self._spec, self.config.thrust_curve_n)[0])
        elif isinstance(command, AttitudeCommand):
            link.send_rpyt(attitude_setpoint(command, self._spec, self.config.thrust_curve_n)[0])
        elif command is not None:
            link.send_velocity(velocity_setpoint(command)[0])
        if command is not None:
            self._sent += 1
        if decision.cut:
            link.cut_motors(disarm=True)

    def _lose(self, reason: str) -> None:
        link, supervisor = self._link, self._supervisor
        with self._lock:
            was_armed = supervisor.armed
            link.lost_reason = link.lost_reason or reason
            supervisor.lose(reason)
        log.error("Crazyflie at %s: link lost (%s)", self.config.uri, reason)
        if was_armed and link.cf is not None and link.cf.link is not None:
            height_m = max(0.0, float(link.state.pos_m[2]))
            try:
                link.land_onboard(height_m / self.config.land_speed_m_s + 1.0)
            except Exception as err:  # best effort: the link may be gone for sending too
                log.error("Crazyflie at %s: could not request the onboard landing: %s", self.config.uri, err)


def make_backend(task, obs: str, **options) -> CrazyflieBackend:
    """Registry entry point: options are :class:`~drivers.quad.crazyflie_config.CrazyflieConfig` fields."""
    if obs != "state":
        raise ValueError(f"the Crazyflie backend observes state only (no camera is streamed over the radio); "
                         f"got obs={obs!r}")
    return CrazyflieBackend(CrazyflieConfig(**options))
