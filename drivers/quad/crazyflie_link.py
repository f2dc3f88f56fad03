"""The cflib side of the Crazyflie backend: every call into cflib goes through :class:`CrazyflieLink`.

It opens the link (cflib downloads the log and parameter TOCs and the parameter values), writes the
flight-mode parameters and waits for their echo, starts two log blocks (the state estimate, and the
battery + supervisor status) and keeps their newest samples, follows cflib's link statistics, and
sends setpoints. Every wait has a deadline; cflib's callbacks only store values.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from typing import Any, Callable

from drivers.quad.crazyflie_config import CrazyflieConfig
from drivers.quad.crazyflie_protocol import (
    BATTERY_LOG_VARIABLE,
    FLIGHT_MODE_PARAMS,
    HIGH_LEVEL_COMMANDER_PARAM,
    STATE_LOG_VARIABLES,
    SUPERVISOR_IS_ARMED,
    SUPERVISOR_LOG_VARIABLE,
    RpytSetpoint,
    StateSample,
    VelocitySetpoint,
    decode_state,
)

log = logging.getLogger(__name__)
_DRIVERS_LOCK = threading.Lock()
_drivers_ready = False


def _init_cflib_drivers() -> None:
    """``cflib.crtp.init_drivers()`` once per process (each call appends the driver classes again)."""
    global _drivers_ready
    import cflib.crtp

    with _DRIVERS_LOCK:
        if not _drivers_ready:
            cflib.crtp.init_drivers()
            _drivers_ready = True


def wait_until(predicate: Callable[[], Any], timeout_s: float, poll_s: float = 0.005) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout_s`` passes (None)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(poll_s)


@dataclasses.dataclass(frozen=True)
class CrazyflieLinkStatus:
    """Attributes:
        mode: the flight mode (``idle``, ``flying``, ``hold``, ``fly_to``, ``landing``, ``lost``, ``locked``).
        lost_reason: why the link is considered lost (None while it is up).
        latency_ms: cflib's 95th-percentile round trip of its echo pings (nan before the first).
        radio_link_quality: the Crazyradio's link quality in percent (nan on links without one).
        state_rate_hz, setpoint_rate_hz: measured over the last second.
        state_age_s: age of the newest state sample.
        battery_v: newest battery voltage.
        supervisor_info: the firmware supervisor's bitfield (None on firmware without it).
        events: the last mode changes with their reasons, oldest first.
    """

    mode: str
    lost_reason: str | None
    latency_ms: float
    radio_link_quality: float
    state_rate_hz: float
    setpoint_rate_hz: float
    state_age_s: float
    battery_v: float
    supervisor_info: int | None
    events: tuple[str, ...]


class RateMeter:
    """Events per second over the last ``window_s`` from (time, running count) samples."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._samples: list[tuple[float, int]] = []

    def record(self, now_s: float, count: int) -> None:
        self._samples.append((now_s, count))
        while len(self._samples) > 2 and now_s - self._samples[1][0] >= self.window_s:
            self._samples.pop(0)

    def hz(self) -> float:
        if len(self._samples) < 2 or self._samples[-1][0] <= self._samples[0][0]:
            return math.nan
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0)


