"""`robot-rl launch` with pixels and the frozen, cached encoder: the learner turns the frames that
arrive in chunks into cached features, trains the heads and publishes them; the actor loads the
same encoder file and flies the heads it receives (puck_reach's one camera: the cheapest pixel task
to start, the path is the arm's)."""

import re

import torch

from distributed_helpers import TINY, Proc, free_ports
from robot_rl.data import read_episodes
from robot_rl.encoders.keypoints import KeypointEncoder, save_encoder


def test_launch_trains_on_pixels_through_the_frozen_encoder(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = save_encoder(tmp_path / "encoder.pt", KeypointEncoder(widths=(4, 4), strides=(2, 2)))
    ports = free_ports()
    launch = Proc("launch", ["launch", "--task", "puck_reach", "--obs", "pixels", "--actors", "1", *TINY,
                             "--sac.image-encoder", "frozen", "--sac.pretrained-path", str(encoder),
                             "--sac.encoder-features", "8", "--sac.cached-shifts", "2",
                             "--env-kwargs", "max_episode_steps=20", "image_height=32", "image_width=32",
                             "--out", str(tmp_path), "--name", "run", "--steps", "100000", "--learning-starts", "32",
                             "--no-eval", "--threads", "1", "--actor-max-hz", "0", "--bind", f"tcp://127.0.0.1:{ports[0]}",
                             "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path)
    try:
        launch.wait_for(r"\[learner\] updates [1-9]\d* .*transitions ([4-9]\d|\d{3,})/", 120)
        launch.wait_for(r"\[actor-0\] actor actor-0: running the learner's weights", 60)
        launch.wait_for(r"\[learner\] updates .* weights v[2-9]", 60)  # trained heads published
        assert launch.interrupt(timeout_s=40) == 130
    finally:
        launch.cleanup()
    text = launch.text
    assert "Traceback" not in text and "cannot load weights" not in text, text[-3000:]
    assert re.search(r"\[learner\] .*stored as feature cache 1 x 2 shifts x \d+ float16 = \d+ bytes per transition", text)
    episodes, errors = read_episodes(tmp_path / "run" / "episodes", task="puck_reach")  # frames still go to disk
    assert not errors and episodes and episodes[0].observations["top"].shape[1:] == (32, 32, 3)
