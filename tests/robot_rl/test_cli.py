"""Entry-point smoke tests: the real `robot-rl` command in a subprocess, seconds each."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np

from robot_rl.data import read_episode, read_episodes


def robot_rl_cli(*args, cwd=None):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run([sys.executable, "-m", "robot_rl.cli", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_envs_lists_pick_cube():
    result = robot_rl_cli("envs")
    assert result.returncode == 0, result.stderr
    assert "pick_cube" in result.stdout and "robot_rl/PickCube-v0" in result.stdout
    assert "teleop devices: simulated, gamepad, keyboard, spacemouse" in result.stdout


def test_record_expert_writes_readable_episodes_and_a_video(tmp_path):
    out = tmp_path / "demos"
    result = robot_rl_cli("record", "--task", "pick_cube", "--expert", "--episodes", "2", "--out", str(out), "--video-episodes", "1")
    assert result.returncode == 0, result.stderr
    assert "2/2 episodes succeeded" in result.stdout
    files = sorted(out.glob("*.npz"))
    assert [f.name for f in files] == ["episode_000000.npz", "episode_000001.npz"]
    assert (out / "demo.mp4").stat().st_size > 1000
    # Readable with numpy alone.
    with np.load(files[0], allow_pickle=False) as raw:
        meta = json.loads(str(raw["metadata"]))
        assert meta["task"] == "pick_cube" and meta["source"] == "expert" and meta["control_hz"] == 10.0
        assert raw["obs/state"].shape[0] == raw["action"].shape[0] + 1
    episode = read_episode(files[1], task="pick_cube")
    assert episode.success and episode.terminated[-1] and not episode.truncated.any()
    assert episode.metadata["seed"] == 1
    episodes, errors = read_episodes(out, task="pick_cube")
    assert len(episodes) == 2 and not errors
    # The video holds the first episode: its first observation, then one frame per step.
    video = cv2.VideoCapture(str(out / "demo.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames == len(read_episode(files[0])) + 1


def test_record_pixels_stores_uint8_images(tmp_path):
    result = robot_rl_cli("record", "--expert", "--episodes", "1", "--obs", "pixels", "--out", str(tmp_path), "--video-episodes", "0")
    assert result.returncode == 0, result.stderr
    episode = read_episode(next(tmp_path.glob("*.npz")))
    assert episode.observations["front"].dtype == np.uint8
    assert episode.observations["wrist"].shape[1:] == (128, 128, 3)
    assert not (tmp_path / "demo.mp4").exists()


def test_record_without_a_driver_and_unknown_task_fail_clearly(tmp_path):
    result = robot_rl_cli("record", "--episodes", "1", "--out", str(tmp_path))
    assert result.returncode != 0 and "--expert" in result.stderr + result.stdout
    result = robot_rl_cli("record", "--expert", "--task", "stack_cubes", "--out", str(tmp_path))
    assert result.returncode != 0 and "known tasks: [" in result.stderr and "'pick_cube'" in result.stderr
    result = robot_rl_cli("record", "--teleop", "spacemouse", "--out", str(tmp_path))
    assert result.returncode == 2 and "spacemouse" in result.stderr.lower() and "Traceback" not in result.stderr


def test_ctrl_c_stops_a_run_started_with_sigint_ignored(tmp_path):
    """A script's background job (`robot-rl train ... &`) inherits SIGINT as ignored; Ctrl-C (SIGINT)
    must still stop the run cleanly, and SIGTERM too, with the checkpoint written and exit 130."""
    import signal
    import time

    for stop in (signal.SIGINT, signal.SIGTERM):
        name = f"run-{stop.name}"
        proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "train", "--task", "Pendulum-v1", "--steps", "100000",
                                 "--out", str(tmp_path), "--name", name, "--learning-starts", "100000", "--video-episodes", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / name).glob("events.out.tfevents*")):
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "--resume" in err, (stop, proc.returncode, err[-1000:])
