"""`robot-rl pretrain-encoder` then `robot-rl train --obs pixels --sac.image-encoder frozen`, end to end
on pixel pick_cube (32x32 frames, a few dozen steps): the commands the README documents."""

import json

from robot_rl.cli import main
from robot_rl.data import read_episodes


def test_pretrain_then_train_with_the_frozen_cached_encoder(tmp_path, capsys):
    demos, encoder = tmp_path / "demos", tmp_path / "encoder.pt"
    small = ["--env-kwargs", "image_height=32", "image_width=32"]
    assert main(["record", "--task", "pick_cube", "--teleop", "expert", "--episodes", "1", "--out", str(demos),
                 "--obs", "pixels", *small]) == 0
    assert main(["pretrain-encoder", "--episodes", str(demos), "--out", str(encoder), "--updates", "3",
                 "--batch-size", "4", "--widths", "4", "4", "--strides", "2", "2", "--recon-size", "8"]) == 0
    args = ["train", "--task", "pick_cube", "--obs", "pixels", *small, "max_episode_steps=15", "--demos", str(demos), "--steps", "40",
            "--learning-starts", "16", "--eval-every", "40", "--eval-episodes", "1", "--video-episodes", "0",
            "--out", str(tmp_path), "--name", "frozen", "--sac.image-encoder", "frozen", "--sac.pretrained-path", str(encoder),
            "--sac.hidden-dims", "32", "32", "--sac.batch-size", "16", "--sac.encoder-features", "8", "--sac.cached-shifts", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "replay 'online': capacity 200,000 transitions, 2 cameras 32x32 uint8 + " in out
    assert "stored as feature cache 2 x 2 shifts x 12 float16 = 96 bytes per transition" in out
    run = tmp_path / "frozen"
    assert json.loads((run / "config.json").read_text())["sac"]["image_encoder"] == "frozen"
    assert (run / "checkpoint.pt").exists() and (run / "actor.pt").exists()
    episodes, errors = read_episodes(run / "episodes", task="pick_cube")  # frames go to disk as ever
    assert not errors and episodes[0].observations["front"].shape[1:] == (32, 32, 3)
    assert main([*args, "--resume", "--steps", "48"]) == 0  # features are recomputed from the episode files
