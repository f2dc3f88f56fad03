"""The VESC serial protocol, as far as the car backend speaks it: our own small codec over bytes.

**Frames** (VESC firmware ``packet.c``): a payload of 1..255 bytes travels as
``[2, len, payload..., crc_hi, crc_lo, 3]``, a longer one (up to 65535) as
``[3, len_hi, len_lo, payload..., crc_hi, crc_lo, 3]``; ``crc`` is CRC16-XMODEM (polynomial
0x1021, initial value 0, big-endian) of the payload alone. :func:`encode_frame` builds one;
:class:`FrameDecoder` finds them in a byte stream and rejects corrupt ones (bad length, CRC or
stop byte; a frame cut short is noticed when a complete good frame follows it).

**Payloads** start with a ``COMM_*`` command id (the firmware's ``COMM_PACKET_ID`` enum in
``datatypes.h``) followed by big-endian fields written the way the firmware's ``buffer.c`` does:
``float32(value, scale)`` is the int32 ``value * scale``, ``float16(value, scale)`` the int16.
The commands (scalings from the firmware's ``commands.c``):

=====================  ==  ===========================================================
``COMM_GET_VALUES``     4  no fields (a request); the reply is parsed by :func:`parse_values`
``COMM_SET_DUTY``       5  int32 duty cycle * 1e5 (duty in [-1, 1])
``COMM_SET_CURRENT``    6  int32 motor current [A] * 1e3
``COMM_SET_CURRENT_BRAKE`` 7  int32 brake current [A] * 1e3
``COMM_SET_RPM``        8  int32 electrical RPM (ERPM = mechanical RPM * pole pairs)
``COMM_SET_SERVO_POS`` 12  int16 servo position (0..1) * 1e3
``COMM_ALIVE``         30  no fields: resets the firmware's command timeout (keep-alive)
=====================  ==  ===========================================================

Values are rounded to the nearest integer step (the firmware truncates its own replies; either
is within one quantum). Every ``COMM_SET_*`` command also resets the firmware's timeout.
"""

from __future__ import annotations

import binascii
import dataclasses
import struct

SHORT_START, LONG_START, STOP = 2, 3, 3
MAX_PAYLOAD_BYTES = 1024  # longer declared lengths are rejected at once (the firmware's limit is 512 on most builds)
MAX_BUFFER_BYTES = 8192  # a decoder holding more undecodable bytes than this drops the oldest

COMM_GET_VALUES = 4
COMM_SET_DUTY = 5
COMM_SET_CURRENT = 6
COMM_SET_CURRENT_BRAKE = 7
COMM_SET_RPM = 8
COMM_SET_SERVO_POS = 12
COMM_ALIVE = 30

#: command id -> (name, struct format of its one field or "" for none, scale)
COMMANDS = {
    COMM_GET_VALUES: ("GET_VALUES", "", 1.0),
    COMM_SET_DUTY: ("SET_DUTY", ">i", 1e5),
    COMM_SET_CURRENT: ("SET_CURRENT", ">i", 1e3),
    COMM_SET_CURRENT_BRAKE: ("SET_CURRENT_BRAKE", ">i", 1e3),
    COMM_SET_RPM: ("SET_RPM", ">i", 1.0),
    COMM_SET_SERVO_POS: ("SET_SERVO_POS", ">h", 1e3),
    COMM_ALIVE: ("ALIVE", "", 1.0),
}


class VescProtocolError(ValueError):
    """A payload that does not parse (too short, unknown command id, value out of its field's range)."""


def crc16_xmodem(data: bytes) -> int:
    """CRC16-XMODEM (poly 0x1021, init 0), the VESC packet checksum (``binascii.crc_hqx`` computes it)."""
    return binascii.crc_hqx(data, 0)


# ----------------------------------------------------------------------------- frames
def encode_frame(payload: bytes) -> bytes:
    """One VESC packet around ``payload`` (1..65535 bytes)."""
    n = len(payload)
    if not 0 < n < 65536:
        raise VescProtocolError(f"a VESC payload must be 1..65535 bytes, got {n}")
    header = struct.pack(">BB", SHORT_START, n) if n < 256 else struct.pack(">BH", LONG_START, n)
    return header + payload + struct.pack(">HB", crc16_xmodem(payload), STOP)


