"""The frozen keypoint encoder and its file: shapes, what the features mean, save/load, clear errors."""

import numpy as np
import pytest
import torch

from robot_rl.encoders.keypoints import KeypointEncoder, load_encoder, read_encoder_file, save_encoder


def frames(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def test_features_are_keypoints_in_the_unit_square_then_channel_means():
    encoder = KeypointEncoder(widths=(4, 6), strides=(2, 1))
    features = encoder(frames(5))
    assert encoder.out_dim == 18 and features.shape == (5, 18)
    assert features[:, :12].abs().max() <= 1.0  # x and y of 6 keypoints
    maps = encoder.feature_maps(frames(5))
    torch.testing.assert_close(features[:, 12:], maps.mean(dim=(2, 3)))


def test_a_keypoint_follows_a_bright_spot_across_the_image():
    encoder = KeypointEncoder(widths=(1,), strides=(1,))
    with torch.no_grad():  # one conv that responds to brightness: its softmax peaks on the spot
        encoder.convs[0].weight.fill_(0.0)
        encoder.convs[0].weight[0, :, 1, 1] = 20.0
        encoder.convs[0].bias.fill_(0.0)
    images = torch.zeros((2, 16, 16, 3), dtype=torch.uint8)
    images[0, 8, 2] = 255  # left
    images[1, 8, 13] = 255  # right
    with torch.no_grad():
        features = encoder(images)
    x, y = features[:, 0], features[:, 1]
    assert x[0] < -0.5 < 0.5 < x[1] and abs(float(y[0] - y[1])) < 1e-3


def test_saved_files_load_frozen_with_the_same_outputs(tmp_path):
    encoder = KeypointEncoder(widths=(4, 6), strides=(2, 2))
    path = save_encoder(tmp_path / "sub" / "enc.pt", encoder, {"frames": 12})
    loaded, metadata = read_encoder_file(path)
    assert metadata == {"frames": 12} and not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(loaded(frames(3)), encoder(frames(3)))
    assert load_encoder(path) is load_encoder(path)  # one copy per process for the buffers
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_missing_or_foreign_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="robot-rl pretrain-encoder"):
        load_encoder(tmp_path / "none.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robot_rl keypoint encoder file"):
        read_encoder_file(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="as many widths as strides"):
        KeypointEncoder(widths=(4, 4), strides=(2,))
