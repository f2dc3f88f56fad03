"""Pre-training the frozen encoder: it learns where things are from frames alone, and the command
reads the project's episode files and label directories and writes a file the trainer loads."""

import numpy as np
import pytest
import torch

import gymnasium as gym
from robot_rl.cli import main
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.episodes import EpisodeRecorder, write_episode
from robot_rl.data.schema import ObsSpec
from robot_rl.encoders.keypoints import read_encoder_file
from robot_rl.encoders.pretrain import PretrainEncoder, load_frames, pretrain
from robot_rl.reward.dataset import LabelWriter

SIZE = 24


def square_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark frames with one bright 6x6 square at a random place; returns the frames and the square centres."""
    rng = np.random.default_rng(seed)
    frames = np.full((n, SIZE, SIZE, 3), 30, np.uint8)
    corners = rng.integers(0, SIZE - 6, (n, 2))
    for frame, (row, col) in zip(frames, corners):
        frame[row:row + 6, col:col + 6] = (250, 200, 40)
    return frames, corners + 3.0


def write_episodes(directory, frames: np.ndarray) -> None:
    spec = ObsSpec(1, {"front": (SIZE, SIZE, 3)}, ("x",))
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    recorder = EpisodeRecorder(episode_metadata("squares", "pixels", spec, action_space, 10.0, "expert"))
    recorder.start({"state": np.zeros(1, np.float32), "front": frames[0]})
    for t, frame in enumerate(frames[1:], start=1):
        recorder.add(np.zeros(1, np.float32), 0.0, t == len(frames) - 1, False, {"state": np.zeros(1, np.float32), "front": frame})
    write_episode(recorder.finish(), directory)


@pytest.fixture
def one_thread():
    """The learning check runs on one torch thread: on a loaded 2-core machine two threads are far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_autoencoder_learns_keypoints_that_locate_the_moving_object(one_thread):
    frames, centres = square_frames(400)
    cfg = PretrainEncoder(episodes=("unused",), updates=200, batch_size=32, widths=(8, 8), strides=(2, 1), recon_size=12, pad=1)
    encoder, report = pretrain(frames, cfg)
    assert report["last_loss"] < 0.5 * report["first_loss"]
    assert report["heldout_variance_explained"] > 0.8  # the mean frame scores 0
    test_frames, test_centres = square_frames(200, seed=1)
    with torch.no_grad():
        features = encoder(torch.as_tensor(test_frames)).numpy()
    keypoints_x = features[:, :8]
    best = max(abs(np.corrcoef(keypoints_x[:, i], test_centres[:, 1])[0, 1]) for i in range(8))
    assert best > 0.95  # some keypoint's x follows the square's column on frames never trained on


def test_the_command_reads_episodes_and_labels_and_writes_a_loadable_encoder(tmp_path, capsys):
    frames, _ = square_frames(30)
    write_episodes(tmp_path / "episodes", frames[:12])
    with LabelWriter(tmp_path / "labels", "squares", {"front": (SIZE, SIZE, 3)}, "test") as writer:
        episode = writer.new_episode()
        for step, frame in enumerate(frames[12:]):
            writer.add({"front": frame}, 0, episode, step)
    assert len(load_frames((tmp_path / "episodes",), (tmp_path / "labels",))) == 30
    out = tmp_path / "enc.pt"
    code = main(["pretrain-encoder", "--episodes", str(tmp_path / "episodes"), "--labels", str(tmp_path / "labels"),
                 "--out", str(out), "--updates", "4", "--batch-size", "4", "--widths", "4", "4", "--strides", "2", "1"])
    assert code == 0 and "30 frames of 24x24" in capsys.readouterr().out
    encoder, metadata = read_encoder_file(out)
    assert encoder.widths == (4, 4) and metadata["frames"] == 30 and metadata["updates"] == 4


def test_no_frames_or_no_sources_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="needs frames"):
        PretrainEncoder()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no camera frames"):
        load_frames((tmp_path / "empty",))
