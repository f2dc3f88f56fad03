"""RewardClassifier: learns a separable image set, saves/loads exactly, checks its inputs."""

import numpy as np
import pytest
import torch

from robot_rl.agents.networks import save_backbone
from robot_rl.reward.dataset import LabelWriter
from robot_rl.reward.model import ClassifierSpec, RewardClassifier, load_classifier, save_classifier
from robot_rl.reward.train import RewardTrainConfig, binary_metrics, choose_threshold, train_classifier

SHAPES = {"front": (16, 16, 3), "wrist": (12, 12, 3)}
TINY = dict(channels=8, layers=2, features=16, hidden=(32,))


def write_patch_labels(directory, episodes=10, frames=8, seed=0):
    """Dark noise; success frames have a bright 5x5 patch somewhere in 'front' ('wrist' is noise)."""
    rng = np.random.default_rng(seed)
    with LabelWriter(directory, "toy", SHAPES, "synthetic", chunk_frames=32) as writer:
        for _ in range(episodes):
            episode = writer.new_episode()
            for step in range(frames):
                images = {cam: rng.integers(0, 90, shape, dtype=np.uint8) for cam, shape in SHAPES.items()}
                label = int(step >= frames - 2)
                if label:
                    r, c = rng.integers(0, 11, size=2)
                    images["front"][r:r + 5, c:c + 5] = 250
                writer.add(images, label, episode, step)


def config(data, out, **kw):
    return RewardTrainConfig(data=data, out=out, **{**dict(epochs=6, batches_per_epoch=8, batch_size=32, drq_pad=1,
                                                          heldout_fraction=0.3, lr=3e-3), **TINY, **kw})


def test_learns_a_separable_set_and_writes_a_confusion_matrix(tmp_path, capsys):
    write_patch_labels(tmp_path / "labels")
    result = train_classifier(config(tmp_path / "labels", tmp_path / "clf.pt"))
    heldout = result.metadata["training"]["heldout"]
    assert heldout["accuracy"] >= 0.95 and heldout["recall"] >= 0.9, heldout
    assert result.metadata["training"]["heldout_class_counts"]["success"] > 0
    assert result.confusion_png == tmp_path / "clf.pt.confusion.png" and result.confusion_png.stat().st_size > 1000
    out = capsys.readouterr().out
    assert "epoch 6/6 | train/loss" in out and "heldout@0.5 acc" in out
    model, metadata = load_classifier(tmp_path / "clf.pt")
    assert metadata["cameras"] == ["front", "wrist"] and 0 < metadata["threshold"] < 1
    assert metadata["image_shapes"]["front"] == [16, 16, 3] and metadata["class_names"] == ["failure", "success"]


def test_split_is_by_episode(tmp_path):
    write_patch_labels(tmp_path / "labels")
    meta = train_classifier(config(tmp_path / "labels", tmp_path / "clf.pt", epochs=1)).metadata["training"]
    assert meta["train_episodes"] + meta["heldout_episodes"] == 10 and meta["heldout_episodes"] == 3
    assert meta["train_frames"] == 8 * meta["train_episodes"]


def test_training_errors_are_clear(tmp_path):
    write_patch_labels(tmp_path / "labels", episodes=2)
    with pytest.raises(ValueError, match=r"cameras \['side'\] are not in the labels"):
        train_classifier(config(tmp_path / "labels", tmp_path / "c.pt", cameras="front,side"))
    with LabelWriter(tmp_path / "one", "toy", SHAPES, "synthetic") as writer:
        writer.add({cam: np.zeros(s, np.uint8) for cam, s in SHAPES.items()}, 0, writer.new_episode(), 0)
    with pytest.raises(ValueError, match="only \\['failure'\\] frames"):
        train_classifier(config(tmp_path / "one", tmp_path / "c.pt"))
    LabelWriter(tmp_path / "empty", "toy", SHAPES, "synthetic").close()
    with pytest.raises(ValueError, match="holds no frames"):
        train_classifier(config(tmp_path / "empty", tmp_path / "c.pt"))
    with pytest.raises(ValueError, match="--threshold"):
        RewardTrainConfig(threshold="high")
    with pytest.raises(ValueError, match="--crop items"):
        RewardTrainConfig(crop=("front=1,2,3",))


