"""Robotiq 2F-85 / 2F-140 gripper over Modbus RTU: a :class:`robot_rl.backends.gripper.Gripper`.

The gripper hangs on an RS-485 bus (Robotiq's USB adapter: 115200 baud, 8N1, slave id 9). This
driver writes the Robot Output registers (FC16 at ``0x03E8``) and reads the Robot Input registers
(FC04 at ``0x07D0``) with ``minimalmodbus`` on a ``pyserial`` port it opens itself (exclusively,
with read and write timeouts: no call waits longer than ``reply_timeout_s`` for a reply). The
register codec is :mod:`drivers.arm.robotiq_protocol`.

* ``connect()`` opens the port and activates the gripper (reset, then ``rACT``; waits for
  ``gSTA == 3`` until ``activation_timeout_s``). A gripper already activated and fault-free is
  left as it is (activation sweeps the fingers through the whole stroke and would drop a held
  part), unless ``reactivate_on_connect``.
* ``command_width`` writes the request and returns at once; the same request is not re-written
  within ``resend_interval_s``.
* ``read_width`` reads the status; a fault in it raises :class:`RobotiqFault` with the manual's
  meaning (fault 0x09, "no communication during 1 s", which the gripper reports once after a silence,
  is logged instead). ``object_detected`` is the object status of the last read.
* A missing reply, a corrupt reply and a vanished port raise :class:`RobotiqLinkError`.

Example rig file table (the arm backend that holds the gripper reads it)::

    [gripper.robotiq_2f]
    port = "/dev/serial/by-id/usb-FTDI_USB_TO_RS-485_DA1234-if00-port0"
    model = "2F-85"
    open_position = 3        # position bytes this gripper reports fully open / fingertips touching
    closed_position = 230
    speed_m_s = 0.15
    force_n = 60.0
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from drivers.arm import robotiq_protocol as proto
from drivers.arm.robotiq_protocol import (
    GripperRequest,
    GripperStatus,
    StrokeCalibration,
)

log = logging.getLogger("drivers.arm.robotiq")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A 2F model's stroke and the (nominal, spec-sheet) ranges its speed and force bytes span."""

    stroke_m: float
    speed_m_s: tuple[float, float]
    force_n: tuple[float, float]


MODELS = {"2F-85": ModelSpec(0.085, (0.020, 0.150), (20.0, 235.0)),
          "2F-140": ModelSpec(0.140, (0.030, 0.250), (10.0, 125.0))}


class RobotiqError(Exception):
    """Base of the gripper's errors; messages name the port and slave id."""


class RobotiqLinkError(RobotiqError, ConnectionError):
    """No reply, a corrupt reply (CRC, length, slave id) or a failed serial port."""


class RobotiqActivationTimeout(RobotiqError, TimeoutError):
    """The gripper did not report ``gSTA == 3`` (activation completed) in time."""


class RobotiqFault(RobotiqError):
    """The gripper reports a fault (``gFLT``).

    Attributes:
        code: the ``gFLT`` code; severity: "priority", "minor", "major" (a reset is needed:
        :meth:`Robotiq2F.reactivate`) or "unknown"; meaning: the manual's text; status: the status read.
    """

    def __init__(self, where: str, status: GripperStatus) -> None:
        self.code, self.status = status.fault, status
        self.severity, self.meaning = proto.describe_fault(status.fault)
        advice = " (reset needed: reactivate())" if self.severity == "major" else ""
        super().__init__(f"{where}: {self.severity} fault 0x{self.code:02X}: {self.meaning}{advice}; "
                         f"status: {status.describe()}")


@dataclasses.dataclass(frozen=True)
class RobotiqConfig:
    """Attributes (units in the names):
        port: the RS-485 adapter's serial device (a ``/dev/serial/by-id/...`` path); from the rig file.
        model: "2F-85" or "2F-140": the stroke and the speed/force ranges.
        slave_id: the gripper's Modbus address (9 from the factory).
        baud: 115200 from the factory (8 data bits, no parity, 1 stop bit).
        open_position, closed_position: the position bytes this gripper reports fully open and
            with the fingertips touching (calibration; see :class:`StrokeCalibration`).
        speed_m_s, force_n: finger speed and grip force of every motion (``None``: the model's
            fastest speed / the middle of its force range), mapped linearly onto the 0-255 bytes.
        reply_timeout_s: the longest wait for one reply (a missing reply raises after it).
        activation_timeout_s: ``connect()`` fails when activation has not completed by then.
        resend_interval_s: an identical request is written again at most this often.
        reactivate_on_connect: activate even a gripper that is already active.
    """

    port: str | None = None
    model: str = "2F-85"
    slave_id: int = 9
    baud: int = 115200
    open_position: int = 0
    closed_position: int = 255
    speed_m_s: float | None = None
    force_n: float | None = None
    reply_timeout_s: float = 0.1
    activation_timeout_s: float = 10.0
    resend_interval_s: float = 0.5
    reactivate_on_connect: bool = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"RobotiqConfig.model must be one of {sorted(MODELS)}, got {self.model!r}")
        if isinstance(self.slave_id, bool) or not isinstance(self.slave_id, int) or not 1 <= self.slave_id <= 247:
            raise ValueError(f"RobotiqConfig.slave_id must be a Modbus address in [1, 247], got {self.slave_id!r}")
        for name in ("baud", "reply_timeout_s", "activation_timeout_s", "resend_interval_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"RobotiqConfig.{name} must be a finite number > 0, got {value!r}")
        self.calibration()  # validates the ends
        self.speed_byte(), self.force_byte()  # validate the ranges

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.model]

    def calibration(self) -> StrokeCalibration:
        return StrokeCalibration(self.spec.stroke_m, self.open_position, self.closed_position)

    def speed_byte(self) -> int:
        low, high = self.spec.speed_m_s
        speed_m_s = high if self.speed_m_s is None else self.speed_m_s
        return proto.scale_to_byte(f"RobotiqConfig.speed_m_s ({self.model})", speed_m_s, low, high)

    def force_byte(self) -> int:
        low, high = self.spec.force_n
        force_n = 0.5 * (low + high) if self.force_n is None else self.force_n
        return proto.scale_to_byte(f"RobotiqConfig.force_n ({self.model})", force_n, low, high)


