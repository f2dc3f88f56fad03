"""A Robotiq 2F gripper at the far end of a pseudo-terminal, for the gripper driver's tests.

The driver opens the pty's slave end with pyserial exactly as it opens the RS-485 adapter; this
thread owns the master end and answers as the gripper in Modbus RTU. Everything here is written
from the manual with ``struct`` and its own CRC-16/Modbus, sharing no code with the driver or
with minimalmodbus: frames are cut by function code (FC16: 9 + byte-count bytes, FC03/FC04: 8),
a frame whose CRC does not match is dropped unanswered (``rejected_frames``), a frame for another
slave id is ignored, an unknown function or a register outside the map gets a Modbus exception.

The register map is the manual's byte list: the FC16 data bytes are Robot Output bytes 0..5
(action request, reserved, reserved, rPR, rSP, rFR), the FC04 reply is Robot Input bytes
(gripper status, reserved, fault, gPR, gPO, gCU). The gripper model: a rising ``rACT`` starts an
activation that completes after ``activation_time_s`` with the fingers open; ``rACT = 0`` resets
(and clears faults); with ``rGTO`` the position moves toward ``rPR`` (clamped to the fingers'
ends ``open_end``..``closed_end``) at the speed ``rSP`` maps to, and stops on ``object_position``
when closing onto it (``gOBJ = 2``). ``inject_fault`` sets ``gFLT`` (major faults stop the fingers
until a reset); ``comm_timeout_s`` models fault 0x09 (no communication for that long, reported once).
Hostile modes: ``silent`` (no replies), ``corrupt_replies`` (a wrong CRC), ``vanish()`` (unplugged).
"""

from __future__ import annotations

import dataclasses
import struct
import time

from robot_rl.testing.pty_peer import PtyPeer

OUTPUT_FIRST, OUTPUT_LAST = 0x03E8, 0x03EF  # 8 registers = Robot Output bytes 0..15
STATUS_FIRST, STATUS_LAST = 0x07D0, 0x07D7


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16_modbus(body))


@dataclasses.dataclass(frozen=True)
class Written:
    """One FC16 write of the Robot Output block, as Robot Output bytes."""

    time_s: float
    frame: bytes
    action: int
    position: int
    speed: int
    force: int

    @property
    def activate(self) -> bool:
        return bool(self.action & 0x01)

    @property
    def go_to(self) -> bool:
        return bool(self.action & 0x08)


