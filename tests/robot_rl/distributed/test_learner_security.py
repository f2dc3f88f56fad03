"""A real learner process with CURVE keys faces bad clients while it keeps serving a good actor.

The clients are plain ZeroMQ sockets in this test; every receive waits behind a poll deadline.
"""

import json
import shutil

import pytest
import zmq

from distributed_helpers import TINY, Proc, free_ports
from wire_clients import GoodActor, ask, client, hello_like_the_learner, pick_chunk, proc_status_mb
from robot_rl.transport import Ack, Reject, messages
from robot_rl.transport.auth import generate_keys

SILENCE_MS = 700


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


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
        huge = pick_chunk("evil", 0, count=30_000)  # a 1.6 MB frame, above --max-message-mb 1: ZeroMQ drops the connection
        assert ask(client(context, endpoint, "evil-3", keys, "evil"), messages.encode(huge), SILENCE_MS) is None
        good.send_and_expect_ack()
        assert good.seq == 6

        assert learner.interrupt() == 130
        log = learner.text
        for expected in ("rejected client at 127.0.0.1 (unknown CURVE key", "failed the security handshake",
                         "rejected actor 'evil': schema version", "rejected actor 'evil': task",
                         "ignoring a malformed message from connection 'evil-1'", "refusing connection 'evil-1': schema version",
                         "said no hello on this connection yet", "or it sent a frame above --max-message-mb"):
            assert expected in log, f"{expected!r} not in the learner's log:\n{log}"
        assert "Traceback" not in log
    finally:
        learner.cleanup()


def start_learner(tmp_path, keys, *extra) -> tuple[Proc, str]:
    ports = free_ports()
    endpoint = f"tcp://127.0.0.1:{ports[0]}"
    learner = Proc("learner", ["learner", "--task", "pick_cube", *TINY, "--out", str(tmp_path), "--name", "run", "--keys", str(keys),
                               "--steps", "100000", "--learning-starts", "100000", "--no-eval", "--bind", endpoint,
                               "--weights-bind", f"tcp://127.0.0.1:{ports[1]}", *extra], tmp_path)
    return learner, endpoint


def test_an_actor_id_belongs_to_the_key_that_first_said_hello_with_it(tmp_path, context):
    """Key B cannot say hello as actor A, so it cannot make A's next chunk a 'duplicate' or close A's
    episode; A re-sending a seq with other content is refused, not acked."""
    keys = tmp_path / "keys"
    generate_keys(keys, ["good", "evil"])
    learner, endpoint = start_learner(tmp_path, keys)
    try:
        hello = hello_like_the_learner("good")
        learner.wait_for(r"learner for pick_cube: actors connect to", 90)
        good = GoodActor(client(context, endpoint, "good-1", keys, "good"), hello)
        good.send_and_expect_ack()

        evil = client(context, endpoint, "evil-1", keys, "evil")
        refused = ask(evil, messages.encode(hello))
        assert isinstance(refused, Reject) and "another CURVE key" in refused.reason, refused
        ahead = pick_chunk("good", 1, episode=99, value=0.2)  # A's next seq, far-ahead episode
        assert ask(evil, messages.encode(ahead), SILENCE_MS) is None
        good.send_and_expect_ack()  # stored as A's seq 1, not a 'duplicate' of the stranger's chunk
        good.send_and_expect_ack()

        other = ask(good.socket, messages.encode(pick_chunk("good", 2, value=0.3)))  # seq 2 again, other content
        assert isinstance(other, Reject) and "different content" in other.reason, other
        same = ask(good.socket, messages.encode(pick_chunk("good", 2, value=0.1)))
        assert same == Ack("good", 2), same
        again = GoodActor(client(context, endpoint, "good-2", keys, "good"), hello)  # the owner may reconnect
        assert again.seq == 3

        assert learner.interrupt() == 130
        log = learner.text
        assert "refusing a hello as actor 'good'" in log and "Traceback" not in log
        assert json.loads((tmp_path / "run" / "store" / "actor_keys.json").read_text()).keys() == {"good"}
    finally:
        learner.cleanup()


def test_frames_above_the_limit_cost_a_log_line_not_memory(tmp_path, context):
    """--max-message-mb bounds each frame (ZeroMQ drops the connection at the frame's header) and a
    whole message (our check, after ZeroMQ delivered it; its memory goes back to the system)."""
    keys = tmp_path / "keys"
    generate_keys(keys, ["good", "evil"])
    learner, endpoint = start_learner(tmp_path, keys, "--max-message-mb", "8")
    try:
        learner.wait_for(r"learner for pick_cube: actors connect to", 90)
        good = GoodActor(client(context, endpoint, "good-1", keys, "good"), hello_like_the_learner("good"))
        good.send_and_expect_ack()
        peak = proc_status_mb(learner.proc.pid, "VmHWM")
        header = json.dumps({"v": 1, "kind": "transitions", "actor": "evil", "seq": 0, "meta": {}, "arrays": []}).encode()
        evil = client(context, endpoint, "evil-1", keys, "evil")
        evil.send_multipart([header, *[bytes(12 * 2**20)] * 5])  # each frame above the limit
        learner.wait_for(r"dropped the connection .* above --max-message-mb", 20)
        good.send_and_expect_ack()
        assert proc_status_mb(learner.proc.pid, "VmHWM") - peak < 30  # dropped before it was buffered

        rss = proc_status_mb(learner.proc.pid, "VmRSS")
        evil.send_multipart([header, *[bytes(6 * 2**20)] * 10])  # each frame fits, the message does not
        learner.wait_for(r"dropped a message from connection 'evil-1': it is \d+ bytes in 11 frames", 20)
        good.send_and_expect_ack()
        assert proc_status_mb(learner.proc.pid, "VmRSS") - rss < 30  # given back once dropped
        assert learner.interrupt() == 130
        assert "Traceback" not in learner.text
    finally:
        learner.cleanup()
