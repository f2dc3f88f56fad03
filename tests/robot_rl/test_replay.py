"""The replay buffer: exact round trips, episode and ring boundaries, images stored once, errors.

Every observation's state carries ``[episode id, step, 0]`` (and every image is filled with
``step``), so a sampled transition names itself and its pairing can be checked exactly.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import robot_rl
from robot_rl.data import EpisodeRecorder
from robot_rl.data.replay import ReplayBuffer, available_memory_bytes
from robot_rl.data.schema import ObsSpec
from robot_rl.record import episode_metadata, expert_policy, run_episode

STATE_DIM, ACTION_DIM, SIDE = 3, 2, 4
STATE_SPEC = ObsSpec(state_dim=STATE_DIM)
PIXEL_SPEC = ObsSpec(state_dim=STATE_DIM, images={"front": (SIDE, SIDE, 3), "wrist": (SIDE, SIDE, 3)})


def make_obs(spec: ObsSpec, episode: int, step: int) -> dict[str, np.ndarray]:
    obs = {"state": np.array([episode, step, 0.0], np.float32)}
    for name, shape in spec.images.items():
        obs[name] = np.full(shape, step % 256, np.uint8)
    return obs


def step_values(episode: int, step: int) -> tuple[np.ndarray, float]:
    """The action and reward of step ``step`` -> ``step + 1``, derived from its identity."""
    return np.array([episode, step], np.float32), float(100 * episode + step)


def add_online(buffer: ReplayBuffer, spec: ObsSpec, episode: int, steps: int, terminated: bool = True) -> None:
    buffer.start_episode(make_obs(spec, episode, 0))
    for t in range(steps):
        action, reward = step_values(episode, t)
        last = t == steps - 1
        buffer.add(action, reward, last and terminated, last and not terminated, make_obs(spec, episode, t + 1))


def record_episode(spec: ObsSpec, episode: int, steps: int, terminated: bool = True):
    observation_spec = {"state": {"shape": [STATE_DIM], "dtype": "float32"}}
    observation_spec.update({k: {"shape": list(v), "dtype": "uint8"} for k, v in spec.images.items()})
    recorder = EpisodeRecorder({
        "task": "test", "obs_mode": "pixels" if spec.images else "state", "control_hz": 10.0,
        "observation_spec": observation_spec,
        "action_spec": {"shape": [ACTION_DIM], "low": [-1.0] * ACTION_DIM, "high": [1.0] * ACTION_DIM},
    })
    recorder.start(make_obs(spec, episode, 0))
    for t in range(steps):
        action, reward = step_values(episode, t)
        last = t == steps - 1
        recorder.add(action, reward, last and terminated, last and not terminated, make_obs(spec, episode, t + 1))
    return recorder.finish()


def transitions(batch) -> set[tuple[int, int]]:
    """The (episode, step) of each sampled transition, after checking it is exactly what was stored."""
    state, following = batch.obs["state"], batch.next_obs["state"]
    np.testing.assert_array_equal(following[:, 0], state[:, 0], err_msg="next_obs from another episode")
    np.testing.assert_array_equal(following[:, 1], state[:, 1] + 1, err_msg="next_obs is not the next step")
    np.testing.assert_array_equal(batch.action, state[:, :2])
    np.testing.assert_array_equal(batch.reward, 100 * state[:, 0] + state[:, 1])
    for name in batch.obs:
        if name != "state":
            np.testing.assert_array_equal(batch.obs[name][:, 0, 0, 0], state[:, 1] % 256)
            np.testing.assert_array_equal(batch.next_obs[name][:, 0, 0, 0], following[:, 1] % 256)
    return {(int(e), int(t)) for e, t in state[:, :2]}


def make_buffer(spec: ObsSpec = STATE_SPEC, capacity: int = 100, **kwargs) -> ReplayBuffer:
    return ReplayBuffer(spec, ACTION_DIM, capacity, **kwargs)


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("spec", [STATE_SPEC, PIXEL_SPEC], ids=["state", "pixels"])
def test_sample_returns_exactly_the_stored_transitions(spec):
    buffer = make_buffer(spec)
    add_online(buffer, spec, episode=1, steps=12)
    assert len(buffer) == 12
    batch = buffer.sample(2000)
    assert transitions(batch) == {(1, t) for t in range(12)}
    assert batch.obs["state"].dtype == np.float32 and batch.action.shape == (2000, ACTION_DIM)
    assert batch.reward.shape == (2000,) and batch.terminated.dtype == np.float32
    for name in spec.images:
        assert batch.obs[name].dtype == np.uint8 and batch.obs[name].shape == (2000, SIDE, SIDE, 3)


def test_episode_boundaries_are_never_crossed_and_flags_are_kept():
    buffer = make_buffer()
    add_online(buffer, STATE_SPEC, episode=1, steps=4, terminated=True)
    add_online(buffer, STATE_SPEC, episode=2, steps=3, terminated=False)  # truncated
    assert len(buffer) == 7
    batch = buffer.sample(3000)
    assert transitions(batch) == {(1, t) for t in range(4)} | {(2, t) for t in range(3)}
    steps = {(int(e), int(t)): (float(d), float(n)) for (e, t, _), d, (_, n, _) in
             zip(batch.obs["state"], batch.terminated, batch.next_obs["state"])}
    assert steps[(1, 3)] == (1.0, 4.0)  # terminated; next_obs is the final observation
    assert steps[(2, 2)] == (0.0, 3.0)  # truncated: bootstraps from the real final observation
    assert all(done == 0.0 for (e, t), (done, _) in steps.items() if (e, t) not in {(1, 3)})


def test_after_termination_or_truncation_a_new_episode_must_start():
    buffer = make_buffer()
    add_online(buffer, STATE_SPEC, episode=1, steps=2, terminated=False)
    with pytest.raises(ValueError, match="start_episode"):
        buffer.add(*step_values(1, 2), False, False, make_obs(STATE_SPEC, 1, 3))
    add_online(buffer, STATE_SPEC, episode=2, steps=2)
    assert transitions(buffer.sample(500)) == {(1, 0), (1, 1), (2, 0), (2, 1)}


def test_start_episode_abandons_an_unfinished_episode():
    buffer = make_buffer()
    buffer.start_episode(make_obs(STATE_SPEC, 1, 0))
    buffer.add(*step_values(1, 0), False, False, make_obs(STATE_SPEC, 1, 1))
    add_online(buffer, STATE_SPEC, episode=2, steps=2)  # episode 1 never ended
    assert len(buffer) == 3
    assert transitions(buffer.sample(500)) == {(1, 0), (2, 0), (2, 1)}


# ---------------------------------------------------------------------- the ring
def expected_transitions(written: list[tuple[int, int]], capacity: int) -> set[tuple[int, int]]:
    """Reference model: a step is valid when both its observations are among the last ``capacity``."""
    alive = written[-capacity:]
    return {(e, t) for (e, t), nxt in zip(alive, alive[1:]) if nxt == (e, t + 1)}


@pytest.mark.parametrize("feed", ["online", "episodes"])
def test_ring_wrap_with_overwrites_keeps_only_whole_transitions(feed):
    capacity, rng = 10, np.random.default_rng(3)
    buffer, written = make_buffer(capacity=capacity), []
    for episode in range(1, 25):
        steps = int(rng.integers(3, 8))
        if feed == "online":
            add_online(buffer, STATE_SPEC, episode, steps)
        else:
            assert buffer.add_episode(record_episode(STATE_SPEC, episode, steps)) == steps
        written += [(episode, t) for t in range(steps + 1)]
        expected = expected_transitions(written, capacity)
        assert len(buffer) == len(expected)
        assert transitions(buffer.sample(1000)) == expected


def test_an_episode_can_span_the_wrap():
    buffer = make_buffer(capacity=10)
    add_online(buffer, STATE_SPEC, episode=1, steps=6)  # slots 0..6
    add_online(buffer, STATE_SPEC, episode=2, steps=5)  # slots 7, 8, 9, 0, 1, 2
    assert transitions(buffer.sample(1000)) == {(1, 3), (1, 4), (1, 5)} | {(2, t) for t in range(5)}


@pytest.mark.parametrize("feed", ["online", "episodes"])
def test_an_episode_longer_than_the_buffer_keeps_its_latest_steps(feed):
    buffer = make_buffer(capacity=10)
    if feed == "online":
        add_online(buffer, STATE_SPEC, episode=1, steps=25)
    else:
        assert buffer.add_episode(record_episode(STATE_SPEC, 1, 25)) == 9
    assert transitions(buffer.sample(1000)) == {(1, t) for t in range(16, 25)}


def test_mostly_invalid_slots_are_still_sampled_uniformly_from_the_valid_ones():
    buffer = make_buffer(capacity=100)
    for episode in range(60):  # first observations with no step after them
        buffer.start_episode(make_obs(STATE_SPEC, episode, 0))
    add_online(buffer, STATE_SPEC, episode=99, steps=2)
    batch = buffer.sample(4000)
    assert transitions(batch) == {(99, 0), (99, 1)}
    assert abs(np.mean(batch.obs["state"][:, 1]) - 0.5) < 0.05


# ---------------------------------------------------------------------- storage
def test_images_are_stored_once():
    spec = ObsSpec(state_dim=7, images={"front": (32, 32, 3), "wrist": (32, 32, 3)})
    buffer = ReplayBuffer(spec, action_dim=4, capacity=500)
    per_obs = 2 * 32 * 32 * 3 + 7 * 4
    assert buffer.nbytes == ReplayBuffer.bytes_needed(spec, 4, 500) == 500 * (per_obs + 4 * 4 + 4 + 1 + 1)
    assert buffer.nbytes < 1.1 * 500 * per_obs  # not 2x: no separate next_obs arrays


def test_construction_prints_the_memory_budget(capsys):
    ReplayBuffer(ObsSpec(13, {"a": (128, 128, 3), "b": (128, 128, 3)}), 7, 1000, name="demo")
    line = capsys.readouterr().out.strip()
    assert line.startswith("replay 'demo': capacity 1,000 transitions, 2 cameras 128x128 uint8 + 13 floats -> 0.1 GB")
    assert "(available: " in line


def test_a_buffer_larger_than_memory_is_refused_with_a_capacity_that_fits(capsys):
    spec = ObsSpec(7, {"front": (128, 128, 3), "wrist": (128, 128, 3)})
    with pytest.raises(MemoryError) as info:
        ReplayBuffer(spec, 4, capacity=10**9)
    message = str(info.value)
    assert "needs 98" in message and "GB is available" in message and "capacity of at most" in message
    fits = int(message.split("capacity of at most ")[1].split()[0].replace(",", ""))
    # Other processes move the available memory between the two reads: compare loosely.
    assert ReplayBuffer.bytes_needed(spec, 4, fits) == pytest.approx(0.9 * available_memory_bytes(), rel=0.2)


# ---------------------------------------------------------------------- episodes from the store
@pytest.mark.parametrize("spec", [STATE_SPEC, PIXEL_SPEC], ids=["state", "pixels"])
def test_add_episode_from_recorded_episodes(spec):
    buffer = make_buffer(spec)
    assert buffer.add_episode(record_episode(spec, 1, 5, terminated=True)) == 5
    assert buffer.add_episode(record_episode(spec, 2, 4, terminated=False)) == 4
    assert len(buffer) == 9 and buffer.transitions_added == 9
    batch = buffer.sample(2000)
    assert transitions(batch) == {(1, t) for t in range(5)} | {(2, t) for t in range(4)}
    done = {(int(e), int(t)) for (e, t, _), d in zip(batch.obs["state"], batch.terminated) if d == 1.0}
    assert done == {(1, 4)}


def test_add_episode_then_online_steps_share_the_ring():
    buffer = make_buffer(capacity=12)
    buffer.add_episode(record_episode(STATE_SPEC, 1, 5))
    add_online(buffer, STATE_SPEC, episode=2, steps=8)  # wraps over episode 1's first slots
    assert transitions(buffer.sample(1000)) == {(1, 3), (1, 4)} | {(2, t) for t in range(8)}


def test_add_episode_refuses_other_observation_keys():
    buffer = make_buffer(STATE_SPEC)
    with pytest.raises(ValueError, match=r"episode observation keys \['front', 'state', 'wrist'\]"):
        buffer.add_episode(record_episode(PIXEL_SPEC, 1, 3))
    pixels = make_buffer(ObsSpec(STATE_DIM, {"front": (SIDE + 1, SIDE, 3), "wrist": (SIDE, SIDE, 3)}))
    with pytest.raises(ValueError, match=r"observations\['front'\] must be uint8 of shape \(4, 5, 4, 3\)"):
        pixels.add_episode(record_episode(PIXEL_SPEC, 1, 3))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("key, value, match", [
    ("state", np.zeros(4, np.float32), r"obs\['state'\] must be float32 of shape \(3,\), got float32 of shape \(4,\)"),
    ("state", np.zeros(3, np.float64), r"obs\['state'\] must be float32 of shape \(3,\), got float64"),
    ("state", np.array([0, np.nan, 0], np.float32), r"obs\['state'\] \(shape \(3,\)\) holds NaN"),
    ("front", np.zeros((SIDE, SIDE, 3), np.float32), r"obs\['front'\] must be uint8 of shape \(4, 4, 3\)"),
    ("front", np.zeros((SIDE, SIDE), np.uint8), r"obs\['front'\] must be uint8 of shape \(4, 4, 3\)"),
])
def test_bad_observations_are_refused_naming_the_key_and_shape(key, value, match):
    buffer = make_buffer(PIXEL_SPEC)
    with pytest.raises(ValueError, match=match):
        buffer.start_episode({**make_obs(PIXEL_SPEC, 0, 0), key: value})
    buffer.start_episode(make_obs(PIXEL_SPEC, 0, 0))
    with pytest.raises(ValueError, match=match.replace("obs", "next_obs", 1)):
        buffer.add(*step_values(0, 0), False, False, {**make_obs(PIXEL_SPEC, 0, 1), key: value})
    assert len(buffer) == 0


def test_bad_steps_are_refused():
    buffer = make_buffer()
    obs = make_obs(STATE_SPEC, 0, 1)
    with pytest.raises(ValueError, match="no episode in progress; call start_episode"):
        buffer.add(np.zeros(ACTION_DIM), 0.0, False, False, obs)
    buffer.start_episode(make_obs(STATE_SPEC, 0, 0))
    with pytest.raises(ValueError, match=r"action must be a float array of shape \(2,\), got float64 of shape \(3,\)"):
        buffer.add(np.zeros(3), 0.0, False, False, obs)
    with pytest.raises(ValueError, match=r"action \(shape \(2,\)\) holds NaN"):
        buffer.add(np.array([0.0, np.nan]), 0.0, False, False, obs)
    with pytest.raises(ValueError, match="reward must be a finite scalar"):
        buffer.add(np.zeros(ACTION_DIM), float("nan"), False, False, obs)
    with pytest.raises(ValueError, match=r"keys \['state'\]"):
        buffer.add(np.zeros(ACTION_DIM), 0.0, False, False, {"wrong": obs["state"]})
    buffer.add([0.0, 0.0], 0, False, False, obs)  # lists and int rewards are fine
    assert len(buffer) == 1


def test_sampling_an_empty_buffer_says_so():
    buffer = make_buffer()
    with pytest.raises(ValueError, match="has no transitions to sample yet"):
        buffer.sample(8)
    buffer.start_episode(make_obs(STATE_SPEC, 0, 0))  # an observation alone is no transition
    with pytest.raises(ValueError, match="has no transitions to sample yet"):
        buffer.sample(8)


# ---------------------------------------------------------------------- determinism and resume
def filled(seed: int, capacity: int = 50) -> ReplayBuffer:
    buffer = make_buffer(capacity=capacity, seed=seed)
    for episode in range(1, 12):
        buffer.add_episode(record_episode(STATE_SPEC, episode, 3 + episode % 4))
    return buffer


def test_same_seed_same_samples():
    first, second, other = filled(7), filled(7), filled(8)
    for _ in range(3):
        a, b, c = first.sample(64), second.sample(64), other.sample(64)
        np.testing.assert_array_equal(a.obs["state"], b.obs["state"])
        np.testing.assert_array_equal(a.action, b.action)
        assert not np.array_equal(a.obs["state"], c.obs["state"])


def test_state_dict_round_trip_continues_the_sampling_sequence():
    original = filled(seed=1)
    for _ in range(3):
        original.sample(32)
    saved = json.loads(json.dumps(original.state_dict()))
    expected = [original.sample(32).obs["state"] for _ in range(3)]
    resumed = filled(seed=123)  # arrays refilled from the same episodes, another seed
    resumed.load_state_dict(saved)
    for batch_state in expected:
        np.testing.assert_array_equal(resumed.sample(32).obs["state"], batch_state)
    assert resumed.transitions_added == original.transitions_added


def test_load_state_dict_checks_capacity_and_reports_moved_positions(caplog):
    saved = filled(seed=1).state_dict()
    with pytest.raises(ValueError, match="state_dict is for capacity 50, this buffer has 60"):
        filled(seed=1, capacity=60).load_state_dict(saved)
    shorter = make_buffer(capacity=50)
    shorter.add_episode(record_episode(STATE_SPEC, 1, 3))
    with caplog.at_level(logging.WARNING):
        shorter.load_state_dict(saved)
    assert "keeping the refilled ones" in caplog.text
    shorter.sample(4)


def test_sampling_into_an_earlier_batch_refills_it_in_place():
    fresh, in_place = make_buffer(PIXEL_SPEC, seed=4), make_buffer(PIXEL_SPEC, seed=4)
    for buffer in (fresh, in_place):
        add_online(buffer, PIXEL_SPEC, episode=1, steps=30)
    out = in_place.sample(64)
    fresh.sample(64)
    for _ in range(3):
        expected, refilled = fresh.sample(64), in_place.sample(64, out=out)
        assert refilled is out
        for (key, value), (_, want) in zip(refilled.items(), expected.items()):
            assert value.dtype == want.dtype, key
            np.testing.assert_array_equal(value, want, err_msg=key)
    wrong_size = r"out obs/state must be a writeable contiguous numpy float32 array of shape \(32, 3\), got float32 of"
    with pytest.raises(ValueError, match=wrong_size):
        in_place.sample(32, out=out)
    with pytest.raises(ValueError, match="out must be a Batch"):
        in_place.sample(64, out=fresh.sample(64).obs)


# ---------------------------------------------------------------------- a real env
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_a_real_env_feeds_the_buffer_online_and_from_recorded_episodes(obs_mode):
    options = {"image_height": 24, "image_width": 24} if obs_mode == "pixels" else {}
    env = robot_rl.make("pick_cube", obs=obs_mode, **options).unwrapped
    try:
        spec = ObsSpec.from_space(env.observation_space)
        episode = run_episode(env, expert_policy, 0, EpisodeRecorder(episode_metadata(env, "sim", "test")), None, "")
        online = ReplayBuffer(spec, env.action_space.shape[0], capacity=64)
        obs, _ = env.reset(seed=1)
        online.start_episode(spec.canonical(obs))
        for _ in range(10):
            obs, reward, terminated, truncated, info = env.step(expert_policy(env))
            online.add(info["executed_action"], reward, terminated, truncated, spec.canonical(obs))
    finally:
        env.close()
    stored = ReplayBuffer(spec, env.action_space.shape[0], capacity=64)
    assert stored.add_episode(episode) == len(episode)
    batch = stored.sample(200)
    states = episode.observations["state"]
    steps = [int(np.flatnonzero((states[:-1] == row).all(axis=1))[0]) for row in batch.obs["state"]]
    np.testing.assert_array_equal(batch.next_obs["state"], states[np.array(steps) + 1])
    np.testing.assert_array_equal(batch.action, episode.actions[steps])
    for camera in spec.images:
        np.testing.assert_array_equal(batch.next_obs[camera], episode.observations[camera][np.array(steps) + 1])
    assert len(online) == 10 and len(online.sample(8)) == 8


def _expected_n_step(episode: int, start: int, steps: int, n: int, gamma: float, terminated: bool):
    """Reward sum, bootstrap step, terminated flag and multiplier of the n-step transition from ``start``."""
    k = min(n, steps - start)
    total = sum(gamma**j * step_values(episode, start + j)[1] for j in range(k))
    ends_in_termination = terminated and start + k == steps
    return total, start + k, float(ends_in_termination), gamma**k


@pytest.mark.parametrize("out", [False, True])
def test_n_step_transitions_stop_at_termination_truncation_and_the_ring_wrap(out):
    gamma, n = 0.9, 3
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=16, seed=3)
    add_online(buffer, STATE_SPEC, episode=1, steps=5, terminated=True)   # slots 0-5
    add_online(buffer, STATE_SPEC, episode=2, steps=4, terminated=False)  # truncated: slots 6-10
    add_online(buffer, STATE_SPEC, episode=3, steps=7, terminated=True)   # wraps the ring; overwrites episode 1's start
    lengths = {1: 5, 2: 4, 3: 7}
    terminal = {1: True, 2: False, 3: True}
    first = buffer.sample(256, n_step=n, discount=gamma)
    batch = buffer.sample(256, out=first, n_step=n, discount=gamma) if out else first
    seen = set()
    for i in range(len(batch)):
        episode, start = int(batch.obs["state"][i, 0]), int(batch.obs["state"][i, 1])
        total, boot_step, term, mult = _expected_n_step(episode, start, lengths[episode], n, gamma, terminal[episode])
        assert batch.next_obs["state"][i, 0] == episode and batch.next_obs["state"][i, 1] == boot_step
        assert batch.reward[i] == pytest.approx(total, rel=1e-5)
        assert batch.terminated[i] == term and batch.discount[i] == pytest.approx(mult)
        seen.add((episode, start))
    assert (2, 3) in seen and (3, 6) in seen  # the last steps of a truncation and a termination were drawn


def test_one_step_samples_have_no_discount_and_n_step_needs_one():
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=16)
    add_online(buffer, STATE_SPEC, episode=1, steps=3)
    assert buffer.sample(4).discount is None
    with pytest.raises(ValueError, match="discount"):
        buffer.sample(4, n_step=3)
