"""The data and the three ways of moving transitions that benchmarks/transport.py and
benchmarks/transport_ingest.py compare (senders and receivers; the harnesses are there).

Every variant sends the same steps: chunks of CHUNK = 10 steps (what our actor sends by default,
``--chunk-steps 10``; SERL's actors update every 30-50 steps), each step 30 float32 state + 7
float32 action, and for image runs two 128x128x3 uint8 cameras rendered once from our simulator
(pick_cube, camera-like: lz4 can compress them, unlike noise), the same frames for all variants.

- ``ours``: DEALER -> ROUTER, one typed ``transitions`` message per chunk
  (robot_rl.transport.messages: multipart with zero-copy arrays when large, one packed frame when
  small), sent without waiting per message; the receiver decodes it (zero copy, full
  validation) and copies every array into a preallocated ring. Observations travel once (the
  chunk's rows are the next observations; the previous one is the previous chunk's last row).
- ``agentlace``: what SERL/HIL-SERL's agentlace (github youliangtan/agentlace) does, written
  here from its behaviour. The actor inserts one dict per step into a queued data store:
  ``observations`` and ``next_observations`` (dicts with every key, cameras included; the next
  step's ``observations`` is the same dict object, as in SERL's ``obs = next_obs``, so pickle's
  memo sends it once per update), ``actions`` (7,), ``rewards``, ``masks`` (1 - done) and
  ``dones``. Every chunk it updates the learner with TWO REQ -> REP round trips:
  ``get_last_update_id``, then ``datastore`` carrying the list of dicts since that id. Every
  request and reply is ``lz4.frame.compress(pickle.dumps(obj))`` (agentlace's default). The REP
  server decompresses and unpickles, and inserts the transitions one by one, under a lock, into
  a preallocated ring with ``observations/*`` and ``next_observations/*`` both stored (SERL's
  default ReplayBuffer copies every key of the dict at the insert index).
- ``lean``: leaner than agentlace (the baseline before): REQ -> REP, one ``pickle.dumps`` of a dict
  of the chunk's stacked arrays (no next_observations, no compression, one round trip); the
  server copies them into the same ring as ``ours`` and replies.
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

try:
    import lz4.frame
except ImportError:
    raise SystemExit("benchmarks/transport.py needs lz4 for its agentlace baseline: .venv/bin/pip install -e '.[bench]'") from None

from robot_rl.transport import messages
from robot_rl.transport.messages import Transitions

VARIANTS = ("ours", "agentlace", "lean")
CHUNK = 10  # steps per message (ours, lean) and per update (agentlace)
RING = 2000  # ring capacity in transitions (a multiple of CHUNK)
QUEUE_BYTES = 16 * 2**20  # ours: high-water marks of about this much queued at each end
STORE_CAPACITY = 2000  # the actor's queued data store (SERL's async_drq_sim uses 2000)
REPLY_TIMEOUT_S = 30.0  # a REQ waits at most this for its reply
STORE = "actor_env"

Frames = dict[str, np.ndarray]  # camera -> (CHUNK + 1, H, W, 3) uint8: observations 0..CHUNK


# ------------------------------------------------------------------------------ data and ring


def camera_frames(size: int = 128) -> tuple[Frames, str]:
    """CHUNK + 1 consecutive frames of both cameras: rendered by pick_cube, else synthetic."""
    try:
        import robot_rl

        env = robot_rl.make("pick_cube", obs="pixels", image_height=size, image_width=size)
        rng, (obs, _) = np.random.default_rng(0), env.reset(seed=0)
        shots = [obs]
        for _ in range(CHUNK):
            shots.append(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[0])
        env.close()
        return {cam: np.stack([s[cam] for s in shots]) for cam in ("front", "wrist")}, "rendered by pick_cube"
    except Exception as err:  # no renderer here: a smooth image plus small noise
        rng, ramp = np.random.default_rng(0), np.linspace(0, 200, size, dtype=np.float32)
        base = np.stack([ramp[:, None] + 0 * ramp, ramp[None, :] + 0 * ramp[:, None], (ramp[:, None] + ramp) / 2], -1)
        frames = np.clip(base + rng.normal(0, 3, (CHUNK + 1, size, size, 3)), 0, 255).astype(np.uint8)
        return {"front": frames, "wrist": frames[:, ::-1].copy()}, f"synthetic ({type(err).__name__}: {err})"[:200]


def make_chunk(frames: Frames | None, seq: int = 0) -> Transitions:
    """CHUNK steps in the middle of an episode; observations: the CHUNK next observations."""
    rng = np.random.default_rng(seq)
    obs = {"state": rng.standard_normal((CHUNK, 30), dtype=np.float32)}
    obs.update({camera: array[1:] for camera, array in (frames or {}).items()})
    return Transitions("bench", seq, 0, 1 + seq * CHUNK, rng.standard_normal((CHUNK, 7), dtype=np.float32),
                       rng.standard_normal(CHUNK, dtype=np.float32), np.zeros(CHUNK, bool), np.zeros(CHUNK, bool),
                       np.zeros(CHUNK, bool), obs)


def chunk_arrays(chunk: Transitions) -> dict[str, np.ndarray]:
    arrays = {name: getattr(chunk, name) for name in ("action", "reward", "terminated", "truncated", "intervention")}
    return arrays | {f"obs/{k}": v for k, v in chunk.observations.items()}


class Ring:
    """Preallocated storage a receiver copies every transition into; ``add`` takes CHUNK rows
    per key (ours, lean), ``insert`` one agentlace transition dict (nested keys flattened)."""

    def __init__(self, example: dict[str, np.ndarray], rows: bool = True):
        skip = 1 if rows else 0  # rows: the example holds CHUNK rows per key, else one transition
        self.arrays = {k: np.zeros((RING, *np.shape(v)[skip:]), np.asarray(v).dtype) for k, v in example.items()}
        for array in self.arrays.values():
            array.fill(1)  # touch every page now, not during the measurement
        self.pos, self.lock = 0, threading.Lock()

    def add(self, arrays: dict[str, np.ndarray]) -> int:
        count = len(arrays["action"])
        for name, target in self.arrays.items():
            target[self.pos:self.pos + count] = arrays[name]
        self.pos = (self.pos + count) % RING
        return count

    def insert(self, transition: dict[str, Any]) -> None:
        """SERL's insert: every key of the dict (observations and next_observations) at pos."""
        with self.lock:
            for key, value in transition.items():
                if isinstance(value, dict):
                    for name, array in value.items():
                        self.arrays[f"{key}/{name}"][self.pos] = array
                else:
                    self.arrays[key][self.pos] = value
            self.pos = (self.pos + 1) % RING


