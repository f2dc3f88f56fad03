"""The probes of ``benchmarks/hostile_actors.py``: what a hostile or broken actor (or an unlucky
disk, or ``kill -9``) does to a live learner. Each takes the :class:`Bench` and returns a note."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time

import numpy as np
import zmq

from wire_clients import ask, hello_like_the_learner, pick_chunk  # tests/robot_rl/distributed
from robot_rl.transport import Heartbeat, Reject, Welcome, messages

BIG = np.float32(3e38)
MB = 2**20


def evil(bench, name: str = "evil", actor: str = "evil") -> zmq.Socket:
    """An authorized client (the 'evil' key) that said hello as ``actor``."""
    socket = bench.client(f"{name}-{time.monotonic_ns()}", bench.keys, "evil")
    reply = ask(socket, messages.encode(hello_like_the_learner(actor)))
    assert isinstance(reply, Welcome), reply
    return socket


def expect_reject(socket, chunk) -> str:
    reply = ask(socket, messages.encode(chunk))
    return f"reject: {reply.reason[:90]}" if isinstance(reply, Reject) else f"UNEXPECTED reply {reply}"


def value_probe(bench, actor: str, **arrays) -> str:
    """A chunk of ``actor`` (its own id: each probe gets its own log line) with ``arrays`` replaced."""
    return expect_reject(evil(bench, actor=actor), pick_chunk(actor, 0, **arrays))


def garbage(bench) -> str:
    socket = bench.client("garbage", bench.keys, "evil")
    replies = [ask(socket, frames, 500) for frames in ([b"\x00\x01garbage"], [b"{not json", b"\x00" * 64], [bytes(range(256)) * 4])]
    return f"{sum(r is None for r in replies)}/3 ignored"


def stranger(bench) -> str:
    socket = bench.client("stranger", bench.stranger_keys, "stranger")
    return "no reply" if ask(socket, messages.encode(hello_like_the_learner("stranger")), 700) is None else "REPLIED"


def plain(bench) -> str:
    socket = bench.client("plain")
    return "no reply" if ask(socket, messages.encode(hello_like_the_learner("plain")), 700) is None else "REPLIED"


def schema(bench) -> str:
    socket = bench.client("schema", bench.keys, "evil")
    header = {"v": 2, "kind": "hello", "actor": "evil", "seq": 0, "meta": {}, "arrays": []}
    reply = ask(socket, [json.dumps(header).encode()])
    return "reject (schema named)" if isinstance(reply, Reject) else f"UNEXPECTED {reply}"


def nan_reward(bench) -> str:
    return value_probe(bench, "evil-nan", reward=np.full(5, np.nan, np.float32))


def big_reward(bench) -> str:
    return value_probe(bench, "evil-reward", reward=np.full(5, BIG))


def big_state(bench) -> str:
    return value_probe(bench, "evil-state", observations={"state": np.full((6, 13), BIG)})


def big_action(bench) -> str:
    return value_probe(bench, "evil-action", action=np.full((5, 4), BIG))


def impersonate(bench) -> str:
    socket = bench.client("impostor", bench.keys, "evil")
    hello = ask(socket, messages.encode(hello_like_the_learner("good")))
    ahead = ask(socket, messages.encode(pick_chunk("good", bench.good_next_seq(), episode=10**6)), 700)
    return f"hello: {'reject' if isinstance(hello, Reject) else hello}; chunk as 'good': {'ignored' if ahead is None else ahead}"


def resend_other(bench) -> str:
    socket = evil(bench, actor="evil2")
    first = ask(socket, messages.encode(pick_chunk("evil2", 0, value=0.1)))
    return f"seq 0 {type(first).__name__.lower()}ed; other content under seq 0: " + expect_reject(socket, pick_chunk("evil2", 0, value=0.2))


def oversized_frames(bench) -> str:
    socket = bench.client("big-frames", bench.keys, "evil")
    frame = bytes(100 * MB)
    socket.send_multipart([b'{"v":1}', *[frame] * 5], copy=False)
    time.sleep(3.0)  # the learner has no reply to wait for: it drops the connection
    socket.close(linger=0)
    return "5 x 100 MB sent"


def many_frames(bench) -> str:
    socket = bench.client("many-frames", bench.keys, "evil")
    frame = bytes(15 * MB)
    socket.send_multipart([b'{"v":1}', *[frame] * 10], copy=False)
    bench.wait_for_log("dropped a message", 30)
    socket.close(linger=0)
    return "10 x 15 MB sent"


def flood(bench) -> str:
    socket = bench.client("flood", bench.keys, "evil")
    beat = messages.encode(Heartbeat("evil", "actor", "ok", {}, 0))
    started = time.monotonic()
    for _ in range(10_000):
        socket.send_multipart(beat)
    return f"10,000 messages in {time.monotonic() - started:.1f} s"


def fresh_connections(bench) -> str:
    beat = messages.encode(Heartbeat("evil", "actor", "ok", {}, 0))
    for _ in range(15):
        sockets = [bench.client(f"fresh-{i}", bench.keys, "evil") for i in range(100)]
        for socket in sockets:
            socket.send_multipart(beat)
        time.sleep(0.2)
        for socket in sockets:
            socket.close(linger=0)
    return "1,500 connections, 100 at a time"


def full_disk(bench) -> str:
    if bench.disk is None:
        return "SKIPPED: " + bench.disk_skip
    filler = bench.disk / "filler"
    written = 0
    with open(filler, "wb", buffering=0) as file:
        for block in (MB, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    written += file.write(bytes(block))
    time.sleep(20.0)
    filler.unlink()
    return f"{written / MB:.0f} MB filler for 20 s, then freed"


def kill_learner(bench) -> str:
    lost = []
    for _ in range(3):
        time.sleep(random.uniform(2.0, 6.0))
        bench.learner.kill9()
        bench.start_learner(resume=True)
        match = bench.learner.wait_for(r"resumed .*?; (no|\d+) updates? since then", 120)
        lost.append(match.group(1))
    return f"3 kills; updates lost: {', '.join(lost)}"


def kill_actor(bench) -> str:
    time.sleep(random.uniform(1.0, 3.0))
    bench.actor.kill9()
    bench.start_actor()
    return "killed mid-episode, restarted"


def damage_episode(bench) -> str:
    assert bench.learner.interrupt(60, signal.SIGTERM) == 130
    newest = sorted((bench.run / "episodes").glob("good_ep*.npz"))[-1]
    bench.damaged_steps = bench.episode_length(newest)
    newest.write_bytes(b"damaged")
    bench.start_learner(resume=True)
    bench.learner.wait_for("resumed", 120)
    return f"{newest.name} ({bench.damaged_steps} steps) damaged"


PROBES = [
    ("garbage frames", garbage),
    ("unknown CURVE key", stranger),
    ("client without CURVE", plain),
    ("other wire schema version", schema),
    ("reward NaN", nan_reward),
    ("reward 3e38", big_reward),
    ("state 3e38", big_state),
    ("action 3e38", big_action),
    ("hello as 'good' with another key", impersonate),
    ("resent seq, other content", resend_other),
    ("5 frames x 100 MB (limit 16 MB)", oversized_frames),
    ("10 frames x 15 MB (each under 16 MB)", many_frames),
    ("flood: 10k messages, no hello", flood),
    ("1,500 fresh connections", fresh_connections),
    ("full disk (tmpfs) for 20 s", full_disk),
    ("kill -9 learner x3, --resume", kill_learner),
    ("kill -9 actor, restart", kill_actor),
    ("damaged episode file, --resume", damage_episode),
]
