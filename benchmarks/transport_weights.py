"""Weight broadcast latency and control-loop jitter while weights arrive (benchmarks/transport.py).

Three ways of sending an actor's weights (``WEIGHT_VARIANTS``), all PUB -> SUB over loopback:

- ``ours``: one packed frame (robot_rl.transport.messages.pack), SUB with CONFLATE; the actor
  receives and decodes it in a background thread at nice +10 (zero copy: the arrays view the
  received frame) and swaps it in right after an action, freeing the old weights in that thread;
  ZeroMQ's I/O threads also run at nice +10 so the loop wins the CPU (our actor's network thread,
  robot_rl.distributed.link, lowers itself and ZeroMQ's threads the same way).
- ``agentlace``: what SERL's agentlace does: ``lz4.frame.compress(pickle.dumps(params))`` on the
  PUB, SUB with CONFLATE and RCVHWM 3, a background thread (normal priority) that receives,
  decompresses, unpickles and hands the params to a callback, which swaps them in at once.
- ``lean``: a plain pickled dict, no CONFLATE; for the jitter run a naive actor that receives and
  unpickles in the loop thread before acting.

Latency: publish -> received and decoded, 1M and 10M float32 parameters (8 tensors); the
subscriber reports its CLOCK_MONOTONIC time back (system-wide on Linux). Jitter: a 10 Hz loop
sleeping to absolute deadlines, |period between consecutive actions - 100 ms| (an action is timed
when the policy's output is ready) while 10M-parameter weights arrive every 0.5 s.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import struct
import threading
import time

import numpy as np
import zmq

from robot_rl.distributed.common import lower_thread_priority, zmq_io_threads  # what our actor's network thread does
from robot_rl.transport import messages
from robot_rl.transport.messages import Weights
from transport_agentlace import compress, decompress, end_process

WEIGHT_VARIANTS = ("ours", "agentlace", "lean")
PUBLISH_EVERY_S = 0.5  # weight publish interval during the jitter test
LOOP_PERIOD_S = 0.1  # 10 Hz control loop
START_TIMEOUT_S = 60.0  # a spawned process must be up within this


def make_params(total: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"actor.layer{i}.weight": rng.standard_normal(total // 8, dtype=np.float32) for i in range(8)}


def encode_weights(variant: str, version: int, params: dict[str, np.ndarray]) -> bytes:
    if variant == "ours":
        return messages.pack(Weights(version, version, params))
    data = {"version": version, "params": params}
    return compress(data) if variant == "agentlace" else pickle.dumps(data)


def decode_weights(variant: str, frame: zmq.Frame) -> tuple[int, dict[str, np.ndarray]]:
    if variant == "ours":
        weights = messages.unpack(frame)
        return weights.version, dict(weights.params)
    data = decompress(frame.buffer) if variant == "agentlace" else pickle.loads(frame.buffer)
    return data["version"], data["params"]


def subscriber(variant: str, endpoint: str) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.linger = 0
    if variant != "lean":
        socket.conflate = True  # keep only the newest weights
    if variant == "agentlace":
        socket.rcvhwm = 3
    socket.subscribe(b"")
    socket.connect(endpoint)
    return socket


def latency_subscriber(variant: str, endpoint: str, ack_endpoint: str, stop: mp.Event) -> None:
    socket = subscriber(variant, endpoint)
    ack = zmq.Context.instance().socket(zmq.PUSH)
    ack.linger = 0
    ack.connect(ack_endpoint)
    while not stop.is_set():
        if socket.poll(100, zmq.POLLIN):
            version, _ = decode_weights(variant, socket.recv(copy=False))
            ack.send(struct.pack("<qq", version, time.perf_counter_ns()))
    zmq.Context.instance().destroy(linger=0)


def wait_ack(pull: zmq.Socket, version: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if pull.poll(int(left * 1000) + 1, zmq.POLLIN):
            got, at_ns = struct.unpack("<qq", pull.recv())
            if got == version:
                return at_ns
    raise TimeoutError(f"the subscriber did not acknowledge weights version {version} within {timeout_s} s")


def weight_latencies_ms(variant: str, total: int, samples: int) -> list[float]:
    context = zmq.Context()
    pub, pull = context.socket(zmq.PUB), context.socket(zmq.PULL)
    for socket in (pub, pull):
        socket.linger = 0
        socket.bind("tcp://127.0.0.1:*")
    stop = mp.get_context("spawn").Event()
    process = mp.get_context("spawn").Process(target=latency_subscriber, args=(
        variant, pub.getsockopt_string(zmq.LAST_ENDPOINT), pull.getsockopt_string(zmq.LAST_ENDPOINT), stop))
    process.start()
    params, out = make_params(total), []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not pull.poll(200, zmq.POLLIN):  # slow joiner: publish until the subscriber answers
            if time.monotonic() > deadline:
                raise TimeoutError("the subscriber never received the warm-up weights")
            pub.send(encode_weights(variant, 0, params))
        for version in range(1, samples + 1):
            start = time.perf_counter_ns()
            pub.send(encode_weights(variant, version, params), copy=False)
            out.append((wait_ack(pull, version, 30.0) - start) / 1e6)
        return out
    finally:
        stop.set()
        end_process(process)
        context.destroy(linger=0)


# ------------------------------------------------------------------------------ jitter


class Policy:
    """The actor's current parameters; new weights replace them in one reference swap."""

    def __init__(self, params: dict[str, np.ndarray]):
        self.params, self.updates, self.acted = params, 0, threading.Event()

    def swap(self, params: dict[str, np.ndarray]) -> None:
        self.params, self.updates = params, self.updates + 1

    def swap_after_action(self, params: dict[str, np.ndarray]) -> None:
        """From a background thread: swap right after the loop's next action, then free the old
        weights here (a 40 MB munmap takes ms), while the loop sleeps until its next step."""
        self.acted.clear()
        self.acted.wait(1.0)
        old = self.params
        self.swap(params)
        del old


