"""The feature-cache replay: frames encoded once at insertion, one cached shift picked per sampled row.

The frame encoder here is a numpy implementation of the ``FrameEncoder`` protocol whose features
say which frame (its pixel value) and which shifted copy they came from, so every sampled row can
be traced back to its slot.
"""

import numpy as np
import pytest

from robot_rl.data.episodes import Episode
from robot_rl.data.feature_replay import FeatureReplayBuffer
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.schema import ObsSpec

SPEC = ObsSpec(2, {"front": (8, 8, 3), "wrist": (8, 8, 3)})
SHIFTS = 3


class FrameIdEncoder:
    """Features ``[frame value, shift index]``: frame value is the (uniform) pixel value of the frame."""

    num_shifts, feature_dim = SHIFTS, 2

    def __init__(self):
        self.frames_encoded = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.frames_encoded += len(images)
        value = images[:, 0, 0, 0].astype(np.float32)
        out = np.empty((len(images), SHIFTS, 2), np.float32)
        out[:, :, 0] = value[:, None]
        out[:, :, 1] = np.arange(SHIFTS)
        return out


def obs(t: int) -> dict[str, np.ndarray]:
    frame = np.full((8, 8, 3), t, np.uint8)
    return {"state": np.array([t, -t], np.float32), "front": frame, "wrist": frame.copy()}


def episode(steps: int, start: int = 0) -> Episode:
    frames = [obs(start + t) for t in range(steps + 1)]
    return Episode(observations={k: np.stack([f[k] for f in frames]) for k in frames[0]},
                   actions=np.zeros((steps, 1), np.float32), rewards=np.arange(steps, dtype=np.float32),
                   terminated=np.eye(1, steps, steps - 1, dtype=bool)[0], truncated=np.zeros(steps, bool),
                   intervention=np.zeros(steps, bool), metadata={})


def buffer(capacity: int = 64, **kwargs) -> FeatureReplayBuffer:
    return FeatureReplayBuffer(SPEC, 1, capacity, FrameIdEncoder(), check_memory=False, **kwargs)


def check_rows_follow_their_slots(batch) -> None:
    """Every row's cached features belong to its own frame: obs t -> next_obs t+1 (the episodes here)."""
    for key in ("front", "wrist"):
        assert batch.obs[key].dtype == np.float32 and batch.obs[key].shape == (len(batch), 2)
        np.testing.assert_array_equal(batch.obs[key][:, 0], batch.obs["state"][:, 0])
        np.testing.assert_array_equal(batch.next_obs[key][:, 0], batch.next_obs["state"][:, 0])
    np.testing.assert_array_equal(batch.next_obs["state"][:, 0], batch.obs["state"][:, 0] + 1)


def test_online_steps_are_encoded_once_and_sampled_with_their_successors():
    replay = buffer()
    replay.start_episode(obs(0))
    for t in range(1, 20):
        replay.add(np.zeros(1, np.float32), 0.0, False, False, obs(t))
    assert len(replay) == 19 and replay._encode.frames_encoded == 2 * 20  # two cameras, each frame once
    check_rows_follow_their_slots(replay.sample(500))


def test_sampling_picks_every_cached_shift_independently_for_obs_and_next_obs():
    replay = buffer()
    replay.add_episode(episode(30))
    batch = replay.sample(3000)
    shifts_obs, shifts_next = batch.obs["front"][:, 1], batch.next_obs["front"][:, 1]
    counts = np.bincount(shifts_obs.astype(int), minlength=SHIFTS)
    assert counts.min() > 3000 / SHIFTS * 0.8  # uniform over the K copies
    assert np.mean(shifts_obs == shifts_next) < 0.5  # drawn independently (1/K if so)
    assert np.mean(batch.obs["front"][:, 1] == batch.obs["wrist"][:, 1]) < 0.5  # per camera too


def test_batches_of_lanes_episodes_and_n_step_keep_the_transition_bookkeeping():
    replay = buffer()
    for lane in range(2):
        replay.start_episode(obs(100 * lane), lane)
    for t in range(1, 6):
        next_obs = {k: np.stack([obs(t)[k], obs(100 + t)[k]]) for k in obs(0)}
        replay.add_batch(np.zeros((2, 1), np.float32), np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool), next_obs)
    replay.add_episode(episode(6, start=50))
    assert len(replay) == 2 * 5 + 6
    check_rows_follow_their_slots(replay.sample(400))
    n_step = replay.sample(400, n_step=3, discount=0.9)
    assert n_step.discount is not None
    for key in ("front", "wrist"):  # the n-step successor's features are its own frame's
        np.testing.assert_array_equal(n_step.next_obs[key][:, 0], n_step.next_obs["state"][:, 0])


def test_an_episode_longer_than_the_ring_encodes_only_the_frames_it_keeps():
    replay = buffer(capacity=10)
    added = replay.add_episode(episode(25))
    assert added == 9 and replay._encode.frames_encoded == 2 * 10
    check_rows_follow_their_slots(replay.sample(200))
    assert replay.sample(200).obs["state"][:, 0].min() >= 16  # only the last 9 transitions


def test_memory_budget_names_the_feature_cache_bytes_per_transition(capsys):
    replay = FeatureReplayBuffer(SPEC, 1, 1000, FrameIdEncoder(), name="pix")
    line = capsys.readouterr().out.strip()
    cache = 2 * SHIFTS * 2 * 2  # cameras x shifts x features x float16
    assert f"feature cache 2 x {SHIFTS} shifts x 2 float16 = {cache} bytes per transition" in line
    assert replay.cache_bytes_per_transition() == cache
    assert replay.nbytes == replay.planned_nbytes() < ReplayBuffer.bytes_needed(SPEC, 1, 1000)
    assert f"{replay.planned_nbytes() // 1000:,} bytes per transition (available" in line


def test_bad_input_is_refused_before_anything_is_encoded():
    replay = buffer()
    with pytest.raises(ValueError, match=r"obs\['front'\] must be uint8 of shape \(8, 8, 3\)"):
        replay.start_episode({**obs(0), "front": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match="no episode in progress"):
        replay.add(np.zeros(1, np.float32), 0.0, False, False, obs(1))
    with pytest.raises(ValueError, match="rewards must be"):
        replay.add_batch(np.zeros((1, 1)), [[0.0]], np.zeros(1, bool), np.zeros(1, bool), obs(1))
    assert replay._encode.frames_encoded == 0
    replay.add_episode(episode(3))
    with pytest.raises(ValueError, match="out= .* does not apply to a feature cache"):
        replay.sample(4, out=replay.sample(4))
    with pytest.raises(ValueError, match="needs cameras"):
        FeatureReplayBuffer(ObsSpec(3), 1, 10, FrameIdEncoder(), check_memory=False)


def test_an_encoder_returning_the_wrong_shape_is_named():
    class Wrong(FrameIdEncoder):
        def __call__(self, images):
            return super().__call__(images)[:, :1]

    replay = FeatureReplayBuffer(SPEC, 1, 10, Wrong(), check_memory=False)
    with pytest.raises(ValueError, match=r"frame encoder returned \(1, 1, 2\), expected \(1, 3, 2\)"):
        replay.start_episode(obs(0))
