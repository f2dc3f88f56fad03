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
from robot_rl.data import Episode, EpisodeRecorder
from robot_rl.data.nstep import Links, follow_links
from robot_rl.data.replay import ReplayBuffer, SegmentEnd, available_memory_bytes
from robot_rl.data.schema import ObsSpec
from robot_rl.human.recording import expert_policy, robot_env_metadata, run_episode

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
    links = 3 * 8  # write serial and segment link (slot, serial) per slot
    successor = 8  # the slot each transition leads to
    assert buffer.nbytes == ReplayBuffer.bytes_needed(spec, 4, 500) == 500 * (per_obs + 4 * 4 + 4 + 1 + 1 + successor + links)
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
    with pytest.raises(ValueError, match=r"no episode in progress \(lane 0\); call start_episode"):
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
        episode = run_episode(env, expert_policy, 0, EpisodeRecorder(robot_env_metadata(env, "sim", "test")), None, "")
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


# ---------------------------------------------------------------------- episodes added in segments (actor chunks)
def segment(spec: ObsSpec, episode: int, start: int, steps: int, terminated: bool = False) -> Episode:
    """Steps ``start .. start + steps - 1`` of ``episode`` as the learner adds a chunk: observations
    ``start .. start + steps``, the first one repeating the previous chunk's last one."""
    observations = [make_obs(spec, episode, t) for t in range(start, start + steps + 1)]
    values = [step_values(episode, t) for t in range(start, start + steps)]
    ends = np.zeros(steps, bool)
    ends[-1] = terminated
    return Episode({key: np.stack([obs[key] for obs in observations]) for key in observations[0]},
                   np.stack([action for action, _ in values]), np.array([r for _, r in values], np.float32),
                   ends, np.zeros(steps, bool), np.zeros(steps, bool), {})


def n_step_of(batch) -> dict[tuple[int, int], tuple[float, tuple[int, int], float, float]]:
    """(episode, step) of each sample -> (reward, bootstrap (episode, step), terminated, discount)."""
    out = {}
    for i, (episode, step, _) in enumerate(batch.obs["state"]):
        following = (int(batch.next_obs["state"][i, 0]), int(batch.next_obs["state"][i, 1]))
        value = (float(batch.reward[i]), following, float(batch.terminated[i]), float(batch.discount[i]))
        assert out.setdefault((int(episode), int(step)), value) == value, "one transition, two n-step targets"
    return out


# Actor a's episode 1 (12 steps, terminated) and actor b's episode 2 (8 steps so far) in chunks of 4
# steps, arriving alternately: (actor, episode, first step, final).
CHUNKS = [("a", 1, 0, False), ("b", 2, 0, False), ("a", 1, 4, False), ("b", 2, 4, False), ("a", 1, 8, True)]


def interleaved_chunks(buffer: ReplayBuffer, spec: ObsSpec = STATE_SPEC, link: bool = True) -> list[SegmentEnd]:
    """Add CHUNKS as the learner does, each linked to its actor's previous chunk (unless ``link`` is False)."""
    ends: dict[str, SegmentEnd] = {}
    returned = []
    for actor, episode, start, final in CHUNKS:
        after = ends.get(actor) if link and start > 0 else None
        ends[actor] = buffer.add_segment(segment(spec, episode, start, 4, terminated=final), after=after)
        returned.append(ends[actor])
    return returned


@pytest.mark.parametrize("spec", [STATE_SPEC, PIXEL_SPEC], ids=["state", "pixels"])
def test_n_step_walks_on_into_the_chunk_that_continues_an_episode(spec):
    gamma, n = 0.9, 3
    buffer = ReplayBuffer(spec, ACTION_DIM, capacity=64, seed=5)
    interleaved_chunks(buffer, spec)
    batch = buffer.sample(3000, n_step=n, discount=gamma)
    got = n_step_of(batch)
    # Step 2 is the second-to-last of actor a's first chunk: steps 2, 3 there, then step 4 of its next chunk.
    assert got[(1, 2)] == (pytest.approx(102 + 0.9 * 103 + 0.81 * 104), (1, 5), 0.0, pytest.approx(0.729))
    assert got[(2, 3)] == (pytest.approx(203 + 0.9 * 204 + 0.81 * 205), (2, 6), 0.0, pytest.approx(0.729))
    lengths, terminal = {1: 12, 2: 8}, {1: True, 2: False}
    assert set(got) == {(1, t) for t in range(12)} | {(2, t) for t in range(8)}
    for (episode, start), (reward, following, term, mult) in got.items():  # as if each episode were stored whole
        total, boot_step, want_term, want_mult = _expected_n_step(episode, start, lengths[episode], n, gamma, terminal[episode])
        assert (reward, following, term, mult) == (pytest.approx(total, rel=1e-5), (episode, boot_step), want_term,
                                                   pytest.approx(want_mult))
    for camera in spec.images:  # the bootstrap images come from the same slot as the state
        np.testing.assert_array_equal(batch.next_obs[camera][:, 0, 0, 0], batch.next_obs["state"][:, 1] % 256)