def end_process(process: Any, timeout_s: float = 5.0) -> None:
    """Wait up to ``timeout_s`` for a spawned helper process to exit, then terminate it."""
    process.join(timeout_s)
    if process.is_alive():
        process.terminate()
        process.join(5)


def high_water_mark(frames: Frames | None) -> int:
    """Messages of one chunk that fit in QUEUE_BYTES."""
    return max(4, QUEUE_BYTES // sum(a.nbytes for a in chunk_arrays(make_chunk(frames)).values()))


# ------------------------------------------------------------------------------ agentlace


def compress(obj: Any) -> bytes:
    return lz4.frame.compress(pickle.dumps(obj))


def decompress(buffer: Any) -> Any:
    return pickle.loads(lz4.frame.decompress(buffer))


def flatten(transition: dict[str, Any]) -> dict[str, Any]:
    """``{"observations": {"state": a}, "actions": b}`` -> ``{"observations/state": a, "actions": b}``."""
    out = {}
    for key, value in transition.items():
        out.update({f"{key}/{name}": array for name, array in value.items()} if isinstance(value, dict) else {key: value})
    return out


class QueuedStore:
    """The actor's store: ids and transitions in bounded deques (agentlace's QueuedDataStore)."""

    def __init__(self, capacity: int = STORE_CAPACITY):
        self.ids, self.data = collections.deque(maxlen=capacity), collections.deque(maxlen=capacity)
        self.latest, self.lock = -1, threading.Lock()

    def insert(self, transition: dict[str, Any]) -> None:
        with self.lock:
            self.latest += 1
            self.ids.append(self.latest)
            self.data.append(transition)

    def since(self, last_id: int) -> list[dict[str, Any]]:
        with self.lock:
            if not self.ids or last_id >= self.latest:
                return []
            return list(self.data)[max(0, last_id - self.ids[0] + 1):]  # copies the whole deque, as agentlace


def step_dicts(chunk: Transitions, previous: dict[str, np.ndarray] | None) -> list[dict[str, Any]]:
    """The actor's per-step dicts for one chunk; ``previous``: the last next_observations."""
    out, obs = [], previous
    for t in range(CHUNK):
        next_obs = {key: array[t] for key, array in chunk.observations.items()}  # a new dict per step
        done = bool(chunk.terminated[t] or chunk.truncated[t])
        out.append(dict(observations=next_obs if obs is None else obs, actions=chunk.action[t], next_observations=next_obs,
                        rewards=float(chunk.reward[t]), masks=1.0 - done, dones=done))
        obs = next_obs
    return out


def request(socket: zmq.Socket, message: dict, stop: Any) -> dict | None:
    """One REQ -> REP round trip; None if ``stop`` was set while waiting."""
    socket.send(compress(message))
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while not stop.is_set():
        if socket.poll(100, zmq.POLLIN):
            reply = decompress(socket.recv())
            if not reply.get("success"):
                raise RuntimeError(f"agentlace server refused {message['type']}: {reply}")
            return reply
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {message['type']} within {REPLY_TIMEOUT_S} s")
    return None


def agentlace_sender(socket: zmq.Socket, frames: Frames | None, stop: Any) -> Callable[[int], None]:
    """Per call: CHUNK env steps into the store, then ``TrainerClient.update()``'s two round trips."""
    store, base, last = QueuedStore(), make_chunk(frames), {"obs": None}

    def send(seq: int) -> None:
        for transition in step_dicts(base, last["obs"]):
            store.insert(transition)
        last["obs"] = transition["next_observations"]
        reply = request(socket, {"type": "get_last_update_id", "payload": {"store_name": STORE}}, stop)
        if reply is not None:
            data = store.since(reply["payload"])
            request(socket, {"type": "datastore", "store_name": STORE, "payload": {"data": data, "last_id": store.latest}}, stop)
    return send


def agentlace_receiver(socket: zmq.Socket, ring: Ring) -> Callable[[], int]:
    """The REP server's handler: one request in, one reply out; returns transitions inserted."""
    last_id = {STORE: -1}

    def receive() -> int:
        message = decompress(socket.recv())
        count = 0
        if message["type"] == "get_last_update_id":
            reply = {"success": True, "payload": last_id[message["payload"]["store_name"]]}
        else:
            for transition in message["payload"]["data"]:
                ring.insert(transition)
            count = len(message["payload"]["data"])
            last_id[message["store_name"]] = message["payload"]["last_id"]
            reply = {"success": True}
        socket.send(compress(reply))
        return count
    return receive


# ------------------------------------------------------------------------------ ours and lean


def ours_sender(socket: zmq.Socket, frames: Frames | None, stop: Any) -> Callable[[int], None]:
    base = make_chunk(frames)

    def send(seq: int) -> None:
        frames_out = messages.encode(dataclasses.replace(base, seq=seq, first_step=1 + seq * CHUNK))
        while not stop.is_set():
            try:
                socket.send_multipart(frames_out, copy=False, flags=zmq.NOBLOCK)
                return
            except zmq.Again:  # high-water mark reached: wait, with a deadline
                socket.poll(100, zmq.POLLOUT)
    return send


def lean_sender(socket: zmq.Socket, frames: Frames | None, stop: Any) -> Callable[[int], None]:
    arrays = chunk_arrays(make_chunk(frames))

    def send(seq: int) -> None:
        socket.send(pickle.dumps({"type": "send-data", "payload": arrays}))
        while not stop.is_set():
            if socket.poll(100, zmq.POLLIN):
                socket.recv()
                return
    return send


def ours_receive(socket: zmq.Socket, ring: Ring, flags: int = 0) -> int:
    frames = socket.recv_multipart(copy=False, flags=flags)
    return ring.add(chunk_arrays(messages.decode(frames[1:])))


def make_ring(variant: str, frames: Frames | None) -> Ring:
    if variant == "agentlace":
        return Ring(flatten(step_dicts(make_chunk(frames), None)[0]), rows=False)
    return Ring(chunk_arrays(make_chunk(frames)))


def make_receiver(variant: str, socket: zmq.Socket, ring: Ring) -> Callable[[], int]:
    if variant == "agentlace":
        return agentlace_receiver(socket, ring)
    if variant == "ours":
        return lambda: ours_receive(socket, ring)

    def lean_receive() -> int:
        count = ring.add(pickle.loads(socket.recv())["payload"])
        socket.send(pickle.dumps({"success": True}))
        return count
    return lean_receive


SENDERS = {"ours": ours_sender, "agentlace": agentlace_sender, "lean": lean_sender}


def open_socket(context: zmq.Context, variant: str, frames: Frames | None, bind: bool) -> zmq.Socket:
    """The variant's socket: ours DEALER (connects) / ROUTER (binds), the others REQ / REP."""
    kind = (zmq.ROUTER if bind else zmq.DEALER) if variant == "ours" else (zmq.REP if bind else zmq.REQ)
    socket = context.socket(kind)
    socket.linger, socket.sndhwm, socket.rcvhwm = 0, high_water_mark(frames), high_water_mark(frames)
    return socket


def wire_bytes(variant: str, frames: Frames | None) -> float:
    """Bytes on the wire per transition (the requests of one chunk, replies excluded)."""
    chunk = make_chunk(frames)
    if variant == "ours":
        return sum(memoryview(f).nbytes for f in messages.encode(chunk)) / CHUNK
    if variant == "lean":
        return len(pickle.dumps({"type": "send-data", "payload": chunk_arrays(chunk)})) / CHUNK
    data = step_dicts(chunk, step_dicts(chunk, None)[-1]["next_observations"])
    asks = compress({"type": "get_last_update_id", "payload": {"store_name": STORE}})
    return (len(asks) + len(compress({"type": "datastore", "store_name": STORE, "payload": {"data": data, "last_id": 9}}))) / CHUNK