def receive_in_background(socket: zmq.Socket, policy: Policy, stop: threading.Event) -> None:
    """Ours: decode at nice +10, swap right after the next action."""
    lower_thread_priority([threading.get_native_id()])
    while not stop.is_set():
        if socket.poll(100, zmq.POLLIN):
            policy.swap_after_action(decode_weights("ours", socket.recv(copy=False))[1])


def agentlace_listener(socket: zmq.Socket, policy: Policy, stop: threading.Event) -> None:
    """agentlace's BroadcastClient.async_start: receive, decompress + unpickle, callback (swap now)."""
    while not stop.is_set():
        if socket.poll(100, zmq.POLLIN):
            policy.swap(decode_weights("agentlace", socket.recv(copy=False))[1])


LISTENERS = {"ours": receive_in_background, "agentlace": agentlace_listener}


def control_loop(variant: str, endpoint: str, steps: int, results: mp.Queue) -> None:
    socket, stop = subscriber(variant, endpoint), threading.Event()
    policy = Policy({f"actor.layer{i}.weight": np.zeros(10_000_000 // 8, np.float32) for i in range(8)})
    listener = LISTENERS.get(variant)
    thread = threading.Thread(target=listener, args=(socket, policy, stop), daemon=True) if listener else None
    if thread:
        thread.start()
    if variant == "ours":
        lower_thread_priority(zmq_io_threads())
    observation, acted = np.ones((1, 30), np.float32), []
    results.put("ready")
    next_start = time.perf_counter()
    for _ in range(steps):
        if variant == "lean" and socket.poll(0, zmq.POLLIN):  # the naive actor: receive + unpickle in the loop
            policy.swap(decode_weights(variant, socket.recv(copy=False))[1])
        weights = policy.params["actor.layer0.weight"][: 30 * 256].reshape(30, 256)
        np.tanh(observation @ weights)  # the policy's tiny fixed work
        acted.append(time.perf_counter())  # the moment the action would go to the robot
        del weights  # hold no view of the weights while sleeping
        policy.acted.set()
        next_start += LOOP_PERIOD_S
        time.sleep(max(0.0, next_start - time.perf_counter()))
    stop.set()
    if thread:
        thread.join(1)
    deviation_ms = np.abs(np.diff(acted) - LOOP_PERIOD_S) * 1000
    results.put({"p99": float(np.percentile(deviation_ms, 99)), "max": float(deviation_ms.max()), "updates": policy.updates})
    zmq.Context.instance().destroy(linger=0)


def loop_jitter_ms(variant: str, seconds: float, publish: bool = True) -> dict:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.linger = 0
    pub.bind("tcp://127.0.0.1:*")
    results = mp.get_context("spawn").Queue()
    steps = int(seconds / LOOP_PERIOD_S)
    process = mp.get_context("spawn").Process(target=control_loop, args=(variant, pub.getsockopt_string(zmq.LAST_ENDPOINT), steps, results))
    process.start()
    params, version = make_params(10_000_000), 0
    try:
        if results.get(timeout=START_TIMEOUT_S) != "ready":
            raise RuntimeError("control loop did not start")
        deadline = time.monotonic() + seconds + 30
        while results.empty() and process.is_alive() and time.monotonic() < deadline:
            if publish:
                version += 1
                pub.send(encode_weights(variant, version, params), copy=False)
            time.sleep(PUBLISH_EVERY_S)
        return results.get(timeout=10)
    finally:
        end_process(process)
        context.destroy(linger=0)
