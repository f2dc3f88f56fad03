"""The track generator: closed, non-self-intersecting, walls clear of each other, drivable curvature,
one layout per seed, several layouts; the expert drives a clean lap on several seeds."""

import numpy as np
import pytest

import robot_rl
from sim.car.track import TrackSettings, generate_track, segments_intersect

SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
def test_closed_evenly_spaced_and_non_self_intersecting(seed):
    track = generate_track(seed)
    assert track.num_points > 100 and 15.0 < track.length_m < 30.0
    # closed: the last point joins the first like any other pair of neighbours
    gaps = np.linalg.norm(np.roll(track.points_m, -1, axis=0) - track.points_m, axis=1)
    np.testing.assert_allclose(gaps, track.seg_len_m)
    assert gaps.max() / gaps.min() < 1.01 and abs(gaps.mean() - 0.1) < 0.005
    np.testing.assert_allclose(np.linalg.norm(track.tangents, axis=1), 1.0)
    for polyline in (track.points_m, track.wall_m("left"), track.wall_m("right")):
        assert not segments_intersect(polyline)


@pytest.mark.parametrize("seed", SEEDS)
def test_drivable_curvature_and_walls_clear_of_the_corridor(seed):
    settings = TrackSettings(track_seed=seed)
    track = settings.track()
    assert 1.0 / np.abs(track.curvature_per_m).max() >= settings.track_min_radius_m - 1e-6
    # no wall of one part of the track cuts into another part's corridor
    for side in ("left", "right"):
        wall = track.wall_m(side)
        nearest = np.min(np.linalg.norm(wall[:, None, :] - track.points_m[None, :, :], axis=-1), axis=1)
        assert nearest.min() >= track.half_width_m - 0.01, side
    # the track turns once around: total turning 2 pi (either way round)
    assert abs(abs(np.sum(track.curvature_per_m * track.seg_len_m)) - 2 * np.pi) < 0.05


def test_a_seed_names_one_layout_and_seeds_give_several():
    assert np.array_equal(generate_track(3).points_m, TrackSettings(track_seed=3).track().points_m)
    layouts = [generate_track(seed) for seed in SEEDS]
    lengths = {round(t.length_m, 2) for t in layouts}
    assert len(lengths) == len(layouts)
    turns = {np.sign(np.sum(t.curvature_per_m)) for t in layouts}
    assert turns == {-1.0, 1.0}  # clockwise and counter-clockwise layouts


def test_nearest_and_pose_at():
    track = generate_track(0)
    pos, yaw = track.pose_at(37, lateral_m=0.3, heading_rad=0.1)
    assert track.nearest(pos) in (36, 37)
    tangent = track.tangents[37]
    np.testing.assert_allclose(pos - track.points_m[37], 0.3 * np.array([-tangent[1], tangent[0]]), atol=1e-12)
    assert np.isclose(yaw, np.arctan2(tangent[1], tangent[0]) + 0.1)


def test_settings_are_checked_with_clear_errors():
    with pytest.raises(ValueError, match="track_min_radius_m"):
        TrackSettings(track_min_radius_m=0.7)
    with pytest.raises(ValueError, match="track_seed"):
        TrackSettings(track_seed=-1)
    with pytest.raises(ValueError, match="track_mean_radius_m"):
        TrackSettings(track_mean_radius_m=1.5)
    with pytest.raises(ValueError, match="no drivable track"):
        generate_track(0, half_width_m=0.75, mean_radius_m=2.0, min_radius_m=2.5)  # tighter than any layout


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_the_expert_drives_a_clean_lap(seed):
    """Drivable: the pure-pursuit expert laps the MuJoCo car around without touching a wall."""
    env = robot_rl.make("car_lap", track_seed=seed, max_episode_steps=260)
    try:
        env.reset(seed=seed)
        task = env.unwrapped.task
        for _ in range(260):
            _, _, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
            assert not terminated and not task.metrics["collided"]
            if truncated:
                break
        assert task.metrics["laps_completed"] >= 1 and info["success"]
        assert 5.0 < task.metrics["lap_time_s"] < 12.0  # ~20 m at ~2-3 m/s
    finally:
        env.close()
