"""A learner whose store lost an episode file that its actor had already seen acked (a damaged
disk, a file restored from an older copy) resyncs with what the actor still holds, instead of
refusing it; real processes on Pendulum-v1."""

from distributed_helpers import TINY, Proc, counters, free_ports
from robot_rl.distributed.store import stored_keys

TASK = ["--task", "Pendulum-v1", "--env-kwargs", "max_episode_steps=20"]


def learner(tmp_path, ports, name, *extra) -> Proc:
    return Proc(name, ["learner", *TASK, *TINY, "--out", str(tmp_path), "--name", "run", "--steps", "100000", "--no-eval",
                       "--learning-starts", "100000", "--bind", f"tcp://127.0.0.1:{ports[0]}",
                       "--weights-bind", f"tcp://127.0.0.1:{ports[1]}", *extra], tmp_path)


def actor(tmp_path, ports, name, steps: int) -> Proc:
    return Proc(name, ["actor", "--id", "a0", *TASK, *TINY, "--learner", f"tcp://127.0.0.1:{ports[0]}",
                       "--weights", f"tcp://127.0.0.1:{ports[1]}", "--out", str(tmp_path), "--name", "run",
                       "--steps", str(steps), "--flush-s", "20"], tmp_path)


def test_a_damaged_episode_file_costs_its_episode_not_the_actor(tmp_path):
    ports, run = free_ports(), tmp_path / "run"
    first = learner(tmp_path, ports, "learner")
    try:
        first.wait_for("learner for Pendulum-v1", 90)
        a0 = actor(tmp_path, ports, "a0", 60)  # three 20-step episodes, all acked (so gone from its spool)
        assert a0.wait(60) == 0, a0.text[-3000:]
        assert first.interrupt() == 130
    finally:
        first.cleanup()
    damaged = run / "episodes" / "a0_ep000002.npz"
    damaged.write_bytes(b"not an npz any more")
    second = learner(tmp_path, ports, "learner2", "--resume")
    try:
        second.wait_for("resumed", 90)
        again = actor(tmp_path, ports, "a0-again", 120)
        assert again.wait(60) == 0, again.text[-3000:]
        assert second.interrupt() == 130
    finally:
        second.cleanup()
    assert "store: skipping" in second.text and "a0_ep000002.npz" in second.text
    assert "actor 'a0' resyncs" in second.text and "Traceback" not in second.text
    keys = stored_keys(run)
    assert counters(run / "spool" / "a0")["transitions_produced"] == 120
    assert len(keys) == len(set(keys)) == 120 - 20  # all but the damaged episode
    assert not [k for k in keys if k[1] == 2]
