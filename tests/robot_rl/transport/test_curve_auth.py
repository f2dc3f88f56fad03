"""CURVE keys and authenticated sockets, with real ZeroMQ sockets on loopback.

Every receive waits behind ``poll(timeout_ms)``; nothing blocks without a deadline.
"""

import logging
import stat
import time

import numpy as np
import pytest
import zmq

from robot_rl.cli import main
from robot_rl.transport import auth, messages
from robot_rl.transport.messages import Ack, Heartbeat, Weights

REPLY_MS = 2000  # an authorized peer's reply (CURVE handshake included) comes well within this
SILENCE_MS = 300  # how long a refused peer waits to show that no reply comes


@pytest.fixture
def keys(tmp_path):
    auth.generate_keys(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def recv_within(socket: zmq.Socket, timeout_ms: int) -> list | None:
    """The next multipart message, or None if none arrives within ``timeout_ms``."""
    if socket.poll(timeout_ms, zmq.POLLIN):
        return socket.recv_multipart(copy=False)
    return None


def serve_once(server: zmq.Socket, timeout_ms: int) -> bool:
    """Answer one heartbeat from a DEALER with an ack; False if nothing arrived."""
    frames = recv_within(server, timeout_ms)
    if frames is None:
        return False
    identity, body = frames[0], frames[1:]
    beat = messages.decode(body)
    server.send_multipart([identity, *messages.encode(Ack(beat.actor, beat.seq))], copy=False)
    return True


def ask(client: zmq.Socket, server: zmq.Socket, seq: int, server_ms: int = REPLY_MS) -> Ack | None:
    client.send_multipart(messages.encode(Heartbeat("arm-1", "actor", "ok", seq=seq)))
    serve_once(server, server_ms)
    reply = recv_within(client, SILENCE_MS if server_ms < REPLY_MS else REPLY_MS)
    return None if reply is None else messages.decode(reply)


def dealer(context: zmq.Context, endpoint: str, setup=None) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    if setup is not None:
        setup(socket)
    socket.connect(endpoint)
    return socket


def test_router_serves_only_authorized_actors_and_logs_rejections(keys, context, caplog):
    caplog.set_level(logging.WARNING, logger="robot_rl.transport.auth")
    authenticator = auth.start_authenticator(context, keys)
    try:
        server = auth.make_server_socket(context, zmq.ROUTER, keys)
        server.linger = 0
        server.bind("tcp://127.0.0.1:*")
        endpoint = server.getsockopt_string(zmq.LAST_ENDPOINT)
        good = dealer(context, endpoint, lambda s: auth.secure_client(s, keys))
        assert ask(good, server, seq=1) == Ack("arm-1", 1)

        def stranger_keys(socket):  # a valid CURVE client whose key is not in authorized_actors/
            socket.curve_publickey, socket.curve_secretkey = zmq.curve_keypair()
            socket.curve_serverkey = zmq.auth.load_certificate(keys / "learner.key")[0]

        stranger = dealer(context, endpoint, stranger_keys)
        assert ask(stranger, server, seq=2, server_ms=SILENCE_MS) is None
        plain = dealer(context, endpoint)  # no CURVE at all
        assert ask(plain, server, seq=3, server_ms=SILENCE_MS) is None
        deadline = time.monotonic() + 2.0
        while not any("unknown CURVE key" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.02)
        rejected = [r.getMessage() for r in caplog.records if r.name == "robot_rl.transport.auth"]
        assert any(m.startswith("rejected client at 127.0.0.1 (unknown CURVE key") for m in rejected), rejected
        assert ask(good, server, seq=4) == Ack("arm-1", 4)  # still serving the good actor
    finally:
        authenticator.stop()


def test_conflated_subscriber_gets_only_the_newest_weights(keys, context):
    authenticator = auth.start_authenticator(context, keys)
    try:
        publisher = auth.make_server_socket(context, zmq.PUB, keys)
        publisher.linger = 0
        publisher.bind("tcp://127.0.0.1:*")
        subscriber = context.socket(zmq.SUB)
        subscriber.linger = 0
        subscriber.conflate = True  # before connect; keeps only the newest message
        auth.secure_client(subscriber, keys)
        subscriber.subscribe(b"")
        subscriber.connect(publisher.getsockopt_string(zmq.LAST_ENDPOINT))
        params = {"actor.trunk.0.weight": np.zeros((256, 100), np.float32)}
        # Slow joiner: publish version 0 until the subscription has reached the publisher.
        deadline = time.monotonic() + 3.0
        while not subscriber.poll(50, zmq.POLLIN):
            assert time.monotonic() < deadline, "subscriber never received the warm-up weights"
            publisher.send(messages.pack(Weights(0, 0, params)))
        # A message that poll() has seen is held by the SUB socket outside the conflating queue,
        # so it would come out first: receive right after polling (as an actor should).
        assert messages.unpack(subscriber.recv(copy=False)).version == 0
        for version in range(1, 6):
            params = {"actor.trunk.0.weight": np.full((256, 100), version, np.float32)}
            publisher.send(messages.pack(Weights(version, version * 100, params)), copy=False)
        time.sleep(0.5)  # let all five arrive; CONFLATE keeps the last
        assert subscriber.poll(REPLY_MS, zmq.POLLIN)
        newest = messages.unpack(subscriber.recv(copy=False))
        assert (newest.version, newest.learner_step) == (5, 500)
        assert float(newest.params["actor.trunk.0.weight"][0, 0]) == 5.0
        assert not subscriber.poll(100, zmq.POLLIN)  # the older versions were dropped
    finally:
        authenticator.stop()


def test_server_socket_needs_a_running_authenticator(keys, context):
    with pytest.raises(RuntimeError, match="start_authenticator"):
        auth.make_server_socket(context, zmq.ROUTER, keys)
    authenticator = auth.start_authenticator(context, keys)
    try:
        auth.make_server_socket(context, zmq.ROUTER, keys).close(linger=0)
    finally:
        authenticator.stop()


def test_missing_key_files_say_how_to_make_them(tmp_path, context):
    socket = context.socket(zmq.DEALER)
    with pytest.raises(FileNotFoundError, match=r"actor\.key_secret.*robot-rl keys"):
        auth.secure_client(socket, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"authorized_actors.*robot-rl keys"):
        auth.start_authenticator(context, tmp_path)
    socket.close(linger=0)


def test_generate_keys_layout_modes_and_overwrite_protection(tmp_path):
    written = auth.generate_keys(tmp_path, actors=("arm1", "car"))
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == sorted(["learner.key", "learner.key_secret", "arm1.key", "arm1.key_secret", "car.key", "car.key_secret",
                            "authorized_actors/arm1.key", "authorized_actors/car.key"])
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.name.endswith(".key_secret") else 0o644), path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["authorized_actors", *[n for n in names if "/" not in n]])
    assert (tmp_path / "authorized_actors/arm1.key").read_bytes() == (tmp_path / "arm1.key").read_bytes()
    before = (tmp_path / "learner.key").read_bytes()
    with pytest.raises(FileExistsError, match=r"learner\.key already exists; pass --force"):
        auth.generate_keys(tmp_path, actors=("arm1",))
    assert (tmp_path / "learner.key").read_bytes() == before
    auth.generate_keys(tmp_path, actors=("arm1",), force=True)
    assert (tmp_path / "learner.key").read_bytes() != before
    with pytest.raises(ValueError, match="actor key name"):
        auth.generate_keys(tmp_path / "x", actors=("../evil",))


def test_keys_command(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keys", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'learner.key_secret'}  (secret, mode 0600)" in printed
    assert "learner.key" in printed and "actor.key_secret" in printed and "scp" in printed
    assert (out / "authorized_actors" / "actor.key").is_file()
    assert main(["keys", "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["keys", "--out", str(out), "--force", "--actors", "arm1", "arm2"]) == 0
    assert (out / "authorized_actors" / "arm2.key").is_file()
