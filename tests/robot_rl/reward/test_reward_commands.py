"""record-labels and train-reward smoke tests (seconds each)."""

import os
import subprocess
import sys

import numpy as np
import pathlib

import pytest

import robot_rl
from robot_rl.envs import EnvConfig
from robot_rl.human.recording import expert_policy, record
from robot_rl.reward.commands import RecordLabels, TrainReward
from robot_rl.reward.dataset import read_labels
from robot_rl.reward.model import load_classifier

SIZE = ("image_height=16", "image_width=16")


def run_command(name, *args):
    """The command's tyro-generated CLI in a subprocess (cli.py registers these same classes)."""
    code = (f"import sys, tyro; from robot_rl.reward.commands import {name}; "
            f"sys.exit(tyro.cli({name}, args=sys.argv[1:]).run())")
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)


def test_record_labels_from_the_task_then_train(tmp_path):
    labels = tmp_path / "labels"
    result = run_command("RecordLabels", "--out", str(labels), "--num-episodes", "2", "--cameras", "front,wrist",
                         "--env-kwargs", *SIZE, "--hold-steps", "2", "--max-positives", "4", "--random-fraction", "0")
    assert result.returncode == 0, result.stderr
    assert "label episode 2/2" in result.stdout
    data = read_labels(labels)
    assert data.images["front"].shape[1:] == (16, 16, 3) and sorted(np.unique(data.episodes)) == [0, 1]
    counts = data.class_counts()
    assert 0 < counts["success"] <= 4 and counts["failure"] > 10
    assert data.metadata["env"] == {"backend": "sim", "image_height": 16, "image_width": 16}
    out = tmp_path / "clf.pt"
    TrainReward(data=labels, out=out, epochs=1, batches_per_epoch=2, batch_size=8, channels=4, layers=2,
                features=8, hidden=(8,), heldout_fraction=0.5, crop=("front=2,3,12,12",), resize=10).run()
    model, metadata = load_classifier(out)
    assert model.spec.image_shapes == {"front": (16, 16, 3), "wrist": (16, 16, 3)}
    assert model.spec.crop == {"front": (2, 3, 12, 12)} and model.spec.resize == (10, 10)
    assert metadata["crop"] == {"front": [2, 3, 12, 12]} and metadata["resize"] == 10
    assert metadata["env"]["image_height"] == 16 and (tmp_path / "clf.pt.confusion.png").exists()


def test_record_labels_from_episode_files(tmp_path):
    env = robot_rl.make("pick_cube", obs="pixels", image_height=16, image_width=16)
    try:
        record(env, expert_policy, tmp_path / "demos", 2, 0, "sim", "expert")
    finally:
        env.close()
    RecordLabels(source="episodes", episodes=tmp_path / "demos", out=tmp_path / "labels", cameras="wrist").run()
    data = read_labels(tmp_path / "labels")
    assert list(data.images) == ["wrist"] and data.class_counts()["success"] == 2
    assert data.labels[data.steps == data.steps[data.episodes == 0].max()][0] == 1
    with pytest.raises(ValueError, match=r"cameras \['side'\] are not in the episodes"):
        RecordLabels(source="episodes", episodes=tmp_path / "demos", out=tmp_path / "x", cameras="side").run()


def test_clear_errors():
    with pytest.raises(ValueError, match="teleop device 'spacemouse'"):  # no SpaceMouse on this machine
        RecordLabels(source="teleop", teleop="spacemouse", out=pathlib.Path("/nonexistent-labels")).run()
    with pytest.raises(ValueError, match="--episodes DIR"):
        RecordLabels(source="episodes")
    with pytest.raises(ValueError, match=r"cameras \['side'\] are not observed by the env"):
        RecordLabels(num_episodes=1, cameras="side", env=EnvConfig(obs="pixels", env_kwargs=SIZE)).run()
    with pytest.raises(ValueError, match="KEY=VALUE"):
        RecordLabels(env=EnvConfig(obs="pixels", env_kwargs=("image_height",))).run()
    with pytest.raises(ValueError, match="leave --obs at pixels"):
        RecordLabels(env=EnvConfig(obs="state"))
