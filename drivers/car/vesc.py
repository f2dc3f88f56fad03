"""The real RC car: a VESC motor controller (drive motor + steering servo) over a serial port.

:class:`VescCar` keeps the car contract (:class:`robot_rl.backends.car.CarBackend`). Nothing happens
in ``__init__``; ``connect()`` opens the port (pyserial, exclusive), waits for a first telemetry reply
(``connect_timeout_s``) and starts the **I/O thread**, which at ``io_hz`` (a
:class:`~robot_rl.rate.Rate`, >= 10 Hz) sends one drive command (:func:`drivers.car.control.drive_order`),
the servo position, ``COMM_ALIVE`` (the firmware's keep-alive, so a heartbeat at least every 100 ms)
and a ``COMM_GET_VALUES`` request, then reads the reply. ``command()`` clips with the contract's
:func:`~robot_rl.backends.car.clip_car_command` over the last ``sync`` period and returns what the
I/O thread will really send.

Safety, all in the I/O thread, each a *brake reason* (``brake_reason`` says which holds now):

* ``stop()``, no command yet, and the command watchdog (no ``command()`` for ``watchdog_s``): brake to a standstill
  (``COMM_SET_CURRENT_BRAKE``), steering held; the next ``command()`` drives again;
* low-voltage cut-out (battery below ``min_battery_v``, until ``cutout_hysteresis_v`` above it) and a
  VESC fault code: brake; over-voltage (``max_battery_v`` or the VESC's ``OVER_VOLTAGE`` fault):
  release the motor (no regenerative braking); ``command()`` returns a zero drive meanwhile;
* the link: no telemetry for ``link_timeout_s`` -> brake, and a port that fails (unplugged, the
  VESC reset) ends the thread; either way every later ``read_state``/``command``/``sync`` raises
  :class:`VescLinkError` naming the cause until ``close()`` and ``connect()`` again.

Measured: wheel speed (ERPM through gear ratio, pole pairs and wheel radius), battery voltage,
currents and the fault code (``telemetry``). Not measured -- no localization or IMU on this rig --
and so ``nan`` in the state: position, heading, body velocity, yaw rate, IMU.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from drivers.car import vesc_codec as codec
from drivers.car.config import VescConfig, load_vesc_rig
from drivers.car.control import (
    DriveOrder,
    drive_order,
    erpm_to_speed_arrays,
    steering_to_servo_arrays,
)
from drivers.car.link import SerialPort, VescLink, log, open_serial
from drivers.car.vesc_values import VescValues, fault_name
from robot_rl.backends.base import ConnectOnEnter
from robot_rl.backends.car import (
    FAMILY,
    SPEED,
    CarCommand,
    CarSpec,
    CarState,
    clip_car_command,
)
from robot_rl.backends.watchdog import CommandWatchdog
from robot_rl.rate import Rate

DEFAULT_PERIOD_S = 0.05  # the rate-limit period before the first sync() says the real one
JOIN_TIMEOUT_S = 2.0
_NAN2, _NAN3 = np.full(2, math.nan), np.full(3, math.nan)
COAST_REASONS = ("over-voltage", "fault FAULT_CODE_OVER_VOLTAGE")


class VescLinkError(ConnectionError):
    """The VESC link failed (port gone, no telemetry); the car was put in its safe state."""


class VescCar(ConnectOnEnter):
    """A VESC-driven car (module docstring). ``open_port`` opens the serial port (injectable: tests
    and other transports); ``clock`` is monotonic seconds."""

    family = FAMILY

    def __init__(self, config: VescConfig | None = None,
                 open_port: Callable[[VescConfig], SerialPort] = open_serial,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or VescConfig()
        self._spec = self.config.spec()
        self._open_port, self._clock = open_port, clock
        self._lock = threading.Lock()  # the fields below, shared by the caller and the I/O thread
        self._write_lock = threading.Lock()
        self._closing = threading.Event()
        self._watchdog = CommandWatchdog(self.config.watchdog_s, clock)
        self._thread: threading.Thread | None = None
        self._link: VescLink | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._telemetry: VescValues | None = None
        self._telemetry_s = -math.inf
        self._target: CarCommand | None = None
        self._previous: CarCommand | None = None
        self._steering_rad = 0.0
        self._stopped: str | None = "no command"  # why the drive is braked until the next command()
        self._failure: str | None = None
        self._low_battery = self._over_voltage = False
        self._period_s, self._sync_rate = DEFAULT_PERIOD_S, None
        self.last_order: DriveOrder | None = None

    # ------------------------------------------------------------------ contract: structure
    @property
    def spec(self) -> CarSpec:
        return self._spec

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def port_name(self) -> str:
        return self.config.port or "(injected port)"

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the port, wait for the VESC's first telemetry reply, start the I/O thread."""
        if self.connected:
            return
        port = self._open_port(self.config)
        link = VescLink(port, self.port_name)
        try:
            first = self._handshake(link)
        except BaseException:
            port.close()
            raise
        self._reset_state()
        self._link = link
        self._accept(first, self._clock())
        self._closing.clear()
        self._thread = threading.Thread(target=self._io_loop, name=f"vesc-io {self.port_name}", daemon=True)
        self._thread.start()

    def _handshake(self, link: VescLink) -> VescValues:
        deadline = self._clock() + self.config.connect_timeout_s
        brake = drive_order(None, "connecting", math.nan, self.config)
        while self._clock() < deadline:
            link.send([brake.payload(), codec.alive(), codec.get_values()])
            values = link.read_values(min(0.05, max(0.0, deadline - self._clock())))
            if values is not None:
                return values
        raise TimeoutError(f"VESC on {self.port_name}: no GET_VALUES reply within {self.config.connect_timeout_s} s "
                           f"(is it powered, on this port, running firmware 3.x-6.x?)")

    def close(self) -> None:
        """Stop the I/O thread, send a last brake, close the port. Safe to call twice."""
        if self._link is None:
            return
        self._closing.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("VESC on %s: the I/O thread did not end within %.1f s", self.port_name, JOIN_TIMEOUT_S)
        link, self._link, self._thread = self._link, None, None
        try:
            self._send_brake(link)
        finally:
            link.port.close()

    # ------------------------------------------------------------------ contract: control
    def read_state(self) -> CarState:
        """The newest telemetry as a car state (``nan`` for what this rig cannot measure)."""
        self._check_link()
        with self._lock:
            values, time_s, steering = self._telemetry, self._telemetry_s, self._steering_rad
        return CarState(time_s=time_s, pos_m=_NAN2, yaw_rad=math.nan, vel_body_m_s=_NAN2,
                        yaw_rate_rad_s=math.nan, wheel_speed_m_s=self._wheel_speed(values), steering_rad=steering,
                        imu_accel_m_s2=_NAN3, imu_gyro_rad_s=_NAN3, battery_v=values.input_voltage_v)

    def command(self, command: CarCommand) -> CarCommand:
        """Clip by the contract (over the last ``sync`` period), hand it to the I/O thread, feed the
        watchdog; returns what is sent (a zero drive while a battery or fault rule holds)."""
        state = self.read_state()
        with self._lock:
            sent = clip_car_command(command, self._spec, state, self._previous, self._period_s)
            if self._hold_reason() is not None:
                sent = dataclasses.replace(sent, **{"speed_m_s" if sent.mode == SPEED else "throttle": 0.0})
            self._target = self._previous = sent
            self._steering_rad = sent.steering_rad
            self._stopped = None
            self._watchdog.feed()
        return sent

    def stop(self) -> None:
        """Brake to a standstill now, steering held; the next ``command()`` drives again. Never raises."""
        with self._lock:
            self._brake_locked("stop")
        link = self._link
        if link is not None and self._failure is None:
            try:
                self._send(link, [drive_order(None, "stop", math.nan, self.config).payload()])
            except OSError as err:
                self._fail(f"serial port failed: {err}")

    def sync(self, period_s: float) -> None:
        """Wait until ``period_s`` has passed since the previous ``sync`` (the control period the
        next command's rate limits use)."""
        if not period_s > 0:
            raise ValueError(f"sync period_s must be > 0, got {period_s}")
        if self._sync_rate is None or self._sync_rate.period != 1.0 / period_s:
            self._sync_rate = Rate(1.0 / period_s, clock=self._clock)
        self._sync_rate.sleep()
        self._period_s = float(period_s)
        self._check_link()

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        raise KeyError(f"the VESC car has no camera ({camera!r} asked); cameras come from drivers/cameras")

    # ------------------------------------------------------------------ status
    @property
    def telemetry(self) -> VescValues | None:
        """The newest ``GET_VALUES`` reply (temperatures, currents, duty, fault...)."""
        with self._lock:
            return self._telemetry

    @property
    def brake_reason(self) -> str | None:
        """Why the drive is braked or released now (``None``: driving the command)."""
        with self._lock:
            return self._brake_reason()

    @property
    def failure(self) -> str | None:
        """The link failure that put the car in its safe state, if any."""
        return self._failure

    def link_stats(self) -> dict:
        """Frames decoded, rejected by reason, bytes skipped, telemetry replies missed."""
        link = self._link
        return {} if link is None else link.stats()

    # ------------------------------------------------------------------ the I/O thread
    def _io_loop(self) -> None:
        rate = Rate(self.config.io_hz, clock=self._clock, sleep=self._closing.wait)
        link = self._link
        while not self._closing.is_set():
            try:
                self._io_step(link)
            except OSError as err:
                self._fail(f"serial port failed: {err}")
                return
            except Exception as err:  # noqa: BLE001  (a bug must not leave the car driving without its I/O thread)
                log.exception("VESC on %s: the I/O thread failed", self.port_name)
                self._fail(f"the I/O thread failed: {type(err).__name__}: {err}")
                self._send_brake(link)
                return
            rate.sleep()

    def _io_step(self, link: VescLink) -> None:
        """One period: drive + servo + keep-alive + telemetry request out, the reply in. The orders are
        chosen and written under the write lock, so a ``stop()`` meanwhile has its brake land after them."""
        with self._write_lock:
            order, servo = self._orders()
            link.send([order.payload(), codec.set_servo_pos(servo), codec.alive(), codec.get_values()])
        values = link.read_values(self.config.reply_wait_s)
        now = self._clock()
        if values is not None:
            self._accept(values, now)
        elif now - self._telemetry_s > self.config.link_timeout_s and self._failure is None:
            self._fail(f"no telemetry for {now - self._telemetry_s:.2f} s (link_timeout_s "
                       f"{self.config.link_timeout_s}); braking")

    def _orders(self) -> tuple[DriveOrder, float]:
        """This period's drive order and servo position, from the rules and the newest target."""
        c = self.config
        with self._lock:
            self._check_watchdog()
            reason = self._brake_reason()
            order = drive_order(self._target, reason, self._wheel_speed(self._telemetry), c,
                                coast=reason in COAST_REASONS)
            servo = float(steering_to_servo_arrays(self._steering_rad, c.servo_center, c.servo_per_rad, c.servo_min,
                                                   c.servo_max, np))
            self.last_order = order
        return order, servo

    def _send_brake(self, link: VescLink) -> None:
        try:
            self._send(link, [drive_order(None, "failure", math.nan, self.config).payload()])
        except OSError:
            pass  # the port is gone: the VESC's own timeout brakes

    def _send(self, link: VescLink, payloads: list[bytes]) -> None:
        with self._write_lock:
            link.send(payloads)

    def _check_watchdog(self) -> None:
        if self._stopped is None and self._watchdog.expired():
            log.warning("VESC on %s: no command for %.0f ms (watchdog %.0f ms): braking to a stop", self.port_name,
                        self._watchdog.age_s() * 1e3, self.config.watchdog_s * 1e3)
            self._brake_locked("watchdog")

    def _brake_locked(self, reason: str) -> None:
        self._stopped = reason
        self._previous = CarCommand(steering_rad=self._steering_rad, speed_m_s=0.0)

    def _accept(self, values: VescValues, now: float) -> None:
        """A telemetry reply: store it, update the battery rules, log fault changes."""
        c = self.config
        with self._lock:
            old_fault = self._telemetry.fault_code if self._telemetry is not None else 0
            self._telemetry, self._telemetry_s = values, now
            v = values.input_voltage_v
            self._low_battery = _hysteresis(self._low_battery, c.min_battery_v is not None and v < c.min_battery_v,
                                            c.min_battery_v is not None and v >= c.min_battery_v + c.cutout_hysteresis_v,
                                            f"VESC on {self.port_name}: battery {v:.2f} V", "below", c.min_battery_v)
            self._over_voltage = _hysteresis(self._over_voltage, c.max_battery_v is not None and v > c.max_battery_v,
                                             c.max_battery_v is not None and v <= c.max_battery_v - c.cutout_hysteresis_v,
                                             f"VESC on {self.port_name}: battery {v:.2f} V", "above", c.max_battery_v)
        if values.fault_code != old_fault:
            level = logging.ERROR if values.fault_code else logging.WARNING
            log.log(level, "VESC on %s: fault %s (was %s)", self.port_name, values.fault,
                    fault_name(old_fault))

    def _fail(self, cause: str) -> None:
        """Record a link failure (first one wins), put the car in its safe state, log it."""
        with self._lock:
            if self._failure is None:
                self._failure = f"VESC on {self.port_name}: {cause}"
                log.error("%s; the car is braked, commands are refused until close() and connect()", self._failure)
            self._brake_locked("link failure")

    # ------------------------------------------------------------------ rules (under self._lock)
    def _hold_reason(self) -> str | None:
        """A reason that holds even while fresh commands come: link, fault, battery."""
        if self._failure is not None:
            return "link failure"
        if self._over_voltage:
            return "over-voltage"
        fault = self._telemetry.fault_code if self._telemetry is not None else 0
        if fault:
            return f"fault {self._telemetry.fault}"
        return "low battery" if self._low_battery else None

    def _brake_reason(self) -> str | None:
        held = self._hold_reason()
        return held if held is not None else self._stopped

    def _wheel_speed(self, values: VescValues | None) -> float:
        return math.nan if values is None else float(erpm_to_speed_arrays(values.erpm, self.config.erpm_per_m_s, math))

    def _check_link(self) -> None:
        if self._link is None:
            raise RuntimeError(f"VESC car on {self.port_name} is not connected: call connect() (or use `with`)")
        if self._failure is not None:
            raise VescLinkError(self._failure)


def _hysteresis(active: bool, trip: bool, clear: bool, what: str, side: str, limit: float | None) -> bool:
    """A latched rule: set by ``trip``, cleared by ``clear``; transitions are logged."""
    if not active and trip:
        log.error("%s is %s the limit %.2f V: drive cut", what, side, limit)
        return True
    if active and clear:
        log.warning("%s is back within the limit %.2f V: drive restored", what, limit)
        return False
    return active


def make_backend(task, obs: str, **options) -> VescCar:
    """Registry entry point: options are :class:`~drivers.car.config.VescConfig` fields; ``rig=`` names
    a rig file whose ``[car.vesc]`` table is read first (the other options win over it)."""
    if obs != "state":
        raise NotImplementedError(f"the VESC car observes state only for now (no camera is wired to this backend); "
                                  f"got obs={obs!r}")
    rig = options.pop("rig", None)
    return VescCar(load_vesc_rig(rig, **options) if rig is not None else VescConfig(**options))