def images(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {cam: torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8) for cam, shape in SHAPES.items()}


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    spec = ClassifierSpec(SHAPES, crop={"front": (2, 1, 12, 12)}, resize=(10, 10), **TINY)
    model = RewardClassifier(spec).eval()
    path = save_classifier(tmp_path / "sub" / "clf.pt", model, {"threshold": 0.7, "note": "x"})
    assert not list(path.parent.glob("*.tmp"))
    loaded, metadata = load_classifier(path)
    assert metadata == {"threshold": 0.7, "note": "x"} and loaded.spec == spec and not loaded.training
    with torch.no_grad():
        assert torch.equal(model(images()), loaded(images()))
    torch.load(path, weights_only=True)  # plain tensors and strings only
    with pytest.raises(ValueError, match="JSON-able"):
        save_classifier(tmp_path / "bad.pt", model, {"threshold": float("nan")})
    with pytest.raises(FileNotFoundError, match="train-reward"):
        load_classifier(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robot_rl reward classifier"):
        load_classifier(tmp_path / "other.pt")


def test_frozen_local_backbone_is_stored_and_not_trained(tmp_path):
    write_patch_labels(tmp_path / "labels", episodes=4)
    weights = save_backbone(tmp_path / "backbone.pt", widths=(4, 8), seed=3)
    result = train_classifier(config(tmp_path / "labels", tmp_path / "clf.pt", epochs=1, backbone_weights=weights))
    original = torch.load(weights, weights_only=True)
    assert all(torch.equal(original[k], v) for k, v in result.model.backbone.state_dict().items())
    loaded, _ = load_classifier(tmp_path / "clf.pt")  # self-contained: the backbone file is not needed
    assert loaded.spec.backbone_widths == (4, 8)
    with torch.no_grad():
        assert torch.equal(result.model.eval()(images()), loaded(images()))


def test_input_checks_name_the_mismatch():
    spec = ClassifierSpec({"front": (64, 64, 3)}, crop={"front": (0, 0, 48, 48)}, **TINY)
    with pytest.raises(ValueError, match=r"trained on 'front' 64x64, cropped to \(0, 0, 48, 48\); the env gives 'front' 128x128"):
        spec.check_inputs({"front": (128, 128, 3)})
    with pytest.raises(ValueError, match=r"trained on camera 'front' \(64x64\); the env has no such camera"):
        spec.check_inputs({"wrist": (64, 64, 3)})
    spec.check_inputs({"front": (64, 64, 3), "wrist": (8, 8, 3)})
    with pytest.raises(ValueError, match="does not fit"):
        ClassifierSpec({"front": (64, 64, 3)}, crop={"front": (20, 0, 48, 48)})
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassifierSpec({"front": (64, 64, 3)}, class_names=("success",))


def test_multi_stage_has_one_logit_per_stage():
    model = RewardClassifier(ClassifierSpec(SHAPES, class_names=("reach", "grasp", "lifted"), **TINY)).eval()
    with torch.no_grad():
        logits = model(images())
        probs = model.success_probability(logits)
    assert logits.shape == (3, 3) and torch.allclose(probs, torch.softmax(logits, -1)[:, 2])


def test_metrics_and_threshold_choice():
    truth = np.array([0, 0, 0, 1, 1], bool)
    probs = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    m = binary_metrics(probs, truth, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 2, 0) and m["precision"] == pytest.approx(2 / 3)
    assert 0.6 <= choose_threshold(probs, truth) <= 0.7  # separates perfectly between 0.6 and 0.7
