"""``robot-rl serve-robot`` as a real process serving the MuJoCo arm, driven through the ``remote``
backend over CURVE-encrypted ZeroMQ on loopback: the arm contract holds through the network; keys
are enforced; hostile-but-authenticated calls are refused and change nothing; a killed client gets
the robot stopped and the next client served; a killed server is reported within the deadline.

(The FR3 over franka-sim through the same path: tests/drivers/arm/test_fr3_remote.py.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

import robot_rl
from robot_rl.backends.arm import ArmState, ArmTarget
from robot_rl.remote import protocol
from robot_rl.remote.client import RemoteBackend, RemoteConfig
from robot_rl.remote.protocol import RemoteRequestError, RemoteRobotError, RobotBusyError
from robot_rl.remote.testing import ServeRobotProcess
from robot_rl.testing.arm_backend import check_arm_backend
from robot_rl.transport import wire
from robot_rl.transport.auth import generate_keys, secure_client

RIG = """
[serve]
backend = "sim"
family = "arm"
task = "pick_cube"
client_timeout_s = 1.0
max_message_mb = 1
[serve.options]
cameras = []
"""
QUAT = np.array([1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module (restarted by ``ensure()`` if a test killed it)."""
    root = tmp_path_factory.mktemp("serve-robot")
    generate_keys(root / "keys", actors=("actor", "second"))
    (root / "rig.toml").write_text(RIG)
    server = ServeRobotProcess(root / "rig.toml", root / "server.log", "--keys", str(root / "keys"))
    server.root = root
    server.ensure = lambda: server.endpoint if server.running else server.start()
    server.ensure()
    yield server
    assert server.stop() in (0, None), server.text


def client(served, **options) -> RemoteBackend:
    config = {"server": served.ensure(), "keys": str(served.root / "keys"), "timeout_s": 3.0, **options}
    return RemoteBackend(RemoteConfig(**config), "arm")


def test_the_sim_arm_passes_the_arm_checks_through_the_network(served):
    check_arm_backend(client(served))
    served.wait_for(r"client '.+' gone \(closed by the client\)", 5.0)


def test_the_remote_backend_is_registered_for_robot_rl_make(served):
    env = robot_rl.make("pick_cube", backend="remote", server=served.ensure(), keys=str(served.root / "keys"))
    try:
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs["state"] if isinstance(obs, dict) else obs))
    finally:
        env.close()


def test_camera_frames_come_through_the_network(served):
    with client(served) as arm:
        assert "front" in arm.spec.render_cameras
        arm.reset()
        frame = arm.render("front", 24, 32)
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0  # a rendered scene, not zeros
        with pytest.raises(RemoteRequestError, match="camera"):
            arm.render("nowhere")  # the backend's ValueError comes back as a refused request
        arm.read_state()  # the session goes on


def test_a_second_client_is_refused_while_the_first_holds_the_robot(served):
    with client(served, client_id="first") as first:
        second = client(served, client_id="other", key_name="second")
        with pytest.raises(RobotBusyError, match="in use by client 'first'"):
            second.connect()
        first.read_state()  # the holder is not disturbed
        second.close()
        # the same id under another authorized key is refused: an id is bound to the key that first used it
        impostor = client(served, client_id="first", key_name="second")
        with pytest.raises(RobotBusyError, match="belongs to another CURVE key"):
            impostor.connect()
        impostor.close()