def open_serial(config: RobotiqConfig) -> Any:
    """The adapter's port, opened exclusively, with read/write timeouts of ``reply_timeout_s``."""
    try:
        import serial
    except ImportError as err:
        raise ImportError("the Robotiq gripper needs pyserial and minimalmodbus: pip install 'robot-rl[gripper]'") from err
    if config.port is None:
        raise ValueError("RobotiqConfig.port is not set: give the RS-485 adapter's serial device (port=... or the "
                         "rig file's [gripper.robotiq_2f] port)")
    try:
        return serial.Serial(config.port, baudrate=config.baud, bytesize=8, parity="N", stopbits=1,
                             timeout=config.reply_timeout_s, write_timeout=config.reply_timeout_s, exclusive=True)
    except (serial.SerialException, OSError) as err:
        raise RobotiqLinkError(f"Robotiq gripper: cannot open {config.port}: {err}") from err


def _port_errors() -> tuple[type[BaseException], ...]:
    """What a failing port raises: pyserial's ``SerialException`` (an ``OSError``), and ``termios.error``
    from flushing the buffers of a vanished POSIX device."""
    try:
        import termios
    except ImportError:  # not POSIX
        return (OSError,)
    return (OSError, termios.error)


class Robotiq2F:
    """A Robotiq 2F-85/2F-140 on a Modbus RTU link (module docstring). ``open_port`` opens the
    serial port (injectable); nothing is opened before :meth:`connect`."""

    def __init__(self, config: RobotiqConfig, open_port: Callable[[RobotiqConfig], Any] = open_serial,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self._open_port, self._clock = config, open_port, clock
        self._calibration = config.calibration()
        self._speed, self._force = config.speed_byte(), config.force_byte()
        self._port: Any = None
        self._modbus: Any = None
        self._lock = threading.RLock()
        self._status: GripperStatus | None = None
        self._last_request: GripperRequest | None = None
        self._last_write_s = float("-inf")
        self.writes_skipped = 0

    # ------------------------------------------------------------------ the Gripper protocol
    @property
    def max_width_m(self) -> float:
        return self._calibration.stroke_m

    @property
    def connected(self) -> bool:
        return self._modbus is not None

    def connect(self) -> None:
        if self.connected:
            return
        import minimalmodbus

        self._port = self._open_port(self.config)
        try:
            self._modbus = minimalmodbus.Instrument(self._port, self.config.slave_id, mode=minimalmodbus.MODE_RTU)
            self._modbus.clear_buffers_before_each_transaction = True
            status = self._read_status(check=False)
            benign = status.fault in (0, proto.COMM_LOSS_FAULT)  # 0x09: we were simply silent for a while
            if self.config.reactivate_on_connect or not status.ready or not benign:
                self._activate()
            else:
                log.info("%s: already active (%s), not re-activated", self._where, status.describe())
        except BaseException:
            self._release_port()
            raise

    def close(self) -> None:
        if self._port is None:
            return
        try:
            if self.connected:
                self.stop()
        except RobotiqError as err:
            log.warning("%s: could not stop the fingers while closing: %s", self._where, err)
        finally:
            self._release_port()

    def read_width(self) -> float:
        return self._calibration.position_to_width(self.read_status().position)

    def command_width(self, width_m: float) -> float:
        position = self._calibration.width_to_position(float(width_m))
        self._write(GripperRequest(activate=True, go_to=True, position=position, speed=self._speed, force=self._force))
        return self._calibration.position_to_width(position)

    def stop(self) -> None:
        """Clear ``rGTO`` (the manual's "stop"): the fingers stop where they are. No-op when not connected."""
        if not self.connected:
            return
        last = self._last_request or GripperRequest(activate=True, go_to=False, speed=self._speed, force=self._force)
        self._write(dataclasses.replace(last, go_to=False), always=True)

    # ------------------------------------------------------------------ beyond the protocol
    @property
    def status(self) -> GripperStatus | None:
        """The status of the last read (``read_width``/``read_status``), or ``None`` before one."""
        return self._status

    @property
    def object_detected(self) -> bool:
        """Whether the fingers stopped on an object (``gOBJ`` 1 or 2), as of the last status read."""
        return self._status is not None and self._status.object_detected

    def read_status(self) -> GripperStatus:
        """Read the Robot Input registers; a fault raises :class:`RobotiqFault`."""
        return self._read_status(check=True)

    def reactivate(self) -> None:
        """Reset and activate again: how a major fault is cleared (the fingers sweep their stroke)."""
        self._require_connected("reactivate")
        self._activate()

    def __enter__(self) -> Robotiq2F:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    @property
    def _where(self) -> str:
        return f"Robotiq {self.config.model} on {self.config.port} (slave {self.config.slave_id})"

    def _require_connected(self, what: str) -> None:
        if not self.connected:
            raise RuntimeError(f"{self._where}: {what}() before connect() (or after close())")

    def _activate(self) -> None:
        """The manual's sequence: clear rACT (reset, clears faults), then set it and wait for gSTA == 3."""
        self._write(GripperRequest(activate=False, go_to=False), always=True)
        self._wait_status(lambda s: not s.activated, "the reset (gACT = 0)", check=False)
        self._write(GripperRequest(activate=True, go_to=False, speed=self._speed, force=self._force), always=True)
        self._wait_status(lambda s: s.ready, "the activation (gSTA = 3)", check=True)

    def _wait_status(self, done: Callable[[GripperStatus], bool], what: str, check: bool) -> GripperStatus:
        """Poll the status (each read bounded by the reply timeout) until ``done`` or the activation deadline."""
        deadline = self._clock() + self.config.activation_timeout_s
        while True:
            status = self._read_status(check=check)
            if done(status):
                return status
            if self._clock() >= deadline:
                raise RobotiqActivationTimeout(
                    f"{self._where}: {what} did not complete within {self.config.activation_timeout_s:g} s; "
                    f"last status: {status.describe()}")

    def _read_status(self, check: bool) -> GripperStatus:
        self._require_connected("read_status")
        registers = self._transaction("the status read (FC04 at 0x07D0)", self._modbus.read_registers,
                                      proto.STATUS_REGISTER_ADDR, proto.NUM_STATUS_REGISTERS, functioncode=4)
        status = self._status = proto.decode_status(registers)
        if check and status.fault == proto.COMM_LOSS_FAULT:
            log.warning("%s: the gripper reports fault 0x09 (no communication during at least 1 s); reported once "
                        "after a silence, carrying on", self._where)
        elif check and status.fault:
            raise RobotiqFault(self._where, status)
        return status

    def _write(self, request: GripperRequest, always: bool = False) -> bool:
        """Write the Robot Output registers unless the same request went out < ``resend_interval_s`` ago."""
        self._require_connected("command")
        with self._lock:
            now = self._clock()
            if not always and request == self._last_request and now - self._last_write_s < self.config.resend_interval_s:
                self.writes_skipped += 1
                return False
            self._transaction("the request write (FC16 at 0x03E8)", self._modbus.write_registers,
                              proto.OUTPUT_REGISTER_ADDR, proto.encode_request(request))
            self._last_request, self._last_write_s = request, now
            return True

    def _transaction(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One Modbus request/reply; the library's and the port's errors become :class:`RobotiqLinkError`."""
        import minimalmodbus

        with self._lock:
            try:
                return call(*args, **kwargs)
            except minimalmodbus.NoResponseError as err:
                raise RobotiqLinkError(f"{self._where}: no reply to {what} within {self.config.reply_timeout_s:g} s: "
                                       f"check the gripper's 24 V supply, the RS-485 wiring, the baud rate "
                                       f"({self.config.baud}) and the slave id") from err
            except minimalmodbus.InvalidResponseError as err:
                raise RobotiqLinkError(f"{self._where}: corrupt reply to {what} ({err}): noise or a wiring fault "
                                       f"on the RS-485 bus, or a second master") from err
            except minimalmodbus.ModbusException as err:
                raise RobotiqLinkError(f"{self._where}: {what} failed: {err}") from err
            except _port_errors() as err:
                raise RobotiqLinkError(f"{self._where}: the serial port failed during {what}: {err} "
                                       f"(USB adapter unplugged?)") from err

    def _release_port(self) -> None:
        port, self._port, self._modbus = self._port, None, None
        self._last_request, self._last_write_s = None, float("-inf")
        try:
            port.close()
        except (OSError, ValueError) as err:  # pyserial on a vanished device
            log.debug("%s: closing the port: %s", self._where, err)
