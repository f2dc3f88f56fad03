"""A VESC at the far end of a pseudo-terminal, for the VESC backend's tests.

The backend opens the pty's slave end with pyserial exactly as it opens ``/dev/ttyACM0``; this
thread owns the master end and speaks the VESC packet format: frames are cut out of the byte
stream with **pyvesc's** framing (``pyvesc.packet.codec.unframe``: an implementation independent of
ours), the drive commands are decoded with pyvesc's message classes (``SET_DUTY``, ``SET_CURRENT``,
``SET_CURRENT_BRAKE``, ``SET_RPM``; pyvesc has no ``SET_SERVO_POS``/``ALIVE``, read with ``struct``
here), and ``GET_VALUES`` is answered in the firmware 5.x/6.x layout, written field by field with
``struct`` from the firmware's ``commands.c`` order and framed by pyvesc.

The motor is a first-order model: the ERPM tends to the set-point of the last drive command (RPM,
quickly; duty x ``ERPM_PER_DUTY``, current x ``ERPM_PER_AMP``, slower; 0 when braking; slowly when
released), and the
firmware's own command timeout is modelled (no ``ALIVE``/``SET_*`` for ``firmware_timeout_s`` ->
brake). ``battery_v`` and ``fault_code`` are set by the test; ``reply_hook`` replaces a reply's bytes
(hostile replies); ``vanish()`` closes the master end (an unplugged USB cable).
"""

from __future__ import annotations

import dataclasses
import math
import struct
import time
from collections.abc import Callable

from pyvesc.messages.base import VESCMessage
from pyvesc.packet.codec import frame, unframe

from robot_rl.testing.pty_peer import PtyPeer

ERPM_PER_DUTY = 40000.0
ERPM_PER_AMP = 500.0
RPM_TAU_S = 0.05  # the firmware's speed PID
DRIVE_TAU_S = 0.3  # open-loop duty/current: the car's own inertia
COAST_TAU_S = 1.0
NAMES = {4: "GET_VALUES", 5: "SET_DUTY", 6: "SET_CURRENT", 7: "SET_CURRENT_BRAKE", 8: "SET_RPM",
         12: "SET_SERVO_POS", 30: "ALIVE"}
PYVESC_RAW_SCALE = {5: 1e5, 6: 1e3, 7: 1e3, 8: 1.0}  # pyvesc's fields are the raw ints


@dataclasses.dataclass(frozen=True)
class Received:
    time_s: float
    name: str
    value: float | None


def values_reply(erpm: float, battery_v: float, fault_code: int, motor_current_a: float = 0.0,
                 input_current_a: float = 0.0, duty: float = 0.0, tachometer: int = 0, extended: bool = True) -> bytes:
    """A ``COMM_GET_VALUES`` reply payload as the firmware writes it (``buffer_append_float16/32``:
    the value times the scale, as int16/int32, big-endian)."""
    fields = [(25.0, 10, "h"), (30.0, 10, "h"),                       # temp FET, temp motor [C]
              (motor_current_a, 100, "i"), (input_current_a, 100, "i"),  # currents [A]
              (0.0, 100, "i"), (0.0, 100, "i"),                        # id, iq [A]
              (duty, 1000, "h"), (erpm, 1, "i"), (battery_v, 10, "h"),   # duty, ERPM, input voltage
              (0.5, 1e4, "i"), (0.0, 1e4, "i"), (5.0, 1e4, "i"), (0.0, 1e4, "i"),  # Ah, Ah charged, Wh, Wh charged
              (tachometer, 1, "i"), (abs(tachometer), 1, "i"), (fault_code, 1, "B")]
    if extended:
        fields += [(0.0, 1e6, "i"), (0, 1, "B"), (26.0, 10, "h"), (27.0, 10, "h"), (28.0, 10, "h"),
                   (0.1, 1e3, "i"), (0.2, 1e3, "i"), (0, 1, "B")]  # pid pos, id, 3 MOSFET temps, vd, vq, status
    body = b"".join(struct.pack(">" + fmt, round(value * scale)) for value, scale, fmt in fields)
    return bytes([4]) + body


class VescEmulator(PtyPeer):
    """The emulated VESC (module docstring). Start with ``start()`` (or ``with``); ``port`` is the
    device path the backend opens."""

    def __init__(self, battery_v: float = 11.1, firmware_timeout_s: float = 0.5) -> None:
        super().__init__(thread_name="vesc-emulator", poll_s=0.005)  # self._cond: notified at every command and motor step
        self.battery_v, self.fault_code = battery_v, 0
        self.firmware_timeout_s = firmware_timeout_s
        self.reply_hook: Callable[[bytes], bytes | None] | None = None  # payload -> raw bytes to send (None: none)
        self.received: list[Received] = []
        self.erpm, self.servo, self.mode, self.set_point = 0.0, 0.5, "brake", 0.0
        self.timeouts = 0
        self._last_alive_s = time.monotonic()
        self._stamp_s = time.monotonic()

    # ------------------------------------------------------------------ test side (start, stop, vanish, wait_for: PtyPeer)
    def commands(self, name: str | None = None, since_s: float = -math.inf) -> list[Received]:
        with self._cond:
            return [r for r in self.received if (name is None or r.name == name) and r.time_s >= since_s]

    # ------------------------------------------------------------------ the thread (its loop: PtyPeer._run)
    def _handle_frames(self) -> None:
        while True:
            payload, consumed = unframe(self._buffer)
            self._buffer = self._buffer[consumed:]
            if payload is None:
                return
            self._handle(payload)

    def _handle(self, payload: bytes) -> None:
        now, command_id = time.monotonic(), payload[0]
        value = None
        if command_id in PYVESC_RAW_SCALE:
            message = VESCMessage.unpack(payload)
            value = getattr(message, message._field_names[0]) / PYVESC_RAW_SCALE[command_id]
            self._drive(command_id, value)
        elif command_id == 12:
            value = struct.unpack_from(">h", payload, 1)[0] / 1000.0
            self.servo = value
        with self._cond:
            self.received.append(Received(now, NAMES.get(command_id, f"id {command_id}"), value))
            self._cond.notify_all()
        if command_id != 4 and command_id != 12:
            self._last_alive_s = now  # SET_* and ALIVE reset the firmware's timeout (not GET_VALUES, SERVO)
        if command_id == 4:
            self._reply()

    def _drive(self, command_id: int, value: float) -> None:
        self.mode, self.set_point = {5: ("duty", value * ERPM_PER_DUTY), 6: ("current", value * ERPM_PER_AMP),
                                     7: ("brake", 0.0), 8: ("rpm", value)}[command_id]
        if command_id == 6 and value == 0.0:
            self.mode = "released"

    def _reply(self) -> None:
        payload = values_reply(self.erpm, self.battery_v, self.fault_code, duty=self.erpm / ERPM_PER_DUTY)
        data = frame(payload) if self.reply_hook is None else self.reply_hook(payload)
        if data:
            self._send(data)

    def _step(self) -> None:
        now = time.monotonic()
        dt, self._stamp_s = now - self._stamp_s, now
        if now - self._last_alive_s > self.firmware_timeout_s and self.mode != "brake":
            self.timeouts += 1
            self.mode, self.set_point = "brake", 0.0
        tau = {"released": COAST_TAU_S, "duty": DRIVE_TAU_S, "current": DRIVE_TAU_S}.get(self.mode, RPM_TAU_S)
        target = 0.0 if self.mode in ("brake", "released") else self.set_point
        with self._cond:
            self.erpm += (target - self.erpm) * (1.0 - math.exp(-dt / tau))
            self._cond.notify_all()