def test_clients_without_keys_or_with_an_unknown_key_are_refused(served, tmp_path):
    no_keys = client(served, keys=None, timeout_s=1.0)
    with pytest.raises(RemoteRobotError, match="refused our connection|no reply .* within 1.00 s"):
        no_keys.spec
    no_keys.close()
    generate_keys(tmp_path / "stranger")
    shutil.copy(served.root / "keys" / "learner.key", tmp_path / "stranger" / "learner.key")  # knows the server, not known to it
    stranger = client(served, keys=str(tmp_path / "stranger"), timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(RemoteRobotError, match=r"refused our connection in the CURVE handshake \(authentication failed\)"):
        stranger.connect()  # within the handshake, not after connect's 30 s deadline
    assert time.monotonic() - start < 2.0
    stranger.close()
    served.wait_for(r"rejected client at .*unknown CURVE key", 5.0)


def raw_socket(served) -> zmq.Socket:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.linger = 0
    secure_client(socket, served.root / "keys")
    socket.connect(served.ensure())
    return socket


def ask(socket: zmq.Socket, frames: list) -> wire.Message:
    socket.send_multipart(frames)
    assert socket.poll(5000), "no reply within 5 s"
    reply = wire.from_frames(socket.recv_multipart(), kinds={protocol.REPLY})
    protocol.check_reply(reply)
    return reply


def frames_of(op, args=None, objects=None, arrays=None, tamper=None, seq=1) -> list:
    message = protocol.call("hostile", seq, op, args, objects, arrays)
    if tamper is not None:
        tamper(message)
    return wire.to_frames(message)


def _set(name, value):
    return lambda m: m.arrays.__setitem__(name, value)


HOSTILE = [
    ([b"\x00\x01garbage"], "MessageError", "not valid JSON"),
    (wire.to_frames(wire.Message("hello", "hostile", 1, {})), "MessageError", "unknown message kind 'hello'"),
    (frames_of("fly"), "MessageError", "unknown operation 'fly'"),
    (frames_of("sync", {"period_s": -1.0}), "BadRequest", "period_s"),
    (frames_of("sync", {"period_s": "soon"}), "BadRequest", "period_s"),
    (frames_of("stop", arrays={"payload": np.zeros(4)}), "MessageError", "belong to no object"),
    (frames_of("command"), "BadRequest", "carries the object 'command'"),
    (frames_of("command", objects={"command": ArmTarget(np.zeros(3), QUAT, 0.0)}, tamper=_set("command.tcp_pos_m", np.zeros(5))),
     "BadRequest", r"shape \(3,\)"),
    (frames_of("command", objects={"command": ArmTarget(np.zeros(3), QUAT, 0.0)},
               tamper=_set("command.tcp_pos_m", np.array([np.nan, 0.0, 0.3]))), "BadRequest", "not finite"),
    (frames_of("command", objects={"command": ArmTarget(np.array([1e9, 0.0, 0.3]), QUAT, 0.0)}), "BadRequest", "beyond"),
    (frames_of("command", objects={"command": ArmTarget(np.array([0.5, 0.0, 0.3]), QUAT * 3, 0.0)}), "BadRequest", "unit quaternion"),
    (frames_of("command", objects={"command": ArmTarget(np.zeros(3), QUAT, 0.0)},
               tamper=lambda m: m.meta["objects"]["command"].update(type="CarCommand")), "MessageError", "not one of"),
    (frames_of("command", objects={"command": ArmTarget(np.zeros(3), QUAT, 0.0)}, tamper=_set("extra", np.zeros(2))),
     "MessageError", "belong to no object"),
    (frames_of("reset", arrays={"joint_pos_rad": np.zeros(3)}), "BadRequest", "joint_pos_rad must be 7"),
    (frames_of("render", {"camera": "front", "height": 10**6, "width": 1}), "BadRequest", "render takes"),
    ([b'{"v":1}', np.zeros(600_000, np.uint8), np.zeros(600_000, np.uint8)], "MessageError", "more than max_bytes"),
]


def test_hostile_calls_are_refused_and_change_nothing(served):
    socket = raw_socket(served)
    try:
        assert ask(socket, frames_of("connect", {"family": "arm", "task": None})).meta["ok"]
        reset = ask(socket, frames_of("reset", seq=2))
        assert reset.meta["ok"], reset.meta
        before = protocol.objects_of(reset, {"state": {"ArmState": ArmState}})
        for frames, error_type, match in HOSTILE:
            reply = ask(socket, frames)
            error = reply.meta["error"]
            assert not reply.meta["ok"] and error["bad_request"] and error["type"] == error_type, (match, error)
            assert re.search(match, error["message"]), (match, error)
        for _ in range(5):
            assert ask(socket, frames_of("sync", {"period_s": 0.1}, seq=3)).meta["ok"]
        after = ask(socket, frames_of("read_state", seq=4))
        moved = np.linalg.norm(after.arrays["state.tcp_pos_m"] - before["state"].tcp_pos_m)
        assert moved < 1e-3, f"a refused call moved the arm by {moved:.4f} m"
        ask(socket, frames_of("close", seq=5))
    finally:
        socket.close()
    huge = raw_socket(served)  # a frame above the server's 1 MB limit: ZeroMQ drops that connection
    huge.send_multipart([b"x" * 2_000_000])
    assert not huge.poll(500), "a 2 MB frame got an answer"
    huge.close()
    with client(served) as arm:  # the server carries on
        arm.read_state()


DOOMED = """
import sys, threading
import numpy as np
from robot_rl.backends.arm import ArmState, ArmTarget
from robot_rl.remote.client import RemoteBackend, RemoteConfig
arm = RemoteBackend(RemoteConfig(server=sys.argv[1], keys=sys.argv[2], client_id="doomed", timeout_s=5.0), "arm")
arm.connect()
state = arm.reset()
arm.command(ArmTarget(state.tcp_pos_m + np.array([0.0, 0.04, 0.0]), state.tcp_quat_wxyz, 0.0))
print("commanded", flush=True)
threading.Event().wait(60)  # until killed
"""


def test_a_killed_client_gets_the_robot_stopped_and_the_next_client_served(served, tmp_path):
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED, served.ensure(), str(served.root / "keys")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert doomed.stdout.readline().strip() == "commanded", doomed.stdout.read()
        doomed.kill()  # SIGKILL: no close() reaches the server
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    served.wait_for(r"client 'doomed' silent for .* robot stopped", 10.0)
    with client(served, client_id="next") as arm:
        held = arm.read_state().tcp_pos_m
        for _ in range(5):
            arm.sync(0.1)  # without the stop, the arm would now travel 4 cm toward the dead client's target
        assert np.linalg.norm(arm.read_state().tcp_pos_m - held) < 0.005
    served.wait_for(r"client 'next' connected", 1.0)


def test_the_latency_tool_measures_every_operation(served):
    from robot_rl.remote.latency import measure, percentiles_ms

    with client(served) as arm:
        times = measure(arm, calls=20)
    assert set(times) == {"ping", "read_state", "command"}
    assert all(len(t) == 20 and 0 < min(t) and max(t) < 3.0 for t in times.values())
    assert percentiles_ms(times["ping"]).startswith("median ")


def test_a_killed_server_is_reported_within_the_deadline(served):
    arm = client(served, timeout_s=0.5)
    arm.connect()
    arm.read_state()
    served.kill9()
    start = time.monotonic()
    with pytest.raises(RemoteRobotError, match="no reply from the robot server .* within 0.50 s: the server is gone"):
        arm.read_state()
    assert time.monotonic() - start < 1.0
    with pytest.raises(RemoteRobotError):
        arm.command(ArmTarget(np.array([0.5, 0.0, 0.3]), QUAT, 0.0))
    arm.close()  # no server: close still returns promptly
    with pytest.raises(ValueError, match="not finite"):  # refused before it is sent
        RemoteBackend(RemoteConfig(server="tcp://127.0.0.1:1")).command(ArmTarget(np.array([np.nan, 0, 0]), QUAT, 0.0))
