"""A real learner process with CURVE keys faces bad clients while it keeps serving a good actor.

The clients are plain ZeroMQ sockets in this test; every receive waits behind a poll deadline.
"""

import json
import shutil

import numpy as np
import pytest
import zmq

import robot_rl
from distributed_helpers import TINY, Proc, free_ports
from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.common import agent_description, make_hello
from robot_rl.transport import Ack, Reject, Transitions, Welcome, messages
from robot_rl.transport.auth import generate_keys, secure_client

REPLY_MS = 5000
SILENCE_MS = 700


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def hello_like_the_learner(actor: str, **changes):
    env = robot_rl.make("pick_cube")
    spec = ObsSpec.from_space(env.observation_space)
    config = SACConfig(hidden_dims=(32, 32), batch_size=32)
    agent = SACAgent(spec, 4, config)
    hello = make_hello(actor, "pick_cube", spec, env.action_space, agent_description("sac", config, agent.actor_state_dict(), {}))
    env.close()
    return type(hello)(**{**hello.__dict__, **changes})


def pick_chunk(actor: str, seq: int, count: int = 5) -> Transitions:
    first = seq * count
    rows = count + 1 if first == 0 else count
    return Transitions(actor, seq, 0, first, np.zeros((count, 4), np.float32), np.zeros(count, np.float32),
                       np.zeros(count, bool), np.zeros(count, bool), np.zeros(count, bool),
                       {"state": np.zeros((rows, 13), np.float32)})


def client(context, endpoint: str, name: str, keys=None, key=None) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.routing_id = name.encode()
    if keys is not None:
        secure_client(socket, keys, key)
    socket.connect(endpoint)
    return socket


def ask(socket: zmq.Socket, frames: list, timeout_ms: int = REPLY_MS):
    socket.send_multipart(frames)
    if socket.poll(timeout_ms, zmq.POLLIN):
        return messages.decode(socket.recv_multipart())
    return None


class GoodActor:
    def __init__(self, socket, hello):
        self.socket, self.seq = socket, 0
        assert isinstance(ask(socket, messages.encode(hello)), Welcome)

    def send_and_expect_ack(self):
        reply = ask(self.socket, messages.encode(pick_chunk("good", self.seq)))
        assert reply == Ack("good", self.seq), reply
        self.seq += 1


def test_bad_clients_are_refused_with_a_log_line_while_a_good_actor_is_served(tmp_path, context):
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    generate_keys(keys, ["good", "evil"])
    generate_keys(stranger, ["stranger"])
    shutil.copy(keys / "learner.key", stranger / "learner.key")  # knows the learner, unknown to it
    ports = free_ports()
    endpoint = f"tcp://127.0.0.1:{ports[0]}"
    learner = Proc("learner", ["learner", "--task", "pick_cube", *TINY, "--out", str(tmp_path), "--name", "run", "--keys", str(keys),
                               "--steps", "100000", "--learning-starts", "100000", "--no-eval", "--max-message-mb", "1",
                               "--bind", endpoint, "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path)
    try:
        hello = hello_like_the_learner("evil")
        learner.wait_for(r"learner for pick_cube: actors connect to", 90)
        good = GoodActor(client(context, endpoint, "good-1", keys, "good"), hello_like_the_learner("good"))
        good.send_and_expect_ack()

        assert ask(client(context, endpoint, "stranger-1", stranger, "stranger"), messages.encode(hello), SILENCE_MS) is None
        good.send_and_expect_ack()
        assert ask(client(context, endpoint, "plain-1"), messages.encode(hello), SILENCE_MS) is None
        good.send_and_expect_ack()

        evil = client(context, endpoint, "evil-1", keys, "evil")
        newer = ask(evil, messages.encode(type(hello)(**{**hello.__dict__, "schema_version": 99})))
        assert isinstance(newer, Reject) and any("schema version" in d for d in newer.differences)
        other_task = ask(evil, messages.encode(type(hello)(**{**hello.__dict__, "task": "stack_cubes"})))
        assert isinstance(other_task, Reject) and any("task" in d for d in other_task.differences)
        good.send_and_expect_ack()

        assert ask(evil, [b"\x00\x01garbage"], SILENCE_MS) is None
        assert ask(evil, [b"{not json", b"\x00" * 64], SILENCE_MS) is None
        header = {"v": 2, "kind": "hello", "actor": "evil", "seq": 0, "meta": {}, "arrays": []}
        assert isinstance(ask(evil, [json.dumps(header).encode()]), Reject)  # another wire version: refused, told why
        good.send_and_expect_ack()

        no_hello = client(context, endpoint, "evil-2", keys, "evil")
        assert ask(no_hello, messages.encode(pick_chunk("evil", 0)), SILENCE_MS) is None
        huge = pick_chunk("evil", 0, count=30_000)  # ~2 MB, above --max-message-mb 1
        assert ask(client(context, endpoint, "evil-3", keys, "evil"), messages.encode(huge), SILENCE_MS) is None
        good.send_and_expect_ack()
        assert good.seq == 6

        assert learner.interrupt() == 130
        log = learner.text
        for expected in ("rejected client at 127.0.0.1 (unknown CURVE key", "failed the security handshake",
                         "rejected actor 'evil': schema version", "rejected actor 'evil': task",
                         "ignoring a malformed message from connection 'evil-1'", "refusing connection 'evil-1': schema version",
                         "said no hello on this connection yet", "max_bytes"):
            assert expected in log, f"{expected!r} not in the learner's log:\n{log}"
        assert "Traceback" not in log
    finally:
        learner.cleanup()