def test_a_termination_still_stops_the_walk_across_linked_chunks():
    gamma = 0.5
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=64, seed=6)
    first = buffer.add_segment(segment(STATE_SPEC, 1, 0, 3))  # steps 0-2
    buffer.add_segment(segment(STATE_SPEC, 2, 0, 3))  # another actor in between
    ended = buffer.add_segment(segment(STATE_SPEC, 1, 3, 2, terminated=True), after=first)  # steps 3-4, terminated
    # A segment wrongly linked after a termination is never walked into.
    buffer.add_segment(segment(STATE_SPEC, 1, 5, 3), after=ended)
    got = n_step_of(buffer.sample(3000, n_step=5, discount=gamma))
    assert got[(1, 1)] == (pytest.approx(101 + 0.5 * 102 + 0.25 * 103 + 0.125 * 104), (1, 5), 1.0, pytest.approx(0.0625))
    assert got[(1, 4)] == (104.0, (1, 5), 1.0, 0.5)
    assert got[(1, 2)][1:] == ((1, 5), 1.0, 0.125)


def test_a_walk_never_jumps_from_a_slot_overwritten_since_it_was_linked():
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=10, seed=7)
    first = buffer.add_segment(segment(STATE_SPEC, 1, 0, 3))  # slots 0-3: its end is slot 3
    buffer.add_segment(segment(STATE_SPEC, 1, 3, 3), after=first)  # slots 4-7, linked from slot 3
    buffer.add_segment(segment(STATE_SPEC, 2, 0, 5))  # slots 8, 9, 0-3: episode 2 now ends in slot 3
    got = n_step_of(buffer.sample(2000, n_step=3, discount=0.9))
    assert got[(2, 4)] == (204.0, (2, 5), 0.0, pytest.approx(0.9))  # stops at its own end, no jump into episode 1
    assert got[(2, 3)] == (pytest.approx(203 + 0.9 * 204), (2, 5), 0.0, pytest.approx(0.81))
    assert set(got) == {(1, 3), (1, 4), (1, 5)} | {(2, t) for t in range(5)}
    # A link to an end that was overwritten since is refused: episode 2's end does not lead into episode 1.
    buffer.add_segment(segment(STATE_SPEC, 1, 6, 2), after=first)  # slots 4-6
    got = n_step_of(buffer.sample(2000, n_step=3, discount=0.9))
    assert got[(2, 4)] == (204.0, (2, 5), 0.0, pytest.approx(0.9))
    assert set(got) == {(1, 6), (1, 7)} | {(2, t) for t in range(5)}


def test_add_segment_refuses_an_after_that_is_no_segment_end_of_this_buffer():
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=8)
    for after in (SegmentEnd(8, 1), (2, 3), SegmentEnd(-1, 0)):
        with pytest.raises(ValueError, match="after must be a SegmentEnd that add_segment returned"):
            buffer.add_segment(segment(STATE_SPEC, 1, 2, 2), after=after)
    assert len(buffer) == 0


def test_follow_links_only_into_the_content_that_was_linked():
    links = Links(continues=np.array([-1, 3, 3, -1]), continues_serial=np.array([0, 7, 6, 0]),
                  serial=np.array([5, 6, 2, 7]))
    np.testing.assert_array_equal(follow_links(np.array([0, 1, 2, 3]), links), [0, 3, 2, 3])


