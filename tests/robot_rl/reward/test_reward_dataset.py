"""Label directories: round trip, appending, errors, and labels from recorded episodes."""

import json

import numpy as np
import pytest

from robot_rl.data import Episode
from robot_rl.reward.dataset import LabelWriter, collect_from_episodes, read_labels

SHAPES = {"front": (8, 8, 3), "wrist": (6, 6, 3)}


def frame(value):
    return {cam: np.full(shape, value, np.uint8) for cam, shape in SHAPES.items()}


def write_frames(directory, labels_per_episode, chunk_frames=3):
    with LabelWriter(directory, "toy", SHAPES, "test", chunk_frames=chunk_frames) as writer:
        for labels in labels_per_episode:
            episode = writer.new_episode()
            for step, label in enumerate(labels):
                writer.add(frame(10 * episode + step), label, episode, step)
    return writer


def test_round_trip_is_numpy_readable(tmp_path):
    write_frames(tmp_path, [[0, 0, 1], [0, 1, 1, 0]])
    chunks = sorted(tmp_path.glob("chunk_*.npz"))
    assert [c.name for c in chunks] == ["chunk_000000.npz", "chunk_000001.npz", "chunk_000002.npz"]
    with np.load(chunks[0], allow_pickle=False) as raw:
        assert set(raw.files) == {"front", "wrist", "label", "episode", "step"}
        assert raw["front"].shape == (3, 8, 8, 3) and raw["label"].dtype == np.uint8
    meta = json.loads((tmp_path / "labels.json").read_text())
    assert meta["frames"] == 7 and meta["class_counts"] == [4, 3] and meta["episodes"] == 2
    data = read_labels(tmp_path)
    assert data.labels.tolist() == [0, 0, 1, 0, 1, 1, 0]
    assert data.episodes.tolist() == [0, 0, 0, 1, 1, 1, 1] and data.steps.tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert data.images["wrist"][4, 0, 0, 0] == 11 and data.class_counts() == {"failure": 4, "success": 3}
    front_only = read_labels(tmp_path, cameras=["front"])
    assert list(front_only.images) == ["front"] and front_only.metadata["cameras"] == ["front"]


def test_appending_continues_episode_ids_and_checks_shapes(tmp_path):
    write_frames(tmp_path, [[0, 1]])
    write_frames(tmp_path, [[1, 0]])
    data = read_labels(tmp_path)
    assert data.episodes.tolist() == [0, 0, 1, 1] and len(data) == 4
    with pytest.raises(ValueError, match="image_shapes"):
        LabelWriter(tmp_path, "toy", {"front": (8, 8, 3), "wrist": (7, 7, 3)}, "test")


def test_writer_rejects_bad_frames(tmp_path):
    writer = LabelWriter(tmp_path, "toy", SHAPES, "test")
    with pytest.raises(ValueError, match="camera 'front': expected uint8"):
        writer.add({"front": np.zeros((4, 4, 3), np.uint8), "wrist": np.zeros((6, 6, 3), np.uint8)}, 0, 0, 0)
    with pytest.raises(ValueError, match="no camera 'wrist'"):
        writer.add({"front": np.zeros((8, 8, 3), np.uint8)}, 0, 0, 0)
    with pytest.raises(ValueError, match="class index"):
        writer.add(frame(0), 2, 0, 0)


def test_read_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_labels(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no labels.json"):
        read_labels(tmp_path)
    LabelWriter(tmp_path, "toy", SHAPES, "test").close()
    with pytest.raises(ValueError, match="holds no frames"):
        read_labels(tmp_path)
    with pytest.raises(ValueError, match=r"cameras \['side'\] are not in the labels.*has cameras \['front', 'wrist'\]"):
        read_labels(tmp_path, cameras=["front", "side"])
    (tmp_path / "chunk_000000.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        read_labels(tmp_path)


def toy_episode(steps, success, rewards=None):
    obs = {cam: np.arange(steps + 1, dtype=np.uint8)[:, None, None, None] * np.ones(shape, np.uint8) for cam, shape in SHAPES.items()}
    obs["state"] = np.zeros((steps + 1, 2), np.float32)
    rewards = np.zeros(steps, np.float32) if rewards is None else np.asarray(rewards, np.float32)
    ended = np.zeros(steps, bool)
    ended[-1] = True
    return Episode(obs, np.zeros((steps, 2), np.float32), rewards, ended & success, ended & ~success,
                   np.zeros(steps, bool), {"success": success, "seed": 0})


def test_labels_from_episodes(tmp_path):
    episodes = [toy_episode(3, True), toy_episode(2, False), toy_episode(3, True)]
    with LabelWriter(tmp_path / "final", "toy", SHAPES, "episodes") as writer:
        summary = collect_from_episodes(episodes, writer, "final", max_positives=1)
    data = read_labels(tmp_path / "final")
    # The last frame of a successful episode is success; the second one is over max_positives.
    assert data.labels.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert summary.positives == 1 and summary.dropped_positives == 1 and summary.frames == 10
    assert data.images["front"][3, 0, 0, 0] == 3
    with LabelWriter(tmp_path / "reward", "toy", SHAPES, "episodes") as writer:
        collect_from_episodes([toy_episode(3, True, rewards=[0, 1, 1])], writer, "reward")
    assert read_labels(tmp_path / "reward").labels.tolist() == [0, 0, 1, 1]
    with LabelWriter(tmp_path / "bad", "toy", {"side": (8, 8, 3)}, "episodes") as writer:
        with pytest.raises(ValueError, match=r"no camera \['side'\]"):
            collect_from_episodes(episodes, writer)
