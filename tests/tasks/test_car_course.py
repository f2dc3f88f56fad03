"""car_lap on a course built from one demonstration lap (tasks/car/course.py): a slow pure-pursuit
lap recorded on the MuJoCo car becomes checkpoints on the generated track's centreline, car_lap with
``course=`` gives the expert full laps and rewards progress as the generated track does; a path
that never closes, a bad file and a car without a pose source are clear errors."""

import math
import pathlib
import sys

import numpy as np
import pytest

import robot_rl
from tasks.car.course import (
    closing_index,
    course_from_poses,
    load_course,
    record_poses,
    save_course,
)
from tasks.car.lap import CarLap
from tasks.car.lap_arrays import CarLapConfig
from tasks.car.track_arrays import track_arrays

TRACK_SEED = 0
CENTRELINE_TOL_M = 0.15  # pure pursuit cuts corners by ~l^2/(8R) ~ 0.08 m at 1.5 m/s on R >= 1.2 m


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One slow (1.5 m/s) expert lap on the MuJoCo car, recorded and built into a saved course."""
    env = robot_rl.make("car_lap", track_seed=TRACK_SEED, expert_max_speed_m_s=1.5)
    try:
        env.reset(seed=0)
        task, backend = env.unwrapped.task, env.unwrapped.backend
        poses = record_poses(backend, lambda s: task.action_to_command(task.expert(s), s, backend.spec), 0.05, 60.0)
        course = course_from_poses(poses, half_width_m=0.75, ahead_m=task.arrays.centre_m)
        path = save_course(course, tmp_path_factory.mktemp("course") / "course.npz", source="test expert lap")
        return {"poses": poses, "course": course, "path": path, "track": task.track}
    finally:
        env.close()


def _distance_to_polyline(track, point):
    i = track.nearest(point)
    a, b = track.points_m[i], track.points_m[(i + 1) % track.num_points]
    t = np.clip(np.dot(point - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return float(np.linalg.norm(a + t * (b - a) - point))


def test_the_demonstration_lap_closes_and_its_checkpoints_lie_on_the_centreline(demo):
    course, track, poses = demo["course"], demo["track"], demo["poses"]
    assert 1.0 < len(poses) * 0.05 < 20.0  # about one lap at 1.5 m/s, stopped soon after it closed
    assert course.length_m == pytest.approx(track.length_m, rel=0.03)
    assert np.allclose(course.seg_len_m, course.spacing_m, rtol=0.05)  # resampled at a fixed arc-length spacing
    distances = [_distance_to_polyline(track, p) for p in course.points_m]
    assert max(distances) < CENTRELINE_TOL_M, max(distances)
    # the track direction of the course agrees with the generated track's
    near = [track.nearest(p) for p in course.points_m]
    assert np.min(np.sum(course.tangents * track.tangents[near], axis=1)) > math.cos(0.3)
    loaded = load_course(demo["path"])
    np.testing.assert_allclose(loaded.points_m, course.points_m)
    assert loaded.half_width_m == 0.75 and loaded.seed == -1


def test_car_lap_on_the_course_gives_the_expert_full_laps(demo):
    env = robot_rl.make("car_lap", track_seed=TRACK_SEED, course=str(demo["path"]), max_episode_steps=200)
    try:
        env.reset(seed=1)
        task = env.unwrapped.task
        assert task.track.seed == -1  # the course, not the scene's track
        info, truncated = {}, False
        while not truncated:
            _, _, _, truncated, info = env.step(task.expert(env.unwrapped.state))
        assert info["laps_completed"] >= 1 and not info["collided"] and not task.tracker.stuck
    finally:
        env.close()


def test_the_course_rewards_progress_as_the_generated_track_does(demo):
    """Per step, the course's progress reward follows the generated track's, and three behaviours
    (the expert, the expert at half speed, holding still) rank the same under both."""
    env = robot_rl.make("car_lap", track_seed=TRACK_SEED)
    course = track_arrays(demo["course"])
    returns = {}
    try:
        task = env.unwrapped.task
        for name, speed_scale in (("expert", 1.0), ("half", 0.5), ("hold", 0.0)):
            env.reset(seed=2)
            state = env.unwrapped.state
            tracker = task.arrays.start(course, np.asarray(demo["course"].nearest(task._centre(state))), state.pos_m,
                                        np.asarray(state.yaw_rad), state.time_s, np)
            ours, theirs = [], []
            for _ in range(60):
                action = task.expert(env.unwrapped.state)
                action[0] = task.mapping.to_action(speed_scale * task.mapping.to_drive(action[0], np), np)
                _, reward, _, _, _ = env.step(action)
                state = env.unwrapped.state
                tracker = task.arrays.step(course, tracker, state.pos_m, np.asarray(state.yaw_rad),
                                           state.imu_accel_m_s2[2], True, state.time_s, np)
                ours.append(float(task.arrays.reward(tracker, np)))
                theirs.append(reward)
            returns[name] = (sum(ours), sum(theirs))
            if name == "expert":
                assert np.corrcoef(ours, theirs)[0, 1] > 0.95
                assert sum(ours) == pytest.approx(sum(theirs), rel=0.05)
    finally:
        env.close()
    assert returns["expert"][0] > returns["half"][0] > returns["hold"][0] + 10
    assert returns["expert"][1] > returns["half"][1] > returns["hold"][1] + 10


def test_a_path_that_does_not_close_a_lap_is_a_clear_error(demo):
    poses = demo["poses"]
    k = closing_index(poses[:, :2], 0.5)
    assert k is not None and k > len(poses) // 2
    with pytest.raises(ValueError, match="does not close a lap: after leaving its start it came back to"):
        course_from_poses(poses[: k // 2], half_width_m=0.75)
    with pytest.raises(ValueError, match="never got more than"):
        course_from_poses(np.zeros((10, 3)), half_width_m=0.75)
    with pytest.raises(ValueError, match="nan"):
        course_from_poses(np.full((10, 3), np.nan), half_width_m=0.75)
    figure_eight = np.linspace(0, 2 * np.pi, 400)[:-1]
    eight = np.stack([2 * np.sin(figure_eight), np.sin(2 * figure_eight), np.zeros_like(figure_eight)], axis=1)
    with pytest.raises(ValueError, match="crosses itself"):
        course_from_poses(np.vstack([eight, eight[:5]]), half_width_m=0.3, close_tol_m=0.2)


def test_bad_course_files_and_the_jax_car_are_clear_errors(demo, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, points_m=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not a car course file"):
        load_course(bad)
    with pytest.raises(ValueError, match=r"\.npz"):
        save_course(demo["course"], tmp_path / "course.json")
    with pytest.raises(NotImplementedError, match="JAX car"):
        CarLap(CarLapConfig(course=str(demo["path"]))).arrays.track_arrays(demo["track"], np, np.float32)


def test_a_car_without_a_pose_source_is_told_what_it_needs(demo):
    """The VESC car (over a pty to the VESC emulator, the real packet protocol) has no position."""
    pytest.importorskip("pyvesc", reason="the VESC emulator frames with pyvesc (test extra; needs pythoncrc)")
    pytest.importorskip("serial", reason="the VESC backend needs pyserial (the car extra)")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "drivers" / "car"))
    from vesc_emulator import VescEmulator

    from drivers.car.config import VescConfig
    from drivers.car.vesc import VescCar

    with VescEmulator() as emulator:
        car = VescCar(VescConfig(port=emulator.port, link_timeout_s=1.5))
        car.connect()
        try:
            with pytest.raises(ValueError, match="needs the car's pose.*VescCar.*ros_car.*motion capture"):
                CarLap(CarLapConfig(course=str(demo["path"]))).reset(car, np.random.default_rng(0))
            with pytest.raises(ValueError, match="course=PATH"):
                CarLap().reset(car, np.random.default_rng(0))
        finally:
            car.close()


def test_the_command_line_builds_a_course_from_recorded_poses(demo, tmp_path, capsys):
    from robot_rl.cli import main

    np.save(tmp_path / "poses.npy", demo["poses"])
    assert main(["car-course", "build", "--poses", str(tmp_path / "poses.npy"), "--half-width-m", "0.6", "--out",
                 str(tmp_path / "course.npz")]) == 0
    course = load_course(tmp_path / "course.npz")
    assert course.half_width_m == 0.6 and "checkpoints" in capsys.readouterr().out
    np.testing.assert_allclose(course.points_m, demo["course"].points_m, atol=1e-9)  # same ahead_m (0.17 m)
