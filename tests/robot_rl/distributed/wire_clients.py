"""Plain ZeroMQ clients that speak (or abuse) the actor protocol against a real learner process,
for the security tests and benchmarks/hostile_actors.py. Every receive waits behind a poll deadline."""

from __future__ import annotations

import dataclasses

import numpy as np
import zmq

import robot_rl
from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.common import agent_description, make_hello
from robot_rl.transport import Ack, Hello, Transitions, Welcome, messages
from robot_rl.transport.auth import secure_client

REPLY_MS = 5000
SILENCE_MS = 700
PICK_STATE_DIM, PICK_ACTION_DIM = 13, 4


def hello_like_the_learner(actor: str, **changes) -> Hello:
    """The hello of a pick_cube actor with the tests' tiny agent (``TINY``), fields replaced by ``changes``."""
    env = robot_rl.make("pick_cube")
    spec = ObsSpec.from_space(env.observation_space)
    config = SACConfig(hidden_dims=(32, 32), batch_size=32)
    agent = SACAgent(spec, PICK_ACTION_DIM, config)
    hello = make_hello(actor, "pick_cube", spec, env.action_space, agent_description("sac", config, agent.actor_state_dict(), {}))
    env.close()
    return dataclasses.replace(hello, **changes)


def pick_chunk(actor: str, seq: int, count: int = 5, episode: int = 0, value: float = 0.0, **arrays) -> Transitions:
    """Chunk ``seq`` of one long pick_cube episode (steps ``seq * count ...``), every value ``value``;
    ``arrays`` replaces fields (``reward=...``, ``observations=...``)."""
    first = seq * count
    rows = count + 1 if first == 0 else count
    fields = dict(action=np.full((count, PICK_ACTION_DIM), min(value, 1.0), np.float32), reward=np.full(count, value, np.float32),
                  terminated=np.zeros(count, bool), truncated=np.zeros(count, bool), intervention=np.zeros(count, bool),
                  observations={"state": np.full((rows, PICK_STATE_DIM), value, np.float32)})
    fields.update(arrays)
    return Transitions(actor, seq, episode, first, **fields)


def client(context: zmq.Context, endpoint: str, name: str, keys=None, key: str | None = None) -> zmq.Socket:
    """A DEALER with routing id ``name`` (CURVE key pair ``key`` from ``keys`` when given), connected."""
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.sndtimeo = REPLY_MS  # a send that cannot be queued (the handshake failed: no peer) gives up
    socket.routing_id = name.encode()
    if keys is not None:
        secure_client(socket, keys, key)
    socket.connect(endpoint)
    return socket


def ask(socket: zmq.Socket, frames: list, timeout_ms: int = REPLY_MS):
    """Send ``frames``; the decoded reply, or None when none came within ``timeout_ms`` (or the
    message could not even be queued: a connection whose handshake failed has no peer)."""
    try:
        socket.send_multipart(frames)
    except zmq.Again:
        return None
    if socket.poll(timeout_ms, zmq.POLLIN):
        return messages.decode(socket.recv_multipart())
    return None


class GoodActor:
    """A well-behaved actor ``name``: says hello, then sends the next chunk and expects its ack."""

    def __init__(self, socket: zmq.Socket, hello: Hello, seq: int = 0):
        self.socket, self.actor, self.seq = socket, hello.actor, seq
        welcome = ask(socket, messages.encode(hello))
        assert isinstance(welcome, Welcome), welcome
        self.seq = max(self.seq, welcome.stored_seq + 1)

    def send_and_expect_ack(self, timeout_ms: int = REPLY_MS) -> None:
        reply = ask(self.socket, messages.encode(pick_chunk(self.actor, self.seq, value=0.1)), timeout_ms)
        assert reply == Ack(self.actor, self.seq), reply
        self.seq += 1


def proc_status_mb(pid: int, field: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak RSS) of process ``pid`` in MiB, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(f"{field} not in /proc/{pid}/status")
