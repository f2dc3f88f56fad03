"""Typed message kinds: round trips, kind-specific validation and the torch weight helpers."""

import dataclasses

import numpy as np
import pytest

from robot_rl.transport import messages, wire
from robot_rl.transport.handshake import ActionSpec, ArraySpec, Hello
from robot_rl.transport.messages import Ack, Heartbeat, Reject, Stats, Transitions, Weights, Welcome
from robot_rl.transport.wire import MessageError


def chunk(first_step=0, count=3, final=False, actor="arm-1", seq=0, episode=4) -> Transitions:
    rows = count + 1 if first_step == 0 else count
    ended = np.zeros(count, bool)
    ended[-1] = final
    return Transitions(
        actor, seq, episode, first_step,
        action=np.full((count, 7), 0.5, np.float32),
        reward=np.arange(count, dtype=np.float32),
        terminated=ended.copy(),
        truncated=np.zeros(count, bool),
        intervention=np.array([i % 2 == 0 for i in range(count)]),
        observations={"state": np.arange(rows * 30, dtype=np.float32).reshape(rows, 30),
                      "front": np.full((rows, 8, 8, 3), 7, np.uint8)},
        final=final,
    )


def hello(**changes) -> Hello:
    base = Hello("arm-1", "pick_cube", {"state": ArraySpec((30,), "float32"), "front": ArraySpec((128, 128, 3), "uint8")},
                 ActionSpec((7,), (-1.0,) * 7, (1.0,) * 7), {"encoder": "resnet10", "hidden": [256, 256]})
    return dataclasses.replace(base, **changes)


def assert_transitions_equal(a: Transitions, b: Transitions) -> None:
    assert (a.actor, a.seq, a.episode, a.first_step, a.final, a.count) == (b.actor, b.seq, b.episode, b.first_step, b.final, b.count)
    for name in ("action", "reward", "terminated", "truncated", "intervention"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert a.observations.keys() == b.observations.keys()
    for key in a.observations:
        np.testing.assert_array_equal(a.observations[key], b.observations[key])


@pytest.mark.parametrize("first_step, final", [(0, False), (3, False), (3, True), (0, True)])
def test_transitions_round_trip(first_step, final):
    sent = chunk(first_step=first_step, final=final, seq=11)
    received = messages.decode([bytes(f) for f in messages.encode(sent)])
    assert isinstance(received, Transitions)
    assert_transitions_equal(received, sent)
    assert received.keys() == [("arm-1", 4, first_step + i) for i in range(3)]
    assert all(v.shape[0] == 3 for v in received.next_observations().values())
    reset = received.reset_observation()
    assert (reset is None) == (first_step > 0)
    if reset is not None:
        np.testing.assert_array_equal(reset["state"], sent.observations["state"][0])


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda c: dataclasses.replace(c, action=c.action.astype(np.float64)), "action must be float32"),
        (lambda c: dataclasses.replace(c, action=c.action[:2]), "reward must be float32 (count=2,), got float32 (3,)"),
        (lambda c: dataclasses.replace(c, reward=c.reward[:2]), "reward must be float32 (count=3,)"),
        (lambda c: dataclasses.replace(c, terminated=c.terminated.astype(np.uint8)), "terminated must be bool"),
        (lambda c: dataclasses.replace(c, observations={**c.observations, "state": c.observations["state"][1:]}),
         "obs/state: expected 4 rows"),
        (lambda c: dataclasses.replace(c, first_step=2), "obs/state: expected 3 rows"),
        (lambda c: dataclasses.replace(c, observations={}), "carry no observations"),
        (lambda c: dataclasses.replace(c, episode=-1), "episode must be an integer >= 0"),
        (lambda c: dataclasses.replace(c, final=True), "final=True but terminated|truncated is [0, 0, 0]"),
        (lambda c: dataclasses.replace(c, truncated=np.array([True, False, False])), "only the last step"),
    ],
)
def test_transitions_validation(change, error):
    with pytest.raises(MessageError) as info:
        messages.encode(change(chunk()))
    assert error in str(info.value)


def test_transitions_decoder_checks_what_the_sender_did_not():
    frames = [bytes(f) for f in wire.encode(messages.to_wire(chunk()))]
    bad = wire.decode(frames)
    bad.arrays["extra"] = np.zeros(3, np.float32)
    with pytest.raises(MessageError, match="unexpected array 'extra'"):
        messages.decode(wire.encode(bad))
    bad = wire.decode(frames)
    bad.meta["count"] = 0
    with pytest.raises(MessageError, match="count must be an integer >= 1"):
        messages.decode(wire.encode(bad))
    bad = wire.decode(frames)
    bad.meta["surprise"] = 1
    with pytest.raises(MessageError, match="meta must have exactly the fields"):
        messages.decode(wire.encode(bad))