@pytest.mark.parametrize("capacity", [9, 16, 40])
def test_interleaved_chunks_in_a_wrapping_ring_match_a_reference_model(capacity):
    """Random chunks of three actors: every n-step sample equals a walk over the steps still stored."""
    rng, gamma, n = np.random.default_rng(capacity), 0.9, 3
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=capacity, seed=capacity)
    written: list[tuple[int, int, int]] = []  # (episode, step, segment) of each observation, in write order
    actors = {name: {"episode": i + 1, "step": 0, "length": int(rng.integers(3, 12)), "end": None}
              for i, name in enumerate("abc")}
    terminated, next_episode = set(), 4  # (episode, step) of the terminating steps
    for segment_id in range(60):
        name = "abc"[int(rng.integers(0, 3))]
        actor = actors[name]
        episode, start = actor["episode"], actor["step"]
        steps = min(int(rng.integers(1, 6)), actor["length"] - start)
        final = start + steps == actor["length"]
        ends = bool(final and rng.random() < 0.5)
        terminated |= {(episode, start + steps - 1)} if ends else set()
        end = buffer.add_segment(segment(STATE_SPEC, episode, start, steps, ends), after=actor["end"])
        written += [(episode, t, segment_id) for t in range(start, start + steps + 1)]
        actor.update(step=start + steps, end=None if final else end)
        if final:
            actor.update(episode=next_episode, step=0, length=int(rng.integers(3, 12)))
            next_episode += 1
        alive = written[-capacity:]
        stored = {(e, t) for (e, t, s), (e2, t2, s2) in zip(alive, alive[1:]) if s2 == s and t2 == t + 1}
        got = n_step_of(buffer.sample(256, n_step=n, discount=gamma))
        assert set(got) <= stored
        for (episode, first_step), value in got.items():
            total, k, term = 0.0, 0, 0.0
            while k < n:
                total += gamma**k * step_values(episode, first_step + k)[1]
                k += 1
                if (episode, first_step + k - 1) in terminated:
                    term = 1.0
                    break
                if (episode, first_step + k) not in stored:
                    break
            assert value == (pytest.approx(total, rel=1e-5), (episode, first_step + k), term, pytest.approx(gamma**k))


def test_segments_without_links_are_sampled_exactly_as_separate_episodes():
    via_segments, via_episodes = (ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=32, seed=2) for _ in range(2))
    ends = interleaved_chunks(via_segments, link=False)
    assert ends == [SegmentEnd(4, 5), SegmentEnd(9, 10), SegmentEnd(14, 15), SegmentEnd(19, 20), SegmentEnd(24, 25)]
    for _, episode, start, final in CHUNKS:
        assert via_episodes.add_episode(segment(STATE_SPEC, episode, start, 4, terminated=final)) == 4
    for n_step in (1, 3):
        for _ in range(3):
            expected = via_episodes.sample(500, n_step=n_step, discount=0.9)
            for (key, value), (_, want) in zip(via_segments.sample(500, n_step=n_step, discount=0.9).items(), expected.items()):
                np.testing.assert_array_equal(value, want, err_msg=key)
    got = n_step_of(via_segments.sample(3000, n_step=3, discount=0.9))
    assert got[(1, 2)] == (pytest.approx(102 + 0.9 * 103), (1, 4), 0.0, pytest.approx(0.81))  # stops at the chunk end
    assert got[(1, 3)] == (103.0, (1, 4), 0.0, pytest.approx(0.9))


def test_segment_links_are_not_saved_and_loading_keeps_only_the_refills_own():
    original = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=64, seed=1)
    interleaved_chunks(original)
    original.sample(32, n_step=3, discount=0.9)
    saved = json.loads(json.dumps(original.state_dict()))
    unlinked = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=64, seed=1)
    interleaved_chunks(unlinked, link=False)
    unlinked.sample(32, n_step=3, discount=0.9)
    assert unlinked.state_dict() == saved  # no trace of the links in the saved state
    refilled, relinked = (ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=64, seed=9) for _ in range(2))
    interleaved_chunks(refilled, link=False)
    interleaved_chunks(relinked)  # the learner re-links as it feeds the stored chunks again
    for buffer in (refilled, relinked):
        buffer.load_state_dict(saved)
    assert not np.any(refilled._links.continues >= 0)
    assert n_step_of(refilled.sample(2000, n_step=3, discount=0.9))[(1, 2)][1:] == ((1, 4), 0.0, pytest.approx(0.81))
    batch, expected = relinked.sample(64, n_step=3, discount=0.9), original.sample(64, n_step=3, discount=0.9)
    for (key, value), (_, want) in zip(batch.items(), expected.items()):
        np.testing.assert_array_equal(value, want, err_msg=key)  # the same sequence, walking across the chunks
    assert n_step_of(relinked.sample(2000, n_step=3, discount=0.9))[(1, 2)][1:] == ((1, 5), 0.0, pytest.approx(0.729))
