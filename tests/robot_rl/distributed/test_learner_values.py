"""Finite but absurd values cannot crash or poison a real learner process: chunks out of bounds are
refused (the actor is told why and exits), stored data out of bounds is not replayed after
--resume, and a batch that makes the losses non-finite changes no weight."""

import dataclasses

import numpy as np
import pytest
import torch
import zmq

from distributed_helpers import TINY, Proc, free_ports
from wire_clients import GoodActor, ask, client, hello_like_the_learner, pick_chunk
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.store import EpisodeStore
from robot_rl.envs import EnvConfig, make_env
from robot_rl.train.checkpoint import load_checkpoint
from robot_rl.transport import Reject, messages

BIG = np.float32(3e38)


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def learner_args(tmp_path, ports, *extra):
    return ["learner", *TINY, "--out", str(tmp_path), "--name", "run", "--steps", "100000", "--no-eval", "--threads", "1",
            "--bind", f"tcp://127.0.0.1:{ports[0]}", "--weights-bind", f"tcp://127.0.0.1:{ports[1]}", *extra]


def test_absurd_values_are_refused_with_the_reason_while_a_good_actor_trains_the_learner(tmp_path, context):
    ports = free_ports()
    learner = Proc("learner", learner_args(tmp_path, ports, "--task", "pick_cube", "--learning-starts", "32"), tmp_path)
    try:
        endpoint = f"tcp://127.0.0.1:{ports[0]}"
        good_hello, evil_hello = hello_like_the_learner("good"), hello_like_the_learner("evil")
        learner.wait_for("learner for pick_cube", 90)
        good = GoodActor(client(context, endpoint, "good-1"), good_hello)
        evil = GoodActor(client(context, endpoint, "evil-1"), evil_hello)
        probes = {"reward": pick_chunk("evil", 0, reward=np.full(5, BIG)),
                  "observation": pick_chunk("evil", 0, observations={"state": np.full((6, 13), BIG)}),
                  "action": pick_chunk("evil", 0, action=np.full((5, 4), BIG)),
                  "action space": pick_chunk("evil", 0, action=np.full((5, 4), 1.5, np.float32))}
        for what, chunk in probes.items():
            reply = ask(evil.socket, messages.encode(chunk))
            assert isinstance(reply, Reject) and what in reply.reason, (what, reply)
            good.send_and_expect_ack()
        for _ in range(6):
            good.send_and_expect_ack()
        learner.wait_for(r"updates [1-9]\d* ", 60)  # trained on the good actor's 50 transitions
        good.send_and_expect_ack()
        assert learner.interrupt() == 130
        text = learner.text
        assert text.count("refusing chunk seq 0 of actor 'evil'") == 1  # one line (throttled), not one per probe
        assert "Traceback" not in text
    finally:
        learner.cleanup()


def poisoned_store(run) -> None:
    """A pick_cube store as an older learner left it: 300 ordinary steps of actor a0, an episode of
    actor r0 with reward 3e38, and an open episode of actor s0 with a 3e38 state."""
    env = make_env(EnvConfig(task="pick_cube"))
    spec = ObsSpec.from_space(env.observation_space)
    store = EpisodeStore(run, episode_metadata("pick_cube", "state", spec, env.action_space, 10.0, "online"), spec, 4)
    env.close()
    store.recover()
    rng = np.random.default_rng(0)
    for seq in range(30):  # 6 episodes of 50 steps, 10 steps per chunk
        episode, index = divmod(seq, 5)
        state = rng.normal(size=(11 if index == 0 else 10, 13)).astype(np.float32)
        chunk = pick_chunk("a0", index, count=10, episode=episode, observations={"state": state})
        store.accept(dataclasses.replace(chunk, seq=seq, final=index == 4, truncated=np.arange(10) == 9 if index == 4 else chunk.truncated))
    store.accept(pick_chunk("r0", 0, reward=np.full(5, BIG)))
    store.accept(dataclasses.replace(pick_chunk("r0", 1, reward=np.full(5, BIG)), truncated=np.arange(5) == 4, final=True))
    store.accept(pick_chunk("s0", 0, observations={"state": np.full((6, 13), BIG)}))
    assert store.transitions_stored == 315


def test_a_resumed_learner_replays_no_data_out_of_bounds_and_publishes_only_finite_weights(tmp_path):
    """Reward 3e38 is out of the default bounds: not replayed. A 3e38 state is let in on purpose
    (--max-abs-observation inf): the batches holding it give non-finite losses and change nothing."""
    run = tmp_path / "run"
    poisoned_store(run)
    ports = free_ports()
    learner = Proc("learner", learner_args(tmp_path, ports, "--task", "pick_cube", "--learning-starts", "32", "--resume",
                                           "--max-abs-observation", "inf", "--publish-every", "5"), tmp_path)
    try:
        learner.wait_for(r"updates ([2-9]\d\d|\d{4,}) ", 90)
        assert learner.interrupt() == 130
    finally:
        learner.cleanup()
    text = learner.text
    assert "not replaying episode 0 of actor 'r0'" in text and "reward 3e+38" in text
    assert "non-finite" in text and "Traceback" not in text
    weights = load_checkpoint(run / "actor.pt")
    assert all(torch.isfinite(w).all() for w in weights.values())
    agent = load_checkpoint(run / "checkpoint.pt")["agent"]["modules"]
    assert all(torch.isfinite(w).all() for module in agent.values() for w in module.values() if w.is_floating_point())


def test_an_actor_whose_chunks_are_refused_says_why_and_exits_non_zero(tmp_path):
    ports = free_ports()
    gym_task = ["--task", "Pendulum-v1", "--env-kwargs", "max_episode_steps=30"]
    learner = Proc("learner", learner_args(tmp_path, ports, *gym_task, "--max-abs-reward", "0.0001"), tmp_path)
    try:
        learner.wait_for("learner for Pendulum-v1", 90)
        actor = Proc("actor", ["actor", "--id", "a0", *gym_task, *TINY, "--learner", f"tcp://127.0.0.1:{ports[0]}",
                               "--weights", f"tcp://127.0.0.1:{ports[1]}", "--out", str(tmp_path), "--name", "run",
                               "--steps", "300", "--flush-s", "5"], tmp_path)
        try:
            assert actor.wait(60) == 3
        finally:
            actor.cleanup()
        assert learner.interrupt() == 130
    finally:
        learner.cleanup()
    assert "chunk seq 0 refused" in actor.text and "--max-abs-reward" in actor.text, actor.text[-2000:]
    assert "refusing chunk seq 0 of actor 'a0'" in learner.text
