"""An in-test Crazyflie on ``udp://127.0.0.1:PORT``: it answers the CRTP packets cflib sends, with the
real packet layouts, in front of the simulated vehicle of :mod:`crazyflie_sim`.

What it speaks (port: channel), as the firmware does for the parts a host uses:

* link control (15): echo (cflib's latency pings) and the "Bitcraze Crazyflie" source string;
* platform (13): the CRTP protocol version;
* memory (4): "no memories";
* log (5): the TOC (v2 info and items), block create/append/start/stop/delete/reset, and the data of
  started blocks at their periods (values packed as the block asked: int16, uint32, float, ...);
* param (2): the TOC, reads and writes (the write echoes the value the "firmware" now holds);
* commander (3) RPYT, generic commander (7) stop / velocity-world / notify-setpoint-stop, high-level
  commander (8) land, supervisor (9) arming, emergency stop and the bitfield.

Anything else, or a packet of the wrong length, is recorded in ``protocol_errors``. Faults for tests:
``downlink_muted`` (nothing goes back: the radio out of range one way), ``refuse_params`` (writes
are echoed with the old value), ``garble_toc_item`` (that log TOC item goes out with a type byte no
firmware uses), ``inject(raw)`` (send any datagram), ``kill()`` (the peer is gone).

:class:`PeerProcess` runs the peer in a process of its own, as a drone is a device of its own: the
backend under test then competes with it neither for the GIL nor for its thread's time slices.
"""

from __future__ import annotations

import errno
import math
import select
import socket
import struct
import threading
import time

import numpy as np

from crazyflie_sim import SimulatedCrazyflie

LINKCTRL, PLATFORM, MEM, LOG, PARAM, COMMANDER, GENERIC, HIGH_LEVEL, SUPERVISOR = 15, 13, 4, 5, 2, 3, 7, 8, 9
PROTOCOL_VERSION = 12
TICK_S = 0.01  # physics and log-block granularity (the firmware's log period unit)
LOG_TYPES = {1: "<B", 2: "<H", 3: "<I", 4: "<b", 5: "<h", 6: "<i", 7: "<f", 8: "<e"}
INT16, UINT16, UINT32, FLOAT, UINT8 = 5, 2, 3, 7, 0x08
LOG_TOC = (("stateEstimateZ", "x", INT16), ("stateEstimateZ", "y", INT16), ("stateEstimateZ", "z", INT16),
           ("stateEstimateZ", "vx", INT16), ("stateEstimateZ", "vy", INT16), ("stateEstimateZ", "vz", INT16),
           ("stateEstimateZ", "quat", UINT32), ("stateEstimateZ", "rateRoll", INT16),
           ("stateEstimateZ", "ratePitch", INT16), ("stateEstimateZ", "rateYaw", INT16),
           ("pm", "vbat", FLOAT), ("supervisor", "info", UINT16))
PARAM_TOC = (("flightmode", "stabModeRoll"), ("flightmode", "stabModePitch"), ("flightmode", "stabModeYaw"),
             ("commander", "enHighLevel"))


def compress_quaternion(quat_xyzw: np.ndarray) -> int:
    """The firmware's ``quatcompress`` (quatcompress.h): the index of the largest component in the top
    bits, then the other three as sign + 9-bit magnitude over 1/sqrt(2); written here from the format."""
    q = np.asarray(quat_xyzw, dtype=float)
    largest = int(np.argmax(np.abs(q)))
    negate = q[largest] < 0
    packed = largest
    for i in range(4):
        if i != largest:
            negative = (q[i] < 0) != negate
            packed = (packed << 10) | (int(negative) << 9) | int(511 * abs(q[i]) / math.sqrt(0.5) + 0.5)
    return packed


def state_log_values(vehicle: SimulatedCrazyflie) -> dict[str, float]:
    """The logged variables from the vehicle's true state, in the firmware's units and signs."""
    s = vehicle.snapshot()
    pos_mm, vel_mm_s, rates_mrad_s = s.pos_m * 1000.0, s.vel_m_s * 1000.0, s.rates_rad_s * 1000.0
    w, x, y, z = s.quat_wxyz
    values = {f"stateEstimateZ.{k}": v for k, v in zip(("x", "y", "z", "vx", "vy", "vz"), (*pos_mm, *vel_mm_s))}
    values.update({"stateEstimateZ.quat": compress_quaternion(np.array([x, y, z, w])),
                   "stateEstimateZ.rateRoll": rates_mrad_s[0],
                   "stateEstimateZ.ratePitch": -rates_mrad_s[1],  # the legacy pitch sign: ratePitch = -gyro.y
                   "stateEstimateZ.rateYaw": rates_mrad_s[2],
                   "pm.vbat": vehicle.battery_v, "supervisor.info": vehicle.supervisor_info()})
    return values


