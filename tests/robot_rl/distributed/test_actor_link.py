"""A real actor (in-process, on Pendulum) against a ZeroMQ learner socket played by the test."""

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time

import gymnasium as gym
import pytest
import zmq

from distributed_helpers import counters, free_ports
from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.actor import run_actor
from robot_rl.distributed.commands import Actor
from robot_rl.envs import EnvConfig
from robot_rl.transport import Ack, Heartbeat, Hello, Reject, Transitions, Weights, Welcome, messages

SAC = SACConfig(hidden_dims=(32, 32), batch_size=32)
DEADLINE_MS = 30_000


def actor_config(tmp_path, ports, **changes) -> Actor:
    return Actor(id="a0", env=EnvConfig(task="Pendulum-v1"), learner=f"tcp://127.0.0.1:{ports[0]}", weights=f"tcp://127.0.0.1:{ports[1]}",
                 spool=tmp_path / "spool", sac=SAC, flush_s=5.0, chunk_steps=10, **changes)


class FakeLearner(threading.Thread):
    """Answers hello with ``answer`` (then acks every chunk and publishes weights) until a 'stopped' heartbeat."""

    def __init__(self, context, ports, answer):
        super().__init__(daemon=True)
        self.router, self.pub = context.socket(zmq.ROUTER), context.socket(zmq.PUB)
        self.router.bind(f"tcp://127.0.0.1:{ports[0]}")
        self.pub.bind(f"tcp://127.0.0.1:{ports[1]}")
        self.answer, self.chunks, self.hellos = answer, [], []

    def run(self):
        while self.router.poll(DEADLINE_MS):
            identity, *frames = self.router.recv_multipart()
            message = messages.decode(frames)
            reply = self.on(message)
            if reply is not None:
                self.router.send_multipart([identity, *messages.encode(reply)])
            if isinstance(message, Heartbeat) and message.status == "stopped" or isinstance(reply, Reject):
                return

    def on(self, message):
        if isinstance(message, Hello):
            self.hellos.append(message)
            return self.answer(message)
        if isinstance(message, Transitions):
            self.chunks.append(message)
            return Ack(message.actor, message.seq)
        return None


def test_a_rejected_actor_prints_the_differences_and_exits_non_zero(tmp_path, capsys):
    ports, context = free_ports(), zmq.Context()
    try:
        learner = FakeLearner(context, ports, lambda hello: Reject(hello.actor, "does not fit", ("agent 'hidden_dims': learner [64], actor [32, 32]",)))
        learner.start()
        assert run_actor(actor_config(tmp_path, ports)) == 3
        learner.join(timeout=10)
    finally:
        context.destroy(linger=0)
    out = capsys.readouterr().out
    assert "rejected by the learner: does not fit\n  - agent 'hidden_dims': learner [64], actor [32, 32]" in out


def test_an_actor_sends_every_step_in_order_swaps_in_weights_and_says_it_stopped(tmp_path):
    ports, context = free_ports(), zmq.Context()
    env = gym.make("Pendulum-v1")
    weights = messages.state_dict_to_arrays(SACAgent(ObsSpec.from_space(env.observation_space), 1, SAC, seed=5).actor_state_dict())
    try:
        learner = FakeLearner(context, ports, lambda hello: Welcome(hello.actor, -1, 7))
        learner.start()
        stop = threading.Event()

        def broadcast():  # the learner re-sends its weights; CONFLATE keeps the newest
            while not stop.wait(0.2):
                learner.pub.send(messages.pack(Weights(7, 100, weights)))

        publish = threading.Thread(target=broadcast, daemon=True)
        publish.start()
        assert run_actor(actor_config(tmp_path, ports, steps=45, max_hz=60)) == 0
        stop.set()
        learner.join(timeout=10)
    finally:
        context.destroy(linger=0)
    chunks = learner.chunks
    assert [c.seq for c in chunks] == list(range(5)) and [c.first_step for c in chunks] == [0, 10, 20, 30, 40]
    assert sum(c.count for c in chunks) == 45 and not any(c.final for c in chunks)  # stopped mid-episode
    assert chunks[0].observations["state"].shape == (11, 3)  # the reset observation comes first
    saved = counters(tmp_path / "spool")
    assert saved["transitions_produced"] == 45 and saved["next_seq"] == 5 and saved["weights_version"] == 7
    assert not list((tmp_path / "spool").glob("*.msg"))  # all acked, all dropped


def test_a_full_disk_under_the_spool_costs_a_warning_and_no_chunk(tmp_path, caplog):
    """The spool's disk fills while the actor runs: chunks wait in memory, the network thread says
    so and retries; once freed, every step is spooled, sent and acked."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a 1 MB tmpfs to fill (needs root)")
    ports, context = free_ports(), zmq.Context()
    filler = disk / "filler"

    def fill_then_free():
        deadline = time.monotonic() + 30
        while not (disk / "spool" / "counters.json").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
            while True:
                file.write(bytes(4096))
        time.sleep(1.5)
        filler.unlink()

    try:
        learner = FakeLearner(context, ports, lambda hello: Welcome(hello.actor, -1, -1))
        learner.start()
        disk_user = threading.Thread(target=fill_then_free, daemon=True)
        disk_user.start()
        config = dataclasses.replace(actor_config(tmp_path, ports, steps=45, max_hz=20), spool=disk / "spool")
        assert run_actor(config) == 0
        disk_user.join(timeout=10)
        learner.join(timeout=10)
    finally:
        context.destroy(linger=0)
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert "cannot write chunk seq" in caplog.text and "No space left on device" in caplog.text
    assert [c.seq for c in learner.chunks] == list(range(5)) and sum(c.count for c in learner.chunks) == 45


SAY_FROM_TWO_THREADS = """
import threading
from robot_rl.distributed.common import say
def report(tag):
    for i in range(3000):
        say(f"{tag} line {i} " + "x" * 60)
threads = [threading.Thread(target=report, args=(tag,)) for tag in ("loop", "link")]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_lines_said_by_two_threads_stay_whole():
    """The actor's control loop and network thread both report; under launch (PYTHONUNBUFFERED, a pipe)
    print's separate newline write let one line join another, which launch then prefixed as one line."""
    proc = subprocess.run([sys.executable, "-c", SAY_FROM_TWO_THREADS], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 6000 and all(re.fullmatch(r"(loop|link) line \d+ x{60}", line) for line in lines)
