"""A learner and two sim actors as real processes over tcp://127.0.0.1: train, store, broadcast, survive kills."""

import random
import signal
import time

import pytest

from distributed_helpers import TINY, Proc, counters, free_ports
from robot_rl.data import read_episode
from robot_rl.distributed.learner import read_checkpoint_counters
from robot_rl.distributed.store import stored_keys

STEPS_PER_ACTOR = 250


@pytest.fixture
def procs():
    started = []
    yield started
    for proc in started:
        proc.cleanup()


def learner_args(run, ports, steps, *extra):
    return ["learner", "--task", "pick_cube", *TINY, "--out", str(run.parent), "--name", run.name, "--steps", str(steps),
            "--learning-starts", "32", "--publish-every", "10", "--no-eval", "--threads", "1", "--log-every", "10",
            "--bind", f"tcp://127.0.0.1:{ports[0]}", "--weights-bind", f"tcp://127.0.0.1:{ports[1]}", *extra]


def actor_args(run, ports, actor, steps, *extra):
    return ["actor", "--id", actor, "--task", "pick_cube", *TINY, "--learner", f"tcp://127.0.0.1:{ports[0]}",
            "--weights", f"tcp://127.0.0.1:{ports[1]}",
            "--out", str(run.parent), "--name", run.name, "--steps", str(steps), "--seed", str({"a0": 1, "a1": 2}.get(actor, 3)), *extra]


def test_two_actors_train_a_learner_and_kill_9_of_either_loses_nothing(tmp_path, procs):
    """Learner + 2 sim actors train until trained weights reach both; then kill -9 the learner and
    restart it with --resume, kill -9 an actor mid-episode and restart it; every step produced is
    stored exactly once. Episodes are longer than the run, so the killed actor is mid-episode."""
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    print(f"kill timing seed {seed}")
    run, ports = tmp_path / "run", free_ports()
    env = ["--env-kwargs", "max_episode_steps=1000"]
    common = [*env, "--chunk-steps", "5", "--max-hz", "40", "--flush-s", "30"]
    env_and_checkpoints = [*env, "--checkpoint-every", "10"]
    procs.append(learner := Proc("learner", learner_args(run, ports, 2 * STEPS_PER_ACTOR, *env_and_checkpoints), tmp_path))
    learner.wait_for("learner for pick_cube", 90)  # actors started earlier would spend their budget waiting for it
    a0, a1 = (Proc(a, actor_args(run, ports, a, STEPS_PER_ACTOR, *common), tmp_path) for a in ("a0", "a1"))
    procs += [a0, a1]
    spool = {a: run / "spool" / a for a in ("a0", "a1")}
    wait_until(lambda: all(counters(spool[a]).get("weights_version", -1) >= 1 for a in spool), 90)  # trained weights reached both
    time.sleep(rng.uniform(0.0, 1.0))
    learner.kill9()
    time.sleep(rng.uniform(0.0, 1.0))
    procs.append(learner := Proc("learner2", learner_args(run, ports, 2 * STEPS_PER_ACTOR, *env_and_checkpoints, "--resume"), tmp_path))
    # a0 must still be mid-episode with steps left when it is killed, however long learner2 takes
    # to start on a loaded machine (a1 keeps acting and spooling meanwhile): pause it until then.
    a0.proc.send_signal(signal.SIGSTOP)
    try:
        learner.wait_for("resumed", 90)
    finally:
        a0.proc.send_signal(signal.SIGCONT)
    produced = counters(spool["a0"])["transitions_produced"]
    assert produced <= STEPS_PER_ACTOR - 60, f"a0 already produced {produced} of {STEPS_PER_ACTOR} steps"
    wait_until(lambda: counters(spool["a0"])["transitions_produced"] >= produced + rng.randint(10, 40), 30)
    a0.kill9()
    procs.append(a0 := Proc("a0-again", actor_args(run, ports, "a0", STEPS_PER_ACTOR, *common), tmp_path))
    for proc in (a0, a1, learner):
        assert proc.wait(90) == 0, proc.text[-3000:]
    assert "resumed" in learner.text and "checkpoint at update" in learner.text and f"done: {2 * STEPS_PER_ACTOR} transitions stored" in learner.text
    produced = sum(counters(spool[a])["transitions_produced"] for a in spool)
    keys = stored_keys(run)
    assert produced == 2 * STEPS_PER_ACTOR == len(keys) == len(set(keys))  # every step stored, exactly once
    killed = read_episode(run / "episodes" / "a0_ep000000.npz", task="pick_cube")  # closed when the new a0 began episode 1
    assert killed.metadata["partial"] is True and killed.truncated[-1] and not killed.terminated.any()
    assert read_checkpoint_counters(run)["transitions_stored"] == 2 * STEPS_PER_ACTOR


def wait_until(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout_s} s"
        time.sleep(0.05)
