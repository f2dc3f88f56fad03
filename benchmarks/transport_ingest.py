"""Learner updates/s while ingesting: what receiving transitions costs the learner's training.

Run by benchmarks/transport.py (its table; ``--no-ingest`` skips it). The learner process runs
real SAC updates in its main loop, the state config of benchmarks/learner_speed.py (13 floats,
4 actions, default SACConfig: batch 256, UTD 1) with 1 torch thread, each update on a batch
sampled from a ReplayBuffer filled beforehand. It counts updates/s over a window of
``--seconds`` while a sender process offers transitions at a FIXED rate (state: 2,000/s of 30
floats; images: 200/s of two 128x128x3 cameras + 30 floats; chunks of 10 steps, sent on a
schedule, back to back when behind), and counts the transitions it ingested, so a variant that
cannot keep up with the offered rate shows it, and the learner process's CPU time per ingested
transition spent receiving (its threads other than the main one, plus ours' polls in the main
loop; steadier than the rates on a shared machine). Variants (benchmarks/transport_agentlace.py):

- none: the same loop, nothing sent: the learner's own rate on this machine.
- ours: between two updates the main loop polls its ROUTER with timeout 0, receives up to 64
  messages, decodes them (robot_rl.transport.messages) and copies the arrays into a
  preallocated ring; it replies nothing.
- agentlace: as SERL runs agentlace's TrainerServer (``start(threaded=True)``): its REP server
  runs in a background thread of the learner process; each request is decompressed and
  unpickled, and its transitions are inserted one by one into the ring under the ring's lock,
  which the main thread also takes to sample its batch (SERL's data store locks both).

One learner process (one agent, one buffer) serves every run, each on a fresh socket; each
variant runs three times, alternating; the run with the most updates/s is kept (CPU: the least).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import threading
import time
import traceback
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as learner_speed.py

import numpy as np  # noqa: E402
import zmq  # noqa: E402

from transport_agentlace import CHUNK, SENDERS, Frames, end_process, make_receiver, make_ring, open_socket, ours_receive  # noqa: E402

OFFERED = {"state": 2000.0, "images": 200.0}  # transitions/s the sender offers
POLL_MESSAGES = 64  # ours: messages received per poll, at most
FILL = 10_000  # transitions in the learner's replay buffer before the measurement
START_TIMEOUT_S = 120.0  # the learner must be ready (torch imported, buffer filled) within this


# ------------------------------------------------------------------------------ learner


def make_learner() -> tuple[Any, Any, int]:
    """SACAgent + a filled ReplayBuffer, the state config of learner_speed.py; 1 torch thread."""
    import torch

    from robot_rl.agents.sac import SACAgent, SACConfig
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.data.schema import ObsSpec

    torch.set_num_threads(1)
    spec, config, rng = ObsSpec(13), SACConfig(), np.random.default_rng(0)
    with contextlib.redirect_stdout(io.StringIO()):  # the buffer announces its memory budget
        buffer = ReplayBuffer(spec, 4, FILL + 1, check_memory=False)
    buffer.start_episode({"state": rng.standard_normal(13).astype(np.float32)})
    for step in range(FILL):
        done = (step + 1) % 100 == 0
        buffer.add(rng.uniform(-1, 1, 4).astype(np.float32), float(rng.random()), done, False,
                   {"state": rng.standard_normal(13).astype(np.float32)})
        if done:
            buffer.start_episode({"state": rng.standard_normal(13).astype(np.float32)})
    return SACAgent(spec, 4, config), buffer, config.batch_size


class Ingest:
    """Receives for the learner: ``poll()`` between updates (ours), or a background REP thread
    (agentlace), or nothing (none). ``count``: transitions copied into the ring so far."""

    def __init__(self, variant: str, socket: zmq.Socket | None, frames: Frames | None):
        self.variant, self.socket, self.count, self.poll_cpu = variant, socket, 0, 0.0
        self.ring, self.stopped = make_ring("agentlace" if variant == "agentlace" else "ours", frames), threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True) if variant == "agentlace" else None
        if self.thread:
            self.thread.start()

    def poll(self) -> None:
        if self.variant != "ours":
            return
        cpu = time.thread_time()
        try:
            for _ in range(POLL_MESSAGES):
                self.count += ours_receive(self.socket, self.ring, zmq.NOBLOCK)
        except zmq.Again:
            pass
        self.poll_cpu += time.thread_time() - cpu

    def serve(self) -> None:
        receive = make_receiver("agentlace", self.socket, self.ring)
        while not self.stopped.is_set():
            if self.socket.poll(100, zmq.POLLIN):
                self.count += receive()

    def wait_first(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.variant != "none" and self.count == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.variant}: nothing ingested within {START_TIMEOUT_S} s")
            self.poll()
            time.sleep(0.01)

    def close(self) -> None:
        self.stopped.set()
        if self.thread:
            self.thread.join(5)


def train_for(agent: Any, buffer: Any, batch_size: int, ingest: Ingest, seconds: float) -> dict:
    """Updates (each on a freshly sampled batch) and ingestion for ``seconds``; their rates."""
    lock = ingest.ring.lock if ingest.variant == "agentlace" else contextlib.nullcontext()
    with lock:
        batch = buffer.sample(batch_size)
    agent.update(batch)  # warm-up
    ingest.wait_first()
    updates, first, start = 0, ingest.count, time.perf_counter()
    cpu = (time.process_time(), time.thread_time(), ingest.poll_cpu)
    while time.perf_counter() - start < seconds or updates < 3:
        ingest.poll()
        with lock:
            batch = buffer.sample(batch_size, out=batch)
        agent.update(batch)
        updates += 1
    wall = time.perf_counter() - start
    ingest.poll()  # ours: what arrived during the last update (the REP thread has taken it already)
    ingested = ingest.count - first
    # the process's CPU outside the main thread (ZeroMQ's I/O threads, the REP thread) + ours' polls
    ingest_cpu = time.process_time() - cpu[0] - (time.thread_time() - cpu[1]) + ingest.poll_cpu - cpu[2]
    return {"updates": updates / wall, "ingested": ingested / wall, "cpu_us": ingest_cpu / max(ingested, 1) * 1e6}


def run_variant(learner_state: tuple, variant: str, frames: Frames | None, seconds: float, results: mp.Queue) -> dict:
    """One measurement on a fresh socket: reports ("ready", endpoint), returns the rates."""
    context, ingest = zmq.Context(), None
    try:
        socket, endpoint = None, None
        if variant != "none":
            socket = open_socket(context, variant, frames, bind=True)
            socket.bind("tcp://127.0.0.1:*")
            endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        ingest = Ingest(variant, socket, frames)
        results.put(("ready", endpoint))
        return train_for(*learner_state, ingest, seconds)
    finally:
        if ingest:
            ingest.close()
        context.destroy(linger=0)


def learner(commands: mp.Queue, results: mp.Queue) -> None:
    """The learner process: one agent and buffer for every run; per command (variant, frames,
    seconds) reports ("ready", endpoint) then ("done", rates); ("error", text) on a failure."""
    try:
        learner_state = make_learner()
        results.put(("started", None))
        while (command := commands.get(timeout=START_TIMEOUT_S)) is not None:
            results.put(("done", run_variant(learner_state, *command, results)))
    except Exception:
        results.put(("error", traceback.format_exc()))


# ------------------------------------------------------------------------------ sender


def offer(variant: str, endpoint: str, frames: Frames | None, rate: float, stop: mp.Event) -> None:
    """Send chunks at ``rate`` transitions/s (absolute schedule; back to back when behind)."""
    context = zmq.Context()
    socket = open_socket(context, variant, frames, bind=False)
    socket.connect(endpoint)
    send, seq, next_at = SENDERS[variant](socket, frames, stop), 0, time.perf_counter()
    while not stop.is_set():
        send(seq)
        seq += 1
        next_at += CHUNK / rate
        if (delay := next_at - time.perf_counter()) > 0:
            stop.wait(delay)
    context.destroy(linger=0)


def expect(results: mp.Queue, kind: str, timeout: float) -> Any:
    got, payload = results.get(timeout=timeout)
    if got != kind:
        raise RuntimeError(f"learner process: expected {kind!r}, got {got!r}:\n{payload}")
    return payload


def run_once(learner_queues: tuple[mp.Queue, mp.Queue], variant: str, frames: Frames | None, seconds: float) -> dict:
    """One window of the learner process; a sender process offers transitions unless ``none``."""
    commands, results = learner_queues
    commands.put((variant, frames, seconds))
    endpoint, process, stop = expect(results, "ready", START_TIMEOUT_S), None, mp.get_context("spawn").Event()
    try:
        if variant != "none":
            rate = OFFERED["images" if frames else "state"]
            process = mp.get_context("spawn").Process(target=offer, args=(variant, endpoint, frames, rate, stop))
            process.start()
        return expect(results, "done", seconds + START_TIMEOUT_S)
    finally:
        stop.set()
        if process:
            end_process(process, 10)


def measure(frames: Frames, seconds: float, runs: int = 3) -> dict:
    """{"none": rates, (kind, variant): rates} for kind state/images, variant ours/agentlace;
    alternating, ``runs`` times each; the run with the most updates/s is kept (CPU: the least)."""
    spawn, found = mp.get_context("spawn"), {}
    queues = (spawn.Queue(), spawn.Queue())
    process = spawn.Process(target=learner, args=queues)
    process.start()
    try:
        expect(queues[1], "started", START_TIMEOUT_S)
        for _ in range(runs):
            found.setdefault("none", []).append(run_once(queues, "none", None, seconds))
            for kind, kind_frames in (("state", None), ("images", frames)):
                for variant in ("ours", "agentlace"):
                    found.setdefault((kind, variant), []).append(run_once(queues, variant, kind_frames, seconds))
    finally:
        queues[0].put(None)
        end_process(process, 10)
    return {key: max(rates, key=lambda r: r["updates"]) | {"cpu_us": min(r["cpu_us"] for r in rates)} for key, rates in found.items()}