def _pack(fmt: str, value: float) -> bytes:
    if fmt in ("<f", "<e"):
        return struct.pack(fmt, value)
    info = np.iinfo({"<B": np.uint8, "<H": np.uint16, "<I": np.uint32, "<b": np.int8, "<h": np.int16,
                     "<i": np.int32}[fmt])
    return struct.pack(fmt, int(np.clip(round(value), info.min, info.max)))


class LogBlock:
    def __init__(self, variables: list[tuple[int, int]]) -> None:
        self.variables = variables  # (toc id, fetch type)
        self.period_s: float | None = None
        self.next_s = 0.0


class CrtpPeer:
    """The peer (module docstring). ``start()`` binds 127.0.0.1 on a free port and returns the URI."""

    def __init__(self, vehicle: SimulatedCrazyflie | None = None, supervisor_info: bool = True) -> None:
        self.vehicle = vehicle or SimulatedCrazyflie()
        self.log_toc = LOG_TOC if supervisor_info else LOG_TOC[:-1]
        self.protocol_errors: list[str] = []
        self.downlink_muted = False
        self.refuse_params = False
        self.garble_toc_item: int | None = None
        self.blocks: dict[int, LogBlock] = {}
        self.log_packets_sent = 0
        self._sock: socket.socket | None = None
        self._client: tuple | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._run, name="crtp peer", daemon=True)
        self._thread.start()
        return f"udp://127.0.0.1:{self._sock.getsockname()[1]}"

    def kill(self) -> None:
        """The Crazyflie is gone: the socket closes, nothing answers any more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()

    def inject(self, raw: bytes) -> None:
        """Send any datagram to the client (hostile-peer tests)."""
        self._sock.sendto(raw, self._client)

    # ------------------------------------------------------------------ the loop: packets, physics, logs
    def _run(self) -> None:
        last_s = next_tick_s = time.monotonic()
        while not self._stop.is_set():
            # packets until the tick is due, at most 32 a turn: a starved peer still ticks, and still keeps up
            for _ in range(32):
                if not select.select([self._sock], [], [], max(0.0, next_tick_s - time.monotonic()))[0]:
                    break
                data, self._client = self._sock.recvfrom(256)
                self._handle(data)
            now = time.monotonic()
            if now >= next_tick_s:
                last_s, next_tick_s = now, self._tick(now, last_s, next_tick_s)

    def _tick(self, now: float, last_s: float, next_tick_s: float) -> float:
        """Physics up to ``now`` and the log blocks that are due; a failure is recorded, never fatal."""
        try:
            self.vehicle.advance(min(now - last_s, 0.05), now)
            self._send_due_blocks(now)
        except Exception as err:
            self.protocol_errors.append(f"peer tick failed: {type(err).__name__}: {err}")
        return max(next_tick_s + TICK_S, now)

    def _send(self, port: int, channel: int, payload: bytes) -> None:
        if not self.downlink_muted and self._client is not None:
            self._sock.sendto(bytes([(port << 4) | 0x0C | channel]) + payload, self._client)

    def _handle(self, data: bytes) -> None:
        if not data:
            return
        port, channel, payload = data[0] >> 4, data[0] & 0x03, data[1:]
        handler = {LINKCTRL: self._linkctrl, PLATFORM: self._platform, MEM: self._mem, LOG: self._log,
                   PARAM: self._param, COMMANDER: self._commander, GENERIC: self._generic,
                   HIGH_LEVEL: self._high_level, SUPERVISOR: self._supervisor}.get(port)
        try:
            if handler is None or not handler(channel, payload):
                self.protocol_errors.append(f"unhandled port {port} channel {channel}: {payload.hex()}")
        except (struct.error, IndexError, KeyError) as err:
            self.protocol_errors.append(f"malformed port {port} channel {channel}: {payload.hex()} ({err})")

    # ------------------------------------------------------------------ services
    def _linkctrl(self, channel: int, payload: bytes) -> bool:
        if channel == 0:  # echo
            self._send(LINKCTRL, 0, payload)
        elif channel == 1:  # source
            self._send(LINKCTRL, 1, b"Bitcraze Crazyflie")
        return channel in (0, 1, 3)  # 3: the null packet

    def _platform(self, channel: int, payload: bytes) -> bool:
        if channel == 1 and payload[0] == 0:  # version: protocol
            self._send(PLATFORM, 1, bytes([0, PROTOCOL_VERSION]))
            return True
        return False

    def _mem(self, channel: int, payload: bytes) -> bool:
        if channel == 0 and payload[0] == 1:  # number of memories
            self._send(MEM, 0, bytes([1, 0]))
            return True
        return False

    def _toc(self, port: int, payload: bytes, entries: list[tuple[int, bytes]]) -> bool:
        if payload[0] == 3:  # info v2: count, crc, (log: max packet, max ops)
            self._send(port, 0, struct.pack("<BHIBB", 3, len(entries), 0x5EED0000 + len(entries), 16, 128))
            return True
        if payload[0] == 2:  # item v2
            index = struct.unpack("<H", payload[1:3])[0]
            type_byte, text = entries[index]
            garbled = port == LOG and index == self.garble_toc_item
            self._send(port, 0, struct.pack("<BHB", 2, index, 0x0F if garbled else type_byte) + text)
            return True
        return False

    def _log(self, channel: int, payload: bytes) -> bool:
        if channel == 0:
            return self._toc(LOG, payload, [(t, f"{g}\0{n}\0".encode()) for g, n, t in self.log_toc])
        if channel != 1:
            return False
        cmd, block_id = payload[0], payload[1] if len(payload) > 1 else 0
        if cmd in (3, 4, 7) and block_id not in self.blocks:
            self._send(LOG, 1, bytes([cmd, block_id, errno.ENOENT]))
            return True
        if cmd in (6, 7):  # create / append v2: (type byte, id lo, id hi) per variable; a partial triple is
            body = payload[2:]  # ignored, as the firmware does ((length - 2) / 3 operations)
            variables = [(body[i + 1] | body[i + 2] << 8, body[i] & 0x0F) for i in range(0, len(body) - 2, 3)]
            if cmd == 6:
                self.blocks[block_id] = LogBlock(variables)
            else:
                self.blocks[block_id].variables += variables
        elif cmd == 3:  # start, period in 10 ms
            self.blocks[block_id].period_s = payload[2] * 0.01
        elif cmd == 4:  # stop
            self.blocks[block_id].period_s = None
        elif cmd == 2:  # delete
            self.blocks.pop(block_id, None)
        elif cmd == 5:  # reset
            self.blocks.clear()
        else:
            return False
        self._send(LOG, 1, bytes([cmd, block_id, 0]))
        return True

    def _send_due_blocks(self, now_s: float) -> None:
        due = [(i, b) for i, b in self.blocks.items() if b.period_s is not None and now_s >= b.next_s]
        if not due:
            return
        values = state_log_values(self.vehicle)
        stamp_ms = int((now_s - self._t0) * 1000) & 0xFFFFFF
        for block_id, block in due:
            block.next_s = max(block.next_s + block.period_s, now_s)
            body = b"".join(_pack(LOG_TYPES[fetch], values[".".join(self.log_toc[var][:2])])
                            for var, fetch in block.variables)
            self._send(LOG, 2, bytes([block_id]) + stamp_ms.to_bytes(3, "little") + body)
            self.log_packets_sent += 1

    def _param(self, channel: int, payload: bytes) -> bool:
        if channel == 0:
            return self._toc(PARAM, payload, [(UINT8, f"{g}\0{n}\0".encode()) for g, n in PARAM_TOC])
        params = self.vehicle.flight_params
        if channel in (1, 2):
            index = struct.unpack("<H", payload[:2])[0]
            name = ".".join(PARAM_TOC[index])
            if channel == 2 and not self.refuse_params:
                with self.vehicle.lock:
                    params[name] = payload[2]
            status = b"\0" if channel == 1 else b""
            self._send(PARAM, channel, payload[:2] + status + bytes([params[name]]))
            return True
        return False

    def _commander(self, channel: int, payload: bytes) -> bool:
        self.vehicle.receive("rpyt", struct.unpack("<fffH", payload), time.monotonic())
        return True

    def _generic(self, channel: int, payload: bytes) -> bool:
        now = time.monotonic()
        if channel == 1 and payload[0] == 0:  # meta: notify setpoint stop
            self.vehicle.notify_stop(now)
        elif channel == 0 and payload[0] == 0 and len(payload) == 1:
            self.vehicle.receive("stop", (), now)
        elif channel == 0 and payload[0] == 8:  # velocity world (protocol > 8)
            self.vehicle.receive("velocity", struct.unpack("<ffff", payload[1:]), now)
        else:
            return False
        return True

    def _high_level(self, channel: int, payload: bytes) -> bool:
        if payload[0] == 8:  # land 2: group mask, height, yaw, use current yaw, duration
            _, _, height, yaw, use_current, duration = struct.unpack("<BBff?f", payload)
            self.vehicle.receive("land", (height, yaw, use_current, duration), time.monotonic())
            return True
        return False

    def _supervisor(self, channel: int, payload: bytes) -> bool:
        if channel == 1 and payload[0] == 1:  # arm / disarm
            armed = self.vehicle.arm(bool(payload[1]))
            self._send(SUPERVISOR, 1, bytes([0x81, 1, int(armed)]))
        elif channel == 1 and payload[0] == 3:
            self.vehicle.emergency_stop()
        elif channel == 0 and payload[0] == 0x0C:
            self._send(SUPERVISOR, 0, bytes([0x8C]) + self.vehicle.supervisor_info().to_bytes(2, "little"))
        else:
            return False
        return True


# ---------------------------------------------------------------------- the peer in its own process
def _resolve(root: object, path: str) -> tuple[object, str]:
    *parents, name = path.split(".")
    for part in parents:
        root = getattr(root, part)
    return root, name


def _serve(conn) -> None:
    """The peer process: one :class:`CrtpPeer` at a time, driven by ``(op, path, args)`` requests."""
    peer: CrtpPeer | None = None
    while True:
        try:
            op, path, args = conn.recv()
        except EOFError:  # the test process is gone
            break
        try:
            if op == "restart":
                if peer is not None:
                    peer.kill()
                peer = CrtpPeer(SimulatedCrazyflie(battery_v=args[1]), supervisor_info=args[0])
                result = peer.start()
            else:
                owner, name = _resolve(peer, path)
                result = {"get": lambda: getattr(owner, name), "set": lambda: setattr(owner, name, args[0]),
                          "call": lambda: getattr(owner, name)(*args)}[op]()
            conn.send(("ok", result))
        except Exception as err:  # report to the test, keep serving
            conn.send(("error", f"{type(err).__name__}: {err}"))
    if peer is not None:
        peer.kill()


class PeerProcess:
    """A :class:`CrtpPeer` in a spawned process, reached through a pipe with a deadline on every request.

    ``restart()`` gives a fresh peer (new port, new vehicle) in the same process; ``get``/``set``/``call``
    reach the peer's attributes by dotted path (``"vehicle.armed"``, ``"vehicle.place"``).
    """

    def __init__(self, timeout_s: float = 10.0) -> None:
        import multiprocessing

        self.timeout_s = timeout_s
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="crtp peer", daemon=True)
        self._process.start()
        child.close()
        self.uri = ""

    def _request(self, op: str, path: str, *args: object) -> object:
        self._conn.send((op, path, args))
        if not self._conn.poll(self.timeout_s):
            raise TimeoutError(f"the CRTP peer process did not answer {op} {path} within {self.timeout_s} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"the CRTP peer failed on {op} {path}: {value}")
        return value

    def restart(self, supervisor_info: bool = True, battery_v: float = 4.0) -> str:
        self.uri = self._request("restart", "", supervisor_info, battery_v)
        return self.uri

    def get(self, path: str) -> object:
        return self._request("get", path)

    def set(self, path: str, value: object) -> None:
        self._request("set", path, value)

    def call(self, path: str, *args: object) -> object:
        return self._request("call", path, *args)

    def close(self) -> None:
        self._conn.close()  # the server sees EOF, kills its peer and returns
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5.0)
