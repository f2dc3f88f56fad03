"""The VESC backend's serial link: frames out, telemetry in, corrupt frames logged (throttled).

:func:`open_serial` opens the port with pyserial (imported here, on ``connect()``: the package
imports without it). :class:`VescLink` is the I/O thread's only door to the device; a vanished
port surfaces as the ``OSError`` pyserial raises (its ``SerialException`` is one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from drivers.car import vesc_codec as codec
from drivers.car.config import VescConfig
from drivers.car.vesc_values import VescValues, parse_values

log = logging.getLogger("drivers.car.vesc")

READ_POLL_S = 0.002  # one blocking read waits at most this long for a byte


class SerialPort(Protocol):
    """What the link uses of a ``serial.Serial``."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def open_serial(config: VescConfig) -> SerialPort:
    """The VESC's port, opened exclusively (a second process cannot drive the same car)."""
    try:
        import serial
    except ImportError as err:
        raise ImportError("the VESC backend needs pyserial: pip install 'robot-rl[car]'") from err
    if config.port is None:
        raise ValueError("VescConfig.port is not set: give the VESC's serial device (port=... or the rig file's "
                         "[car.vesc] port)")
    return serial.Serial(config.port, baudrate=config.baud, timeout=min(READ_POLL_S, config.reply_wait_s),
                         write_timeout=config.link_timeout_s, exclusive=True)


class ThrottledLog:
    """At most one line per ``key`` every ``interval_s``; the next one says how many were held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval_s, self._clock = logger, interval_s, clock
        self._last: dict[str, tuple[float, int]] = {}

    def log(self, level: int, key: str, message: str) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``interval_s`` ago; whether it was logged."""
        now = self._clock()
        last_s, held = self._last.get(key, (-math.inf, 0))
        if now - last_s < self.interval_s:
            self._last[key] = (last_s, held + 1)
            return False
        more = f" (and {held} more like it in the last {now - last_s:.1f} s)" if held else ""
        self.logger.log(level, message + more)
        self._last[key] = (now, 0)
        return True


class VescLink:
    """Sends payloads as frames and reads the telemetry replies of one serial port.

    Args:
        port: an open :class:`SerialPort`.
        name: the port's name, for log lines.
        throttle: where corrupt-frame reports go (one line per reason per second).
    """

    def __init__(self, port: SerialPort, name: str, throttle: ThrottledLog | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.port, self.name = port, name
        self.decoder = codec.FrameDecoder()
        self.throttle = throttle or ThrottledLog(log)
        self._clock = clock
        self.replies_missed = 0

    def send(self, payloads: Sequence[bytes]) -> None:
        self.port.write(b"".join(codec.encode_frame(p) for p in payloads))

    def read_values(self, timeout_s: float) -> VescValues | None:
        """The newest ``GET_VALUES`` reply that arrives within ``timeout_s`` (returned as soon as one
        decodes), or ``None``; other replies are ignored, corrupt frames logged."""
        deadline = self._clock() + timeout_s
        newest = None
        while newest is None:
            chunk = self.port.read(max(1, self.port.in_waiting))
            newest = self._newest_values(self.decoder.feed(chunk)) or newest
            self._report()
            if self._clock() >= deadline:
                break
        if newest is None:
            self.replies_missed += 1
            self.throttle.log(logging.WARNING, "missed", f"VESC on {self.name}: no telemetry reply within "
                                                         f"{timeout_s * 1e3:.1f} ms ({self.replies_missed} missed so far)")
        return newest

    def _newest_values(self, payloads: list[bytes]) -> VescValues | None:
        newest = None
        for payload in payloads:
            if payload[0] != codec.COMM_GET_VALUES:
                continue
            try:
                newest = parse_values(payload)
            except codec.VescProtocolError as err:
                self.throttle.log(logging.WARNING, "parse", f"VESC on {self.name}: rejected a telemetry reply: {err}")
        return newest

    def _report(self) -> None:
        for reason, detail in self.decoder.take_errors():
            stats = self.decoder.stats
            self.throttle.log(logging.WARNING, reason,
                              f"VESC on {self.name}: rejected a corrupt frame ({reason}: {detail}); "
                              f"{stats.rejected_total} rejected, {stats.skipped_bytes} byte(s) skipped, "
                              f"{stats.frames} good so far")

    def stats(self) -> dict[str, Any]:
        s = self.decoder.stats
        return {"frames": s.frames, "rejected": dict(s.rejected), "skipped_bytes": s.skipped_bytes,
                "replies_missed": self.replies_missed}