class CrazyflieLink:
    """One cflib ``Crazyflie`` on ``config.uri``. Nothing happens in ``__init__``.

    Args:
        config: the backend's settings.
        cf: a cflib ``Crazyflie`` to use (e.g. one with a TOC cache), else one is made on ``open()``.
    """

    def __init__(self, config: CrazyflieConfig, cf: Any = None) -> None:
        self.config = config
        self._cf_given = cf
        self.cf: Any = None
        self.state: StateSample | None = None
        self.battery_v = math.nan
        self.supervisor_info: int | None = None
        self.latency_ms = math.nan
        self.radio_link_quality = math.nan
        self.lost_reason: str | None = None
        self.state_count = 0
        self._blocks: list[Any] = []
        self._connected = threading.Event()
        self._failed: str | None = None
        self._stage: str | None = None  # how far the connection got (for the timeout's message)
        self._onboard_landing_until_s = -math.inf

    # ------------------------------------------------------------------ opening
    def open(self) -> None:
        """Connect, set the flight mode, start logging; returns once the first state sample is in."""
        _init_cflib_drivers()
        from cflib.crazyflie import Crazyflie

        self.cf = cf = self._cf_given or Crazyflie(rw_cache=self.config.rw_cache)
        cf.link_established.add_callback(lambda uri: self._reached("the link answered, the TOC download stalled"))
        cf.connected.add_callback(lambda uri: self._reached("the TOCs arrived, reading the parameter values stalled"))
        cf.fully_connected.add_callback(lambda uri: self._connected.set())
        cf.connection_failed.add_callback(self._on_failed)
        cf.connection_lost.add_callback(self._on_lost)
        cf.link_statistics.latency_updated.add_callback(self._on_latency)
        cf.link_statistics.link_quality_updated.add_callback(self._on_link_quality)
        deadline = time.monotonic() + self.config.connect_timeout_s
        cf.open_link(self.config.uri)
        if not self._connected.wait(self.config.connect_timeout_s) or self._failed:
            reason = self._failed or f"no answer within {self.config.connect_timeout_s} s"
            if not self._failed and self._stage:
                raise self._fail(f"connection not completed within {self.config.connect_timeout_s} s: {self._stage} "
                                 f"(garbled or missing replies: is it a Crazyflie with a current firmware? cflib's "
                                 f"log names the packet it could not parse)")
            self.close()
            raise ConnectionError(f"Crazyflie at {self.config.uri}: connection failed ({reason}); is it on, the "
                                  f"radio plugged in and the address right?")
        try:
            self._set_params(deadline)
            self._start_logging(deadline)
        except ConnectionError:
            raise
        except Exception as err:
            raise self._fail(f"setting up failed: {type(err).__name__}: {err}") from err

    def _reached(self, stage: str) -> None:
        self._stage = stage

    def _set_params(self, deadline: float) -> None:
        """Roll/pitch in the RPYT packet: rates (0) or angles (1); the high-level commander on where the
        firmware has the switch (the onboard landing needs it). Each is confirmed by the firmware's echo."""
        wanted = "0" if self.config.level == "thrust_rates" else "1"
        for name in FLIGHT_MODE_PARAMS:
            self._set_param(name, wanted, deadline)
        if self.cf.param.toc.get_element_by_complete_name(HIGH_LEVEL_COMMANDER_PARAM) is not None:
            self._set_param(HIGH_LEVEL_COMMANDER_PARAM, "1", deadline)

    def _set_param(self, name: str, wanted: str, deadline: float) -> None:
        echoed = threading.Event()
        group, short = name.split(".")

        def on_update(_name: str, value: str) -> None:
            if value == wanted:
                echoed.set()

        param = self.cf.param
        param.add_update_callback(group=group, name=short, cb=on_update)
        try:
            param.set_value(name, wanted)
            confirmed = echoed.wait(max(0.0, deadline - time.monotonic()))
        finally:
            param.remove_update_callback(group=group, name=short, cb=on_update)
        if not confirmed:
            raise self._fail(f"parameter {name} was not confirmed as {wanted} (the firmware echoed "
                             f"{param.values.get(group, {}).get(short, 'nothing')})")

    def _start_logging(self, deadline: float) -> None:
        from cflib.crazyflie.log import LogConfig

        state = LogConfig(name="robot_rl_state", period_in_ms=round(1000.0 / self.config.log_hz))
        status = LogConfig(name="robot_rl_status", period_in_ms=round(1000.0 / self.config.status_hz))
        for name, fetch_as in STATE_LOG_VARIABLES:
            state.add_variable(name, fetch_as)
        status.add_variable(*BATTERY_LOG_VARIABLE)
        if self.cf.log.toc.get_element_by_complete_name(SUPERVISOR_LOG_VARIABLE[0]) is not None:
            status.add_variable(*SUPERVISOR_LOG_VARIABLE)
        for block, callback in ((state, self._on_state), (status, self._on_status)):
            try:
                self.cf.log.add_config(block)
            except (KeyError, AttributeError) as err:
                raise self._fail(f"log block {block.name!r} refused: {err} (firmware too old for stateEstimateZ?)")
            block.data_received_cb.add_callback(callback)
            block.error_cb.add_callback(lambda b, msg: log.error("Crazyflie log block %s: %s", b.name, msg))
            block.start()
            self._blocks.append(block)
        if not wait_until(lambda: self.state is not None and not math.isnan(self.battery_v),
                          max(0.0, deadline - time.monotonic())):
            raise self._fail(f"no state estimate and battery log within {self.config.connect_timeout_s} s")

    def _fail(self, reason: str) -> ConnectionError:
        self.close()
        return ConnectionError(f"Crazyflie at {self.config.uri}: {reason}")

    def close(self) -> None:
        """Close the link. cflib's ``close_link`` sends a last zero-thrust setpoint, which would override an
        onboard landing in progress: that one is given its duration first."""
        cf, self.cf = self.cf, None
        self._blocks.clear()
        if cf is None:
            return
        remaining_s = self._onboard_landing_until_s - time.monotonic()
        if remaining_s > 0 and cf.link is not None:
            log.warning("Crazyflie at %s: waiting %.1f s for the onboard landing before closing the link",
                        self.config.uri, remaining_s)
            threading.Event().wait(remaining_s)  # nothing to observe: the state log is gone
        cf.link_statistics.stop()  # its pings must not meet the closing socket (cflib's error path joins itself)
        _wake_packet_thread(cf)
        cf.close_link()

    # ------------------------------------------------------------------ cflib callbacks (its threads)
    def _on_failed(self, uri: str, message: str) -> None:
        self._failed = message.strip().splitlines()[0] if message.strip() else "link error"
        self._connected.set()

    def _on_lost(self, uri: str, message: str) -> None:
        first_line = message.strip().splitlines()[0] if message.strip() else "link error"
        self.lost_reason = f"cflib reported the link to {uri} lost: {first_line}"

    def _on_latency(self, latency_ms: float) -> None:
        self.latency_ms = float(latency_ms)

    def _on_link_quality(self, quality: float) -> None:
        self.radio_link_quality = float(quality)

    def _on_state(self, timestamp_ms: int, values: dict, block: Any) -> None:
        self.state = decode_state(values, time.monotonic(), timestamp_ms)
        self.state_count += 1

    def _on_status(self, timestamp_ms: int, values: dict, block: Any) -> None:
        self.battery_v = float(values[BATTERY_LOG_VARIABLE[0]])
        if SUPERVISOR_LOG_VARIABLE[0] in values:
            self.supervisor_info = int(values[SUPERVISOR_LOG_VARIABLE[0]])

    # ------------------------------------------------------------------ sending
    def _commander(self) -> Any:
        if self.cf is None:
            raise ConnectionError(f"Crazyflie at {self.config.uri} is not connected")
        return self.cf.commander

    def send_rpyt(self, setpoint: RpytSetpoint) -> None:
        self._commander().send_setpoint(setpoint.roll, setpoint.pitch, setpoint.yawrate_cw_deg_s, setpoint.thrust_u16)

    def send_velocity(self, setpoint: VelocitySetpoint) -> None:
        self._commander().send_velocity_world_setpoint(setpoint.vx_m_s, setpoint.vy_m_s, setpoint.vz_m_s,
                                                       setpoint.yawrate_ccw_deg_s)

    def cut_motors(self, disarm: bool = False) -> None:
        """The generic STOP setpoint (motors off now), then hand the commander back (lowest priority);
        ``disarm``: also ask the supervisor to disarm (the next flight re-arms)."""
        commander = self._commander()
        commander.send_stop_setpoint()
        commander.send_notify_setpoint_stop()
        if disarm:
            self.cf.supervisor.send_arming_request(False)

    def land_onboard(self, duration_s: float) -> None:
        """Hand over to the firmware's high-level commander and have it land (when we cannot see the state)."""
        self._commander().send_notify_setpoint_stop()
        self.cf.high_level_commander.land(0.0, duration_s, yaw=None)
        self._onboard_landing_until_s = time.monotonic() + duration_s

    def emergency_stop(self) -> None:
        """The supervisor's emergency stop: motors off, the firmware locked until it is restarted."""
        self._commander()
        self.cf.supervisor.send_emergency_stop()

    def arm(self) -> None:
        """Request arming and wait (``arm_timeout_s``) for the supervisor to report it, where it reports."""
        self._commander()
        self.cf.supervisor.send_arming_request(True)
        if self.supervisor_info is None:
            return  # firmware without supervisor.info: nothing to wait for
        if not wait_until(lambda: (self.supervisor_info or 0) & SUPERVISOR_IS_ARMED, self.config.arm_timeout_s):
            raise RuntimeError(f"Crazyflie at {self.config.uri} did not arm within {self.config.arm_timeout_s} s "
                               f"(supervisor.info = 0x{self.supervisor_info:04x}: tumbled, locked or charging?)")



def _wake_packet_thread(cf: Any) -> None:
    """cflib's ``close_link`` joins its packet thread, which waits up to 1 s on an empty queue once the link
    is closed: stop that thread and wake it with an empty item first (``None`` is what the queue yields on a
    timeout), so closing takes milliseconds. Links without an ``in_queue`` close the slow way."""
    queue = getattr(cf.link, "in_queue", None)
    if queue is not None and cf.incoming.is_alive():
        cf.incoming.stop()
        queue.put(None)
