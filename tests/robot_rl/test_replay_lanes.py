"""Several episodes open at once (the sub-envs of a vector env): ``add_batch`` and lanes.

Every observation names itself (``[episode id, step, 0]``, see test_replay.py), so a sampled
transition whose next observation came from another lane's episode is caught exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_replay import ACTION_DIM, PIXEL_SPEC, STATE_SPEC, _expected_n_step, add_online, make_obs, step_values, transitions

from robot_rl.data.replay import ReplayBuffer


def feed_lanes(buffer: ReplayBuffer, spec, lanes: int, vector_steps: int, seed: int = 0):
    """Drive ``lanes`` parallel episodes of random lengths (2-9 steps, random termination or
    truncation) for ``vector_steps`` batched steps, restarting lanes as their episodes end.

    Returns (lengths, terminal, serials, writes): each episode's length and whether it ended in a
    termination (episodes still open have no entry), each observation's write serial, total writes.
    """
    rng = np.random.default_rng(seed)
    next_id, episode, step = lanes, list(range(lanes)), [0] * lanes
    planned = {e: int(rng.integers(2, 10)) for e in range(lanes)}
    lengths, terminal, serials = {}, {}, {}
    writes = 0
    for lane in range(lanes):
        buffer.start_episode(make_obs(spec, lane, 0), lane)
        writes += 1
        serials[(lane, 0)] = writes
    for _ in range(vector_steps):
        actions, rewards, term, trunc, obs = [], [], [], [], []
        for lane in range(lanes):
            e, t = episode[lane], step[lane]
            action, reward = step_values(e, t)
            last = t + 1 == planned[e]
            ends_in_termination = bool(rng.integers(2))
            actions.append(action), rewards.append(reward), obs.append(make_obs(spec, e, t + 1))
            term.append(last and ends_in_termination), trunc.append(last and not ends_in_termination)
        stacked = {key: np.stack([o[key] for o in obs]) for key in obs[0]}
        buffer.add_batch(np.stack(actions), np.array(rewards), np.array(term), np.array(trunc), stacked)
        for lane in range(lanes):
            writes += 1
            serials[(episode[lane], step[lane] + 1)] = writes
            step[lane] += 1
        for lane in range(lanes):
            if term[lane] or trunc[lane]:
                lengths[episode[lane]], terminal[episode[lane]] = step[lane], term[lane]
                episode[lane], step[lane] = next_id, 0
                planned[next_id] = int(rng.integers(2, 10))
                next_id += 1
                buffer.start_episode(make_obs(spec, episode[lane], 0), lane)
                writes += 1
                serials[(episode[lane], 0)] = writes
    return lengths, terminal, serials, writes


@pytest.mark.parametrize("spec", [STATE_SPEC, PIXEL_SPEC], ids=["state", "pixels"])
def test_interleaved_lanes_pair_every_transition_with_its_own_next_observation(spec):
    buffer = ReplayBuffer(spec, ACTION_DIM, capacity=10_000, seed=1, check_memory=False)
    lengths, _, serials, _ = feed_lanes(buffer, spec, lanes=4, vector_steps=40)
    stored = {(e, t) for (e, t) in serials if (e, t + 1) in serials}
    assert len(buffer) == len(stored) == buffer.transitions_added
    seen = transitions(buffer.sample(20_000))
    assert seen == stored


@pytest.mark.parametrize("capacity", [23, 64])
def test_a_wrapping_ring_keeps_exactly_the_transitions_whose_observations_survive(capacity):
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=capacity, seed=2)
    _, _, serials, writes = feed_lanes(buffer, STATE_SPEC, lanes=3, vector_steps=60)
    alive = {key for key, serial in serials.items() if serial > writes - capacity}
    expected = {(e, t) for (e, t) in alive if (e, t + 1) in alive}
    assert len(buffer) == len(expected)
    assert transitions(buffer.sample(5_000)) == expected


def test_n_step_walks_stay_inside_each_lanes_episode():
    gamma, n = 0.9, 3
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=10_000, seed=3)
    lengths, terminal, _, _ = feed_lanes(buffer, STATE_SPEC, lanes=5, vector_steps=30)
    batch = buffer.sample(4_000, n_step=n, discount=gamma)
    checked = 0
    for i in range(len(batch)):
        episode, start = int(batch.obs["state"][i, 0]), int(batch.obs["state"][i, 1])
        if episode not in lengths:
            continue  # still open: its walk may stop at the latest step, checked by the 1-step test
        total, boot, term, mult = _expected_n_step(episode, start, lengths[episode], n, gamma, terminal[episode])
        assert tuple(batch.next_obs["state"][i, :2]) == (episode, boot)
        assert batch.reward[i] == pytest.approx(total, rel=1e-5)
        assert batch.terminated[i] == term and batch.discount[i] == pytest.approx(mult)
        checked += 1
    assert checked > 1_000


def test_one_lane_through_add_batch_is_the_single_episode_buffer():
    one, batched = (ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=40, seed=5) for _ in range(2))
    for episode, steps in ((1, 7), (2, 12), (3, 30)):
        add_online(one, STATE_SPEC, episode, steps, terminated=episode != 2)
        batched.start_episode(make_obs(STATE_SPEC, episode, 0))
        for t in range(steps):
            action, reward = step_values(episode, t)
            last = t == steps - 1
            batched.add_batch(action[None], [reward], [last and episode != 2], [last and episode == 2],
                              {"state": make_obs(STATE_SPEC, episode, t + 1)["state"][None]})
    for n in (1, 3):
        a, b = one.sample(64, n_step=n, discount=0.9), batched.sample(64, n_step=n, discount=0.9)
        b_arrays = dict(b.items())
        for key, value in a.items():
            np.testing.assert_array_equal(value, b_arrays[key])


def test_bad_batches_are_refused_clearly():
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=100)
    state = {"state": np.zeros((2, 3), np.float32)}
    actions, flags = np.zeros((2, ACTION_DIM), np.float32), np.zeros(2, bool)
    with pytest.raises(ValueError, match=r"lanes \[0, 1\] have no episode in progress"):
        buffer.add_batch(actions, [0.0, 0.0], flags, flags, state)
    buffer.start_episode(make_obs(STATE_SPEC, 0, 0), lane=0)
    buffer.start_episode(make_obs(STATE_SPEC, 1, 0), lane=1)
    with pytest.raises(ValueError, match=r"actions must be finite floats of shape \(2, 2\)"):
        buffer.add_batch(np.zeros((3, ACTION_DIM)), [0.0, 0.0], flags, flags, state)
    with pytest.raises(ValueError, match=r"next_obs\['state'\] must be float32 of shape \(2, 3\)"):
        buffer.add_batch(actions, [0.0, 0.0], flags, flags, {"state": np.zeros((3,), np.float32)})
    with pytest.raises(ValueError, match="rewards must be N >= 1 finite numbers"):
        buffer.add_batch(actions, [0.0, np.nan], flags, flags, state)
    with pytest.raises(ValueError, match=r"terminated must be 2 flags"):
        buffer.add_batch(actions, [0.0, 0.0], [True], flags, state)
    assert len(buffer) == 0  # nothing half-written


def test_a_ring_too_small_for_the_lanes_is_refused():
    buffer = ReplayBuffer(STATE_SPEC, ACTION_DIM, capacity=3)
    for lane in range(2):
        buffer.start_episode(make_obs(STATE_SPEC, lane, 0), lane)
    obs = {"state": np.stack([make_obs(STATE_SPEC, lane, 1)["state"] for lane in range(2)])}
    with pytest.raises(ValueError, match="capacity 3 is too small for 2 parallel episodes"):
        buffer.add_batch(np.zeros((2, ACTION_DIM), np.float32), [0.0, 0.0], [False, False], [False, False], obs)