@dataclasses.dataclass
class DecoderStats:
    """What a :class:`FrameDecoder` has seen: good frames, rejected ones by reason, skipped bytes."""

    frames: int = 0
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_bytes: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class FrameDecoder:
    """Finds VESC frames in a byte stream (bytes arrive in any chunks).

    ``feed(data)`` returns the payloads of the good frames completed so far, in order. Bytes before
    a start byte are skipped (garbage); a candidate frame with a bad length, CRC or stop byte is
    rejected and the search goes on from its next byte, so a good frame that follows (or hides
    inside) a corrupt one is still found. A candidate that is still incomplete is waited for,
    unless a complete good frame starts after it: then it was cut short (truncated) and is dropped.
    Each rejection is appended to :attr:`errors` as ``(reason, detail)`` -- reason one of ``"bad
    length"``, ``"bad CRC"``, ``"bad stop byte"``, ``"truncated frame"``, ``"garbage"`` -- for the
    caller to take and log, and counted in :attr:`stats`.
    """

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.stats = DecoderStats()
        self.errors: list[tuple[str, str]] = []
        self._buf = bytearray()
        self._resyncing = False  # bytes skipped right after a rejection are its remains, not news

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            self._skip_to_start()
            if not self._buf:
                break
            status, value = self._frame_at(0)
            if status == "ok":
                payload, size = value
                out.append(payload)
                self.stats.frames += 1
                self._resyncing = False
                del self._buf[:size]
            elif status == "bad":
                reason, detail = value
                self._reject(reason, f"{detail}; frame starting {bytes(self._buf[:16]).hex()}")
                del self._buf[:1]
                self._resyncing = True
            else:  # incomplete: wait, unless a good frame after it shows it was cut short
                later = self._next_good_frame(1)
                if later is None:
                    self._limit_buffer()
                    break
                self._reject("truncated frame", f"{later} byte(s) cut short: {bytes(self._buf[:min(later, 16)]).hex()}")
                del self._buf[:later]
        return out

    def take_errors(self) -> list[tuple[str, str]]:
        errors, self.errors = self.errors, []
        return errors

    def _skip_to_start(self) -> None:
        starts = [i for i in (self._buf.find(SHORT_START), self._buf.find(LONG_START)) if i >= 0]
        skip = min(starts) if starts else len(self._buf)
        if skip:
            self.stats.skipped_bytes += skip
            if not self._resyncing:
                self.errors.append(("garbage", f"{skip} byte(s) outside any frame: {bytes(self._buf[:min(skip, 16)]).hex()}"))
            del self._buf[:skip]

    def _frame_at(self, i: int) -> tuple[str, object]:
        """``("ok", (payload, frame size))``, ``("bad", (reason, detail))`` or ``("incomplete", None)``."""
        buf = self._buf
        header = 2 if buf[i] == SHORT_START else 3
        if len(buf) < i + header:
            return "incomplete", None
        n = buf[i + 1] if header == 2 else (buf[i + 1] << 8) | buf[i + 2]
        if not 0 < n <= self.max_payload_bytes:
            return "bad", ("bad length", f"declared {n} bytes")
        size = header + n + 3
        if len(buf) < i + size:
            return "incomplete", None
        payload = bytes(buf[i + header:i + header + n])
        crc = (buf[i + header + n] << 8) | buf[i + header + n + 1]
        if crc != crc16_xmodem(payload):
            return "bad", ("bad CRC", f"crc {crc:04x}, payload's {crc16_xmodem(payload):04x}")
        if buf[i + size - 1] != STOP:
            return "bad", ("bad stop byte", f"stop byte {buf[i + size - 1]}")
        return "ok", (payload, size)

    def _next_good_frame(self, start: int) -> int | None:
        for i in range(start, len(self._buf)):
            if self._buf[i] in (SHORT_START, LONG_START) and self._frame_at(i)[0] == "ok":
                return i
        return None

    def _reject(self, reason: str, detail: str) -> None:
        self._resyncing = True
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        self.errors.append((reason, detail))

    def _limit_buffer(self) -> None:
        excess = len(self._buf) - MAX_BUFFER_BYTES
        if excess > 0:
            self.stats.skipped_bytes += excess
            self.errors.append(("garbage", f"{excess} byte(s) dropped: decoder buffer full"))
            del self._buf[:excess]


# ----------------------------------------------------------------------------- commands
def _command(command_id: int, value: float | None = None) -> bytes:
    name, fmt, scale = COMMANDS[command_id]
    if not fmt:
        return bytes([command_id])
    raw = round(value * scale)
    low, high = (-(2**31), 2**31 - 1) if fmt == ">i" else (-(2**15), 2**15 - 1)
    if not low <= raw <= high:
        raise VescProtocolError(f"{name}: {value} is out of the field's range")
    return bytes([command_id]) + struct.pack(fmt, raw)


def set_duty(duty: float) -> bytes:
    """``COMM_SET_DUTY`` payload: duty cycle in [-1, 1]."""
    if not -1.0 <= duty <= 1.0:
        raise VescProtocolError(f"SET_DUTY: duty must be in [-1, 1], got {duty}")
    return _command(COMM_SET_DUTY, duty)


def set_current(current_a: float) -> bytes:
    """``COMM_SET_CURRENT`` payload: motor current [A] (negative: reverse torque)."""
    return _command(COMM_SET_CURRENT, current_a)


def set_current_brake(current_a: float) -> bytes:
    """``COMM_SET_CURRENT_BRAKE`` payload: brake current [A], >= 0."""
    if current_a < 0:
        raise VescProtocolError(f"SET_CURRENT_BRAKE: the brake current must be >= 0 A, got {current_a}")
    return _command(COMM_SET_CURRENT_BRAKE, current_a)


def set_rpm(erpm: float) -> bytes:
    """``COMM_SET_RPM`` payload: electrical RPM set-point of the firmware's speed controller."""
    return _command(COMM_SET_RPM, erpm)


def set_servo_pos(position: float) -> bytes:
    """``COMM_SET_SERVO_POS`` payload: servo output position in [0, 1]."""
    if not 0.0 <= position <= 1.0:
        raise VescProtocolError(f"SET_SERVO_POS: position must be in [0, 1], got {position}")
    return _command(COMM_SET_SERVO_POS, position)


def alive() -> bytes:
    """``COMM_ALIVE`` payload: the keep-alive."""
    return _command(COMM_ALIVE)


def get_values() -> bytes:
    """``COMM_GET_VALUES`` payload: the telemetry request."""
    return _command(COMM_GET_VALUES)


def parse_command(payload: bytes) -> tuple[str, float | None]:
    """``(name, value in SI units or None)`` of a command payload built by this module."""
    if not payload or payload[0] not in COMMANDS:
        raise VescProtocolError(f"unknown VESC command id {payload[:1].hex() or '(empty)'}")
    name, fmt, scale = COMMANDS[payload[0]]
    if not fmt:
        return name, None
    if len(payload) != 1 + struct.calcsize(fmt):
        raise VescProtocolError(f"{name}: payload of {len(payload)} bytes, expected {1 + struct.calcsize(fmt)}")
    return name, struct.unpack_from(fmt, payload, 1)[0] / scale
