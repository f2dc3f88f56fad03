"""The episode file format: round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import json
import logging
import os
import pickle

import numpy as np
import pytest

from robot_rl.data import (
    FORMAT_VERSION,
    Episode,
    EpisodeFileError,
    EpisodeRecorder,
    read_episode,
    read_episodes,
    write_episode,
)
from robot_rl.data import episodes as episodes_module

STATE_DIM, ACTION_DIM, HEIGHT, WIDTH = 5, 3, 8, 6


def make_metadata(task: str = "pick_cube", cameras: tuple[str, ...] = ()) -> dict:
    observation_spec = {"state": {"shape": [STATE_DIM], "dtype": "float32", "parts": {"tcp_pos_m": [0, 3]}}}
    for camera in cameras:
        observation_spec[camera] = {"shape": [HEIGHT, WIDTH, 3], "dtype": "uint8"}
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "obs_mode": "pixels" if cameras else "state",
        "control_hz": 10.0,
        "robot_rl_version": "0.1.0",
        "observation_spec": observation_spec,
        "action_spec": {"shape": [ACTION_DIM], "low": [-1.0] * ACTION_DIM, "high": [1.0] * ACTION_DIM},
    }


def make_episode(steps: int = 4, task: str = "pick_cube", cameras: tuple[str, ...] = (), seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    observations = {"state": rng.standard_normal((steps + 1, STATE_DIM)).astype(np.float32)}
    for camera in cameras:
        observations[camera] = rng.integers(0, 256, (steps + 1, HEIGHT, WIDTH, 3), dtype=np.uint8)
    terminated = np.zeros(steps, dtype=bool)
    terminated[-1] = True
    return Episode(
        observations=observations,
        actions=rng.uniform(-1, 1, (steps, ACTION_DIM)).astype(np.float32),
        rewards=np.arange(steps, dtype=np.float32),
        terminated=terminated,
        truncated=np.zeros(steps, dtype=bool),
        intervention=np.array([i % 2 == 0 for i in range(steps)]),
        metadata={**make_metadata(task, cameras), "seed": seed, "source": "test"},
    )


def assert_same_episode(actual: Episode, expected: Episode) -> None:
    assert actual.observations.keys() == expected.observations.keys()
    for key, value in expected.observations.items():
        assert actual.observations[key].dtype == value.dtype
        np.testing.assert_array_equal(actual.observations[key], value)
    for field in ("actions", "rewards", "terminated", "truncated", "intervention"):
        assert getattr(actual, field).dtype == getattr(expected, field).dtype, field
        np.testing.assert_array_equal(getattr(actual, field), getattr(expected, field))
    assert actual.metadata == expected.metadata


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cameras", [(), ("front", "wrist")])
def test_round_trip_is_bit_identical(tmp_path, cameras, compress):
    episode = make_episode(cameras=cameras)
    path = write_episode(episode, tmp_path, compress=compress)
    loaded = read_episode(path, task="pick_cube")
    assert_same_episode(loaded, episode)
    assert len(loaded) == 4


def test_file_reads_with_plain_numpy_and_json(tmp_path):
    path = write_episode(make_episode(cameras=("front",)), tmp_path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(
            ["obs/state", "obs/front", "action", "reward", "terminated", "truncated", "intervention", "metadata"]
        )
        assert data["obs/front"].shape == (5, HEIGHT, WIDTH, 3) and data["obs/front"].dtype == np.uint8
        assert data["action"].dtype == np.float32 and data["terminated"].dtype == bool
        metadata = json.loads(data["metadata"].item())
    assert metadata["task"] == "pick_cube"
    assert metadata["observation_spec"]["state"]["parts"] == {"tcp_pos_m": [0, 3]}


def test_recorder_stacks_shapes_and_copies_inputs():
    recorder = EpisodeRecorder(make_metadata(cameras=("front",)))
    obs = {"state": np.zeros(STATE_DIM, np.float64), "front": np.zeros((HEIGHT, WIDTH, 3), np.uint8)}
    action = np.full(ACTION_DIM, 0.5)
    recorder.start(obs)
    for step in range(3):
        obs["state"][:] = step + 1  # the env reuses its buffers
        obs["front"][:] = step + 1
        recorder.add(action, 1.0, step == 2, False, obs, intervention=step == 1)
        action[:] = -0.5
    assert len(recorder) == 3
    obs["state"][:] = 99
    obs["front"][:] = 99
    episode = recorder.finish(success=True)

    assert episode.observations["state"].shape == (4, STATE_DIM)
    assert episode.observations["state"].dtype == np.float32
    np.testing.assert_array_equal(episode.observations["state"][:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(episode.observations["front"][:, 0, 0, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(episode.actions[:, 0], [0.5, -0.5, -0.5])
    assert episode.actions.shape == (3, ACTION_DIM) and episode.actions.dtype == np.float32
    np.testing.assert_array_equal(episode.terminated, [False, False, True])
    np.testing.assert_array_equal(episode.intervention, [False, True, False])
    assert episode.metadata["success"] is True and episode.metadata["format_version"] == FORMAT_VERSION
    assert episode.success


def test_recorder_takes_flat_state_and_restarts_cleanly():
    metadata = make_metadata()
    del metadata["format_version"], metadata["robot_rl_version"]  # filled in by the recorder
    recorder = EpisodeRecorder(metadata)
    for length in (2, 1):
        recorder.start(np.zeros(STATE_DIM, np.float32))
        for step in range(length):
            recorder.add(np.zeros(ACTION_DIM), 0.0, False, step == length - 1, np.ones(STATE_DIM, np.float32))
        episode = recorder.finish()
        assert len(episode) == length
        assert list(episode.observations) == ["state"]
        assert not episode.success  # truncated, not terminated with reward
    assert episode.metadata["format_version"] == FORMAT_VERSION


def test_recorder_refuses_steps_after_the_end_and_bad_metadata():
    recorder = EpisodeRecorder(make_metadata())
    recorder.start(np.zeros(STATE_DIM))
    recorder.add(np.zeros(ACTION_DIM), 1.0, True, False, np.zeros(STATE_DIM))
    with pytest.raises(RuntimeError, match="already ended"):
        recorder.add(np.zeros(ACTION_DIM), 1.0, False, False, np.zeros(STATE_DIM))
    with pytest.raises(ValueError, match="missing required keys.*task"):
        EpisodeRecorder({k: v for k, v in make_metadata().items() if k != "task"})


def test_truncated_file_is_reported_and_other_files_still_load(tmp_path, caplog):
    write_episode(make_episode(seed=0), tmp_path)
    bad = write_episode(make_episode(seed=1, cameras=()), tmp_path)
    write_episode(make_episode(seed=2), tmp_path)
    content = bad.read_bytes()
    bad.write_bytes(content[: len(content) // 2])

    with pytest.raises(EpisodeFileError, match=str(bad)) as caught:
        read_episode(bad)
    assert caught.value.path == bad

    with caplog.at_level(logging.WARNING, logger=episodes_module.__name__):
        episodes, errors = read_episodes(tmp_path)
    assert [e.metadata["seed"] for e in episodes] == [0, 2]
    assert [e.path for e in errors] == [bad]
    assert str(bad) in caplog.text
    with pytest.raises(EpisodeFileError, match=str(bad)):
        read_episodes(tmp_path, strict=True)


def test_garbage_and_missing_keys_are_file_errors(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(EpisodeFileError, match="garbage.npz"):
        read_episode(garbage)

    good = make_episode()
    arrays = episodes_module._episode_arrays(good, json.dumps(good.metadata))
    del arrays["reward"]
    partial = tmp_path / "partial.npz"
    np.savez(partial, **arrays)
    with pytest.raises(EpisodeFileError, match="partial.npz.*missing keys.*reward"):
        read_episode(partial)


def test_newer_format_version_is_refused(tmp_path):
    episode = make_episode()
    newer = {**episode.metadata, "format_version": FORMAT_VERSION + 1}
    path = tmp_path / "future.npz"
    np.savez(path, **episodes_module._episode_arrays(episode, json.dumps(newer)))
    with pytest.raises(EpisodeFileError, match=f"future.npz has format_version {FORMAT_VERSION + 1}"):
        read_episode(path)


def test_other_task_names_file_and_both_tasks(tmp_path):
    path = write_episode(make_episode(task="peg_insert"), tmp_path)
    with pytest.raises(EpisodeFileError) as caught:
        read_episode(path, task="pick_cube")
    assert str(caught.value) == f"file {path} holds task 'peg_insert', expected 'pick_cube'"
    episodes, errors = read_episodes(tmp_path, task="pick_cube")
    assert episodes == [] and len(errors) == 1


def test_leftover_tmp_and_other_files_are_ignored(tmp_path):
    write_episode(make_episode(), tmp_path)
    (tmp_path / ".episode_000001.npz.abc123.tmp").write_bytes(b"half a file")
    (tmp_path / "notes.txt").write_text("hello")
    episodes, errors = read_episodes(tmp_path)
    assert len(episodes) == 1 and errors == []
    assert write_episode(make_episode(), tmp_path).name == "episode_000001.npz"


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_episodes(tmp_path / "nowhere")


def _nan_action(episode):
    episode.actions[1, 0] = np.nan


def _terminated_mid(episode):
    episode.terminated[1] = True


def _truncated_mid(episode):
    episode.truncated[0] = True


def _wrong_state_shape(episode):
    episode.observations["state"] = episode.observations["state"][:, :2]


def _short_observations(episode):
    episode.observations["state"] = episode.observations["state"][:-1]


def _float64_actions(episode):
    episode.actions = episode.actions.astype(np.float64)


def _image_as_float(episode):
    episode.observations["front"] = episode.observations["front"].astype(np.float32)


def _missing_metadata(episode):
    del episode.metadata["control_hz"]


def _reward_length(episode):
    episode.rewards = episode.rewards[:-1]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_nan_action, "actions must be finite"),
        (_terminated_mid, "terminated is True at step 1"),
        (_truncated_mid, "truncated is True at step 0"),
        (_wrong_state_shape, r"observation 'state' must have shape \(5, 5\)"),
        (_short_observations, r"observation 'state' must have shape \(5, 5\)"),
        (_float64_actions, "actions must have dtype float32"),
        (_image_as_float, "observation 'front' must have dtype uint8"),
        (_missing_metadata, "missing required keys.*control_hz"),
        (_reward_length, r"rewards must have shape \(4,\)"),
    ],
)
def test_invalid_episodes_raise_value_error(tmp_path, corrupt, message):
    episode = make_episode(cameras=("front",))
    corrupt(episode)
    with pytest.raises(ValueError, match=message):
        episode.validate()
    with pytest.raises(ValueError, match=message):
        write_episode(episode, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_default_names_increment_past_the_largest_index(tmp_path):
    directory = tmp_path / "new" / "dir"
    names = [write_episode(make_episode(), directory).name for _ in range(2)]
    assert names == ["episode_000000.npz", "episode_000001.npz"]
    write_episode(make_episode(), directory, name="episode_000041.npz")
    assert write_episode(make_episode(), directory).name == "episode_000042.npz"
    assert write_episode(make_episode(), directory, name="demo_a.npz").name == "demo_a.npz"
    with pytest.raises(ValueError, match="bare"):
        write_episode(make_episode(), directory, name="../escape.npz")


def test_refuses_to_overwrite(tmp_path):
    path = write_episode(make_episode(seed=0), tmp_path, name="demo.npz")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="demo.npz"):
        write_episode(make_episode(seed=1), tmp_path, name="demo.npz")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo.npz"]


def test_failed_write_leaves_no_temp_file_and_keeps_earlier_files(tmp_path, monkeypatch):
    first = write_episode(make_episode(seed=0), tmp_path)
    before = first.read_bytes()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(episodes_module.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_episode(make_episode(seed=1), tmp_path)
    monkeypatch.undo()

    unserializable = make_episode(seed=2)
    unserializable.metadata["source"] = object()
    with pytest.raises(ValueError, match="JSON serializable"):
        write_episode(unserializable, tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    assert first.read_bytes() == before


def test_numpy_metadata_values_are_stored_as_plain_json(tmp_path):
    episode = make_episode()
    episode.metadata.update(success=np.bool_(True), seed=np.int64(7), goal_m=np.array([0.1, 0.2]))
    loaded = read_episode(write_episode(episode, tmp_path))
    assert loaded.metadata["success"] is True and loaded.metadata["seed"] == 7
    assert loaded.metadata["goal_m"] == [0.1, 0.2]


def test_success_prefers_metadata_then_rewarded_termination():
    episode = make_episode()
    assert episode.success  # terminated with reward 3 > 0
    episode.rewards[-1] = 0.0
    assert not episode.success
    episode.metadata["success"] = True
    assert episode.success


def test_file_error_survives_pickling(tmp_path):
    error = EpisodeFileError(tmp_path / "x.npz", "is broken")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.path == error.path and str(copy) == str(error)


def test_written_file_honours_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_episode(make_episode(), tmp_path)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
