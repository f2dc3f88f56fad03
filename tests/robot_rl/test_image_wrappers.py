"""CropResizeImages and RecordVideo on the real pick_cube pixel env (MuJoCo, headless EGL)."""

import warnings

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robot_rl
from robot_rl.testing.conformance import check_determinism, check_spaces_and_aliasing
from robot_rl.wrappers.images import CropResizeImages, crop_resize
from robot_rl.wrappers.video import RecordVideo, draw_overlay, side_by_side

CROP = (16, 112, 8, 120)  # y0, y1, x0, x1 in the 128x128 front image


@pytest.fixture
def env():
    env = robot_rl.make("pick_cube", obs="pixels")
    yield env
    env.close()


def _read_video(path) -> list[np.ndarray]:
    """Every frame of an MP4 as RGB, via cv2.VideoCapture."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"cv2 cannot open {path}"
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


class _FlagIntervention(gym.Wrapper):
    """Marks the given step numbers as human interventions in ``info`` (what a teleop wrapper does)."""

    def __init__(self, env, steps):
        super().__init__(env)
        self.steps, self.t = set(steps), 0

    def reset(self, **kwargs):
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, reward, terminated, truncated, {**info, "intervention": self.t in self.steps}


def test_crop_resize_matches_the_raw_image_and_space(env):
    wrapped = CropResizeImages(env, {"front": (CROP, (64, 56)), "wrist": (None, (32, 32))})
    space = wrapped.observation_space
    assert space["front"].shape == (64, 56, 3) and space["wrist"].shape == (32, 32, 3)
    assert space["state"] == env.observation_space["state"]
    obs, _ = wrapped.reset(seed=0)
    raw = env.unwrapped.backend.render("front")  # the same scene, not cropped
    expected = cv2.resize(raw[16:112, 8:120], (56, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(obs["front"], expected)
    for _ in range(3):
        obs, *_ = wrapped.step(wrapped.action_space.sample())
        assert obs in space
    assert obs["wrist"].flags["C_CONTIGUOUS"] and obs["front"].dtype == np.uint8


def _small_cropped_env() -> gym.Env:
    env = robot_rl.make("pick_cube", obs="pixels", image_height=48, image_width=48)
    return CropResizeImages(env, {"front": ((0, 40, 4, 44), (24, 24))})


def test_wrapped_env_passes_check_env_and_conformance_checks():
    env = _small_cropped_env()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
            check_env(env, skip_render_check=True)
        check_spaces_and_aliasing(env, steps=5)
    finally:
        env.close()
    check_determinism(_small_cropped_env, steps=5)


def test_crop_resize_checks_its_arguments(env):
    with pytest.raises(KeyError, match=r"no camera 'side'.*keys: \['front', 'state', 'wrist'\]"):
        CropResizeImages(env, {"side": (None, (64, 64))})
    with pytest.raises(ValueError, match=r"crop \(0, 130, 0, 64\) for 'front' is not a .* box inside its 128x128"):
        CropResizeImages(env, {"front": ((0, 130, 0, 64), (64, 64))})
    with pytest.raises(ValueError, match=r"crop \(10, 10, 0, 64\)"):
        CropResizeImages(env, {"front": ((10, 10, 0, 64), (64, 64))})
    with pytest.raises(ValueError, match=r"output size for 'wrist' must be \(out_h, out_w\) > 0"):
        CropResizeImages(env, {"wrist": (None, (0, 64))})
    with pytest.raises(ValueError, match="not a uint8"):
        CropResizeImages(env, {"state": (None, (4, 4))})
    with pytest.raises(TypeError, match="Dict observation space"):
        CropResizeImages(robot_rl.make("pick_cube"), {"front": (None, (4, 4))})


def test_crop_resize_keeps_single_channel_images():
    image = np.arange(40 * 30, dtype=np.uint8).reshape(40, 30, 1)
    assert crop_resize(image, (0, 20, 0, 10), (10, 5)).shape == (10, 5, 1)


def test_record_video_writes_one_readable_file_per_episode(env, tmp_path):
    steps = 4
    recorder = RecordVideo(_FlagIntervention(env, steps={2}), tmp_path / "videos", cameras=["front", "wrist"])
    obs, _ = recorder.reset(seed=0)
    raw = [side_by_side([obs["front"], obs["wrist"]])]
    for _ in range(steps):
        obs, *_ = recorder.step(recorder.action_space.sample())
        raw.append(side_by_side([obs["front"], obs["wrist"]]))
    assert recorder.recording and not (tmp_path / "videos" / "episode-000000.mp4").exists()
    recorder.reset()  # ends episode 0: its file appears
    recorder.close()  # ends episode 1 (no steps): a one-frame file
    path = tmp_path / "videos" / "episode-000000.mp4"
    assert recorder.videos == [path, tmp_path / "videos" / "episode-000001.mp4"]
    frames = _read_video(path)
    assert len(frames) == steps + 1 and frames[0].shape == (128, 256, 3)
    for video, plain in zip(frames, raw):
        changed = np.abs(video.astype(int) - plain).max(axis=2) > 80  # beyond MP4 compression error
        assert changed[:14, :100].mean() > 0.05, "the overlay must change the caption pixels"
        assert changed[40:90].mean() < 0.01, "only the caption may differ from the raw images"
    red = lambda f: np.sum((f[-16:, :100, 0] > 180) & (f[-16:, :100, 1] < 90))  # noqa: E731
    assert red(frames[2]) > 20 and red(frames[1]) < 5 and red(frames[3]) < 5  # INTERVENTION at step 2
    assert not list((tmp_path / "videos").glob("*.tmp.mp4"))


def test_record_video_every_kth_episode_and_no_file_while_unfinished(env, tmp_path):
    recorder = RecordVideo(env, tmp_path, cameras=["wrist"], every_k_episodes=2)
    for _ in range(3):
        recorder.reset(seed=1)
        recorder.step(recorder.action_space.sample())
    assert recorder.videos == [tmp_path / "episode-000000.mp4"]
    assert not (tmp_path / "episode-000002.mp4").exists(), "an unfinished episode has no file under its name"
    recorder.close()
    assert recorder.videos[-1] == tmp_path / "episode-000002.mp4" and len(_read_video(recorder.videos[-1])) == 2
    assert not (tmp_path / "episode-000001.mp4").exists()


def test_record_video_from_render_and_argument_checks(tmp_path):
    env = robot_rl.make("pick_cube", obs="pixels", render_mode="rgb_array", image_height=32, image_width=32)
    try:
        with pytest.raises(KeyError, match=r"no camera 'side'.*keys"):
            RecordVideo(env, tmp_path, cameras=["side"])
        with pytest.raises(ValueError, match="every_k_episodes"):
            RecordVideo(env, tmp_path, cameras=["front"], every_k_episodes=0)
        recorder = RecordVideo(env, tmp_path)
        recorder.reset(seed=0)
        recorder.step(recorder.action_space.sample())
        recorder.close()
        frames = _read_video(recorder.videos[0])
        assert len(frames) == 2 and frames[0].shape == (256, 256, 3)  # the env's render size
    finally:
        env.close()
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        RecordVideo(robot_rl.make("pick_cube", obs="pixels"), tmp_path)


def test_overlay_draws_intervention_in_red():
    image = np.zeros((64, 64, 3), np.uint8)
    plain, flagged = draw_overlay(image, 3, 0.5, False), draw_overlay(image, 3, 0.5, True)
    assert plain.any() and not image.any()  # a copy; the input is untouched
    assert (flagged[..., 0] > flagged[..., 1] + 100).sum() > (plain[..., 0] > plain[..., 1] + 100).sum()
