"""A real learner whose run directory fills up: every write (chunks, checkpoint.pt, actor.pt,
TensorBoard, episode files) costs a log line and is retried; the learner keeps serving, acks
nothing it could not store, and leaves no corrupt file.

The run directory is a small tmpfs mounted by the test (needs root: `mount -t tmpfs`); the disk is
filled with a plain file and freed by deleting it."""

import contextlib
import subprocess

import pytest
import zmq

from distributed_helpers import TINY, Proc, free_ports, wait_until
from wire_clients import GoodActor, ask, client, hello_like_the_learner, pick_chunk
from robot_rl.distributed.store import stored_keys
from robot_rl.train.checkpoint import load_checkpoint
from robot_rl.transport import messages


@contextlib.contextmanager
def small_disk(path, size_mb: int):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size_mb} MB tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory) -> int:
    """Write ``directory/filler`` until the disk is full; returns its size in bytes."""
    written = 0
    with open(directory / "filler", "wb", buffering=0) as file:
        for block in (2**20, 4096, 512):
            with contextlib.suppress(OSError):  # ENOSPC: on to smaller blocks
                while True:
                    written += file.write(bytes(block))
    return written


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_a_full_disk_costs_log_lines_and_no_ack_and_the_learner_catches_up_once_freed(tmp_path, context):
    with small_disk(tmp_path / "disk", 32) as disk:
        ports = free_ports()
        endpoint = f"tcp://127.0.0.1:{ports[0]}"
        learner = Proc("learner", ["learner", "--task", "pick_cube", *TINY, "--out", str(disk), "--name", "run", "--steps", "100000",
                                   "--learning-starts", "32", "--no-eval", "--threads", "1", "--checkpoint-every", "20",
                                   "--checkpoint-every-s", "1", "--log-every", "5", "--bind", endpoint,
                                   "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path)
        run = disk / "run"
        try:
            learner.wait_for("learner for pick_cube", 90)
            good = GoodActor(client(context, endpoint, "good-1"), hello_like_the_learner("good"))
            for _ in range(10):
                good.send_and_expect_ack()
            wait_until(lambda: (run / "checkpoint.pt").exists() and (run / "actor.pt").exists(), 60, "a first checkpoint")
            assert fill(disk) > 0
            learner.wait_for(r"cannot write checkpoint\.pt .*No space left on device.*retrying", 30)
            learner.wait_for(r"cannot write TensorBoard .*No space left on device", 30)
            stuck = pick_chunk("good", good.seq, value=0.1)
            assert ask(good.socket, messages.encode(stuck), 1500) is None  # not stored, so not acked
            learner.wait_for(r"cannot store chunk seq \d+ of actor 'good'", 10)
            assert learner.proc.poll() is None
            (disk / "filler").unlink()
            learner.wait_for(r"wrote checkpoint\.pt again", 30)
            good.send_and_expect_ack()  # the actor resends the chunk it still holds
            good.send_and_expect_ack()
            assert learner.interrupt() == 130
        finally:
            learner.cleanup()
        text = learner.text
        assert "Traceback" not in text, text[-3000:]
        assert load_checkpoint(run / "checkpoint.pt")["updates"] > 0 and load_checkpoint(run / "actor.pt")
        assert not list(run.rglob(".*.tmp"))
        keys = stored_keys(run)
        assert len(keys) == len(set(keys)) == 5 * good.seq