class RobotiqEmulator(PtyPeer):
    """The emulated gripper (module docstring). ``port`` is the device path the driver opens."""

    def __init__(self, slave_id: int = 9, stroke_m: float = 0.085, open_end: int = 0, closed_end: int = 255,
                 speed_range_m_s: tuple[float, float] = (0.020, 0.150), activation_time_s: float = 0.1,
                 comm_timeout_s: float | None = None) -> None:
        super().__init__(thread_name="robotiq-emulator", poll_s=0.002)
        self.slave_id, self.stroke_m, self.open_end, self.closed_end = slave_id, stroke_m, open_end, closed_end
        self.speed_range_m_s, self.activation_time_s, self.comm_timeout_s = speed_range_m_s, activation_time_s, comm_timeout_s
        self.output = bytearray(16)  # Robot Output bytes as last written
        self.activation_state, self.position, self.object_status, self.fault = 0, float(open_end), 0, 0
        self.object_position: int | None = None
        self.silent = self.corrupt_replies = False
        self.writes: list[Written] = []
        self.reads = self.rejected_frames = self.steps = 0
        self._activation_done_s = 0.0
        self._last_frame_s = self._stamp_s = time.monotonic()

    # ------------------------------------------------------------------ test side (start, stop, vanish, wait_for: PtyPeer)
    def inject_fault(self, code: int) -> None:
        with self._cond:
            self.fault = code

    def position_of_width(self, width_m: float) -> int:
        """The position byte at which the fingers are ``width_m`` apart (this gripper's ends)."""
        return round(self.open_end + (1.0 - width_m / self.stroke_m) * (self.closed_end - self.open_end))

    # ------------------------------------------------------------------ the thread (its loop: PtyPeer._run)
    def _handle_frames(self) -> None:
        while len(self._buffer) >= 8:
            function = self._buffer[1]
            size = 9 + self._buffer[6] if function == 16 else 8 if function in (3, 4) else len(self._buffer)
            if len(self._buffer) < size:
                return
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            if struct.unpack("<H", frame[-2:])[0] != crc16_modbus(frame[:-2]):
                self.rejected_frames += 1
                self._buffer = b""  # resynchronise on the next frame
                continue
            if frame[0] == self.slave_id and not self.silent:
                self._last_frame_s = time.monotonic()
                self._reply(self._answer(frame))

    def _answer(self, frame: bytes) -> bytes:
        function = frame[1]
        if function == 16:
            return self._write_registers(frame)
        if function in (3, 4):
            start, count = struct.unpack(">HH", frame[2:6])
            if not (start == STATUS_FIRST and 1 <= count and start + count - 1 <= STATUS_LAST):
                return self._exception(function, 0x02)
            with self._cond:
                data = self._status_bytes()[:2 * count]
                self.reads += 1
                if self.fault == 0x09:
                    self.fault = 0  # reported once
            return bytes([self.slave_id, function, len(data)]) + data
        return self._exception(function, 0x01)

    def _write_registers(self, frame: bytes) -> bytes:
        start, count, byte_count = struct.unpack(">HHB", frame[2:7])
        if byte_count != 2 * count or not (OUTPUT_FIRST <= start and start + count - 1 <= OUTPUT_LAST):
            return self._exception(16, 0x02)
        offset = 2 * (start - OUTPUT_FIRST)
        with self._cond:
            previous_act = self.output[0] & 0x01
            self.output[offset:offset + byte_count] = frame[7:7 + byte_count]
            out = self.output
            self.writes.append(Written(time.monotonic(), bytes(frame), out[0], out[3], out[4], out[5]))
            self._apply_action(previous_act)
            self._cond.notify_all()
        return frame[:6]  # the echo: slave, function, start, count

    def _apply_action(self, previous_act: int) -> None:
        act, go = self.output[0] & 0x01, self.output[0] & 0x08
        if not act:
            self.activation_state, self.fault = 0, 0x07 if go else 0
        elif not previous_act:
            self.activation_state, self.fault = 1, 0
            self._activation_done_s = time.monotonic() + self.activation_time_s
        elif go and self.activation_state == 1:
            self.fault = 0x05

    def _status_bytes(self) -> bytes:
        act, go = self.output[0] & 0x01, (self.output[0] >> 3) & 0x01
        activated = 1 if act and self.activation_state else 0
        gripper_status = activated | go << 3 | self.activation_state << 4 | self.object_status << 6
        moving = go and self.object_status == 0
        current = 0x10 if moving else (0x20 + self.output[5] // 8 if self.object_status in (1, 2) else 0)
        return bytes([gripper_status, 0, self.fault, self.output[3], round(self.position), current]) + bytes(10)

    def _exception(self, function: int, code: int) -> bytes:
        return bytes([self.slave_id, function | 0x80, code])

    def _reply(self, body: bytes) -> None:
        data = with_crc(body)
        if self.corrupt_replies:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self._send(data)

    def _step(self) -> None:
        now = time.monotonic()
        dt, self._stamp_s = now - self._stamp_s, now
        with self._cond:
            self.steps += 1
            if self.activation_state == 1 and now >= self._activation_done_s:
                self.activation_state, self.position, self.object_status = 3, float(self.open_end), 0
            if self.comm_timeout_s is not None and self.activation_state == 3 and self.fault == 0 \
                    and now - self._last_frame_s > self.comm_timeout_s:
                self.fault = 0x09
            if self.activation_state == 3 and self.output[0] & 0x08 and self.fault < 0x0A:
                self._move(dt)
            self._cond.notify_all()

    def _move(self, dt: float) -> None:
        target = min(max(self.output[3], self.open_end), self.closed_end)
        low, high = self.speed_range_m_s
        speed_m_s = low + (high - low) * self.output[4] / 255
        step = speed_m_s / self.stroke_m * (self.closed_end - self.open_end) * dt
        before = self.position
        self.position = min(before + step, target) if target >= before else max(before - step, target)
        blocker = self.object_position
        if blocker is not None and before <= blocker < target and self.position >= blocker:
            self.position, self.object_status = float(blocker), 2  # contact while closing
        else:
            self.object_status = 3 if self.position == target else 0