def test_small_kinds_round_trip():
    sent = [
        hello(),
        Welcome("arm-1", stored_seq=41, weights_version=3),
        Reject("arm-1", "incompatible actor", ("task: learner has 'pick_cube', actor has 'reach'",)),
        Ack("arm-1", stored_seq=-1),
        Ack("arm-1", stored_seq=12),
        Stats("arm-1", {"env/episode_return": 3.5, "env/success": 1.0, "actor/control_hz": 10.0, "actor/queue_depth": 2}, seq=5),
        Heartbeat("learner", "learner", "training", {"learner_step": 1200, "actors": 2}, seq=9),
    ]
    for message in sent:
        assert messages.decode(messages.encode(message)) == message
        assert messages.unpack(messages.pack(message)) == message


def test_stats_accepts_numpy_scalars_and_bools():
    stats = messages.decode(messages.encode(Stats("a", {"env/success": np.bool_(True), "actor/loop_latency_ms": np.float32(2.5)})))
    assert stats.values == {"env/success": 1.0, "actor/loop_latency_ms": 2.5}


@pytest.mark.parametrize(
    "kind, meta, error",
    [
        ("ack", {"stored_seq": -2}, "stored_seq must be an integer >= -1"),
        ("ack", {"stored_seq": "3"}, "stored_seq must be an integer"),
        ("ack", {}, "ack meta must have exactly the fields ['stored_seq']"),
        ("welcome", {"stored_seq": 0, "weights_version": 1.5}, "weights_version must be an integer"),
        ("reject", {"reason": "x", "differences": [1]}, "differences must be a list of strings"),
        ("stats", {"values": {"a": "high"}}, "must map at most 256 names to numbers"),
        ("stats", {"values": {"a": True}}, "names to numbers"),
        ("heartbeat", {"role": "actor", "status": "", "counters": {"n": 1.5}}, "names to integers"),
        ("weights", {"version": 1, "learner_step": 0}, "carries no parameters"),
        ("hello", {"actor": "a"}, "hello meta must have exactly the fields"),
    ],
)
def test_small_kinds_validation(kind, meta, error):
    with pytest.raises(MessageError) as info:
        messages.decode(wire.encode(wire.Message(kind, "a", 0, meta)))
    assert error in str(info.value)


def test_small_kinds_refuse_arrays_and_hello_actor_must_match():
    with pytest.raises(MessageError, match="ack message carries no arrays"):
        messages.decode(wire.encode(wire.Message("ack", "a", 0, {"stored_seq": 1}, {"x": np.zeros(1)})))
    with pytest.raises(MessageError, match="header actor 'b' differs from meta actor 'arm-1'"):
        messages.decode(wire.encode(wire.Message("hello", "b", 0, hello().to_meta())))
    with pytest.raises(MessageError, match="observation 'front' must be"):
        meta = hello().to_meta()
        meta["observation"]["front"]["dtype"] = "object"
        messages.decode(wire.encode(wire.Message("hello", "arm-1", 0, meta)))


def test_weights_from_a_torch_module_round_trip_packed():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)).double()
    params = messages.state_dict_to_arrays(net.state_dict())
    assert params["0.weight"].dtype == np.float32 and params["1.num_batches_tracked"].dtype == np.int64
    received = messages.unpack(messages.pack(Weights(version=5, learner_step=1000, params=params)))
    assert isinstance(received, Weights) and (received.version, received.learner_step) == (5, 1000)
    other = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)).double()
    other.load_state_dict(messages.arrays_to_state_dict(received.params, like=other.state_dict()))
    for (name, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        assert b.dtype == a.dtype, name
        torch.testing.assert_close(b, a.to(torch.float32).to(a.dtype))


def test_weights_that_do_not_fit_are_named():
    torch = pytest.importorskip("torch")
    params = messages.state_dict_to_arrays(torch.nn.Linear(3, 2).state_dict())
    like = torch.nn.Linear(4, 2).state_dict()
    with pytest.raises(ValueError, match=r"'weight' shape \(2, 3\) != \(2, 4\)"):
        messages.arrays_to_state_dict(params, like=like)
    with pytest.raises(ValueError, match="missing 'bias'"):
        messages.arrays_to_state_dict({"weight": params["weight"]}, like=torch.nn.Linear(3, 2).state_dict())


def test_senders_get_the_receivers_checks():
    with pytest.raises(MessageError, match="observation 'front' must be"):
        messages.encode(hello(observation={"front": ArraySpec((8, 8, 3), "object")}))
    with pytest.raises(MessageError, match="stored_seq must be an integer >= -1"):
        messages.encode(Ack("arm-1", stored_seq=-5))
    with pytest.raises(MessageError, match="weights message carries no parameters"):
        messages.pack(Weights(1, 1, {}))
    with pytest.raises(TypeError, match="not a message type: dict"):
        messages.encode({"kind": "ack"})
