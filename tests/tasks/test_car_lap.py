"""car_lap on the MuJoCo car: crashes, flips and getting stuck truncate (never terminate) and are
followed by the recovery manoeuvre, holding still runs to the time limit, resets (seeded fresh
starts, unseeded continuation), lap metrics, the action mapping, pixels, and the xp pattern (the
same array functions under numpy and jax.numpy). The conformance suite runs on car_lap with every
registered task (tests/robot_rl/test_env_conformance.py)."""

import math

import mujoco
import numpy as np
import pytest

import robot_rl
from robot_rl.backends.car import CarSpec
from sim.car.params import CarPhysics
from sim.car.track import generate_track
from tasks.car.base import DriveMapping
from tasks.car.lap import CarLap, make_task
from tasks.car.lap_arrays import CarLapConfig, LapArrays
from tasks.car.track_arrays import locate_arrays, track_arrays

INTO_THE_WALL = np.array([1.0, 1.0], np.float32)  # full speed, full left lock


def make(**options):
    return robot_rl.make("car_lap", **options)


def test_a_collision_truncates_with_the_penalty_then_recovery_runs_in_reset():
    env = make()
    try:
        env.reset(seed=0)
        task = env.unwrapped.task
        for step in range(1, 80):
            _, reward, terminated, truncated, info = env.step(INTO_THE_WALL)
            assert not terminated
            if truncated:
                break
        assert task.metrics["collided"] and info["collided"] and reward < -5.0 and step < 80
        assert task.truncated(env.unwrapped.state)  # the task cut the episode at the crash, not the time limit
        crash_time, crash_pos = env.unwrapped.state.time_s, env.unwrapped.state.pos_m
        obs, _ = env.reset()  # no seed: recover and continue from here
        state = env.unwrapped.state
        assert state.time_s - crash_time >= task.config.recovery_s  # the manoeuvre ran inside reset
        assert np.linalg.norm(state.pos_m - crash_pos) < 2.0  # near the crash, not teleported
        assert abs(state.forward_speed_m_s) < 0.05 and abs(state.steering_rad) < 1e-9
        assert not task.metrics["collided"] and not task.truncated(state)
        parts = env.unwrapped.state_layout
        assert abs(obs[parts["lateral_m"]][0]) < 0.75
        assert task.totals["collisions"] == 1
    finally:
        env.close()


def test_holding_still_runs_to_the_time_limit_and_creeping_gets_stuck():
    env = make(max_episode_steps=100, stuck_s=1.0)
    try:
        env.reset(seed=1)
        hold = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
        for step in range(1, 101):
            _, reward, terminated, truncated, _ = env.step(hold)
            assert not terminated and truncated == (step == 100) and reward == pytest.approx(0.0, abs=1e-3)
        env.reset(seed=1)
        creep = np.array([-0.93, 0.0], np.float32)  # 0.14 m/s: driving, but 0.3 m of progress takes > 1 s
        for step in range(1, 101):
            _, _, terminated, truncated, _ = env.step(creep)
            if truncated:
                break
        assert not terminated and step == 20 and env.unwrapped.task.tracker.stuck  # 1 s at 20 Hz
        assert not env.unwrapped.task.metrics["collided"]
    finally:
        env.close()


def test_a_flipped_car_truncates_and_is_put_back_on_the_track():
    env = make()
    try:
        env.reset(seed=2)
        d = env.unwrapped.backend.data
        d.qpos[3:7] = [0.0, 1.0, 0.0, 0.0]  # upside down (180 degrees about x)
        d.qpos[2] = 0.2
        mujoco.mj_forward(env.unwrapped.backend.model, d)
        for _ in range(10):
            _, reward, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
            if truncated:
                break
        assert truncated and not terminated and env.unwrapped.task.tracker.flipped and reward < -5.0
        env.reset()  # reversing cannot right it: the simulator puts it back on the centreline
        state = env.unwrapped.state
        assert state.imu_accel_m_s2[2] > 9.0 and not env.unwrapped.task.metrics["collided"]
    finally:
        env.close()


def test_one_upside_down_accelerometer_sample_is_not_a_flip_but_flip_s_of_them_is():
    """A wheel's floor contact can spike MuJoCo's accelerometer for one physics step (seen: -30 to
    -60 m/s^2), so a flip needs ``flip_s`` of upside-down readings without a break."""
    env = make()
    try:
        env.reset(seed=1)
        task, state = env.unwrapped.task, env.unwrapped.state
        tracker = task.tracker
        for step, accel_z in enumerate([-45.0, 9.8, -45.0, -9.8, -9.8], start=1):
            tracker = task.arrays.step(task._track_arrays, tracker, state.pos_m, np.asarray(state.yaw_rad), accel_z,
                                       False, state.time_s + 0.1 * step, np)
            assert bool(tracker.flipped) == (step == 5), (step, tracker.upside_down_s)
    finally:
        env.close()


def test_seeded_resets_start_fresh_unseeded_ones_continue():
    env = make()
    try:
        first, _ = env.reset(seed=7)
        start = env.unwrapped.state.pos_m.copy()
        expert = env.unwrapped.task.expert
        for _ in range(30):
            env.step(expert(env.unwrapped.state))
        moved = env.unwrapped.state.pos_m.copy()
        env.reset()
        state = env.unwrapped.state  # braked (from ~3 m/s) where it was, wheels straightened
        assert np.linalg.norm(state.pos_m - moved) < 1.0 and abs(state.forward_speed_m_s) < 0.05
        again, _ = env.reset(seed=7)
        np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(env.unwrapped.state.pos_m, start)
    finally:
        env.close()


def test_lap_metrics_and_success_are_in_every_steps_info():
    env = make(track_seed=3)
    try:
        env.reset(seed=3)
        base = env.unwrapped
        info = {}
        for _ in range(220):
            _, _, _, _, info = env.step(base.task.expert(base.state))
            if info["laps_completed"]:
                break
        assert info["success"] and info["laps_completed"] == 1 and not info["collided"]
        assert info["lap_time_s"] == pytest.approx(base.state.time_s - 0.05 * math.ceil(0.0), abs=5.0)
        metrics = base.task.metrics
        assert metrics["best_lap_time_s"] == info["lap_time_s"] and metrics["collisions_per_lap"] == 0.0
    finally:
        env.close()


def test_action_mapping_hold_action_and_drive_modes():
    spec = CarPhysics().spec()
    speed, throttle = make_task(), make_task(drive="throttle")
    np.testing.assert_array_equal(speed.hold_action(spec), [-1.0, 0.0])  # speed 0 at the bottom of [0, 4]
    np.testing.assert_array_equal(throttle.hold_action(spec), [0.0, 0.0])
    command = speed.action_to_command(np.array([0.5, -0.5]), None, spec)
    assert command.speed_m_s == pytest.approx(3.0) and command.steering_rad == pytest.approx(-0.5 * 0.4189)
    np.testing.assert_allclose(speed.command_to_action(command, None, spec), [0.5, -0.5], atol=1e-6)
    assert throttle.action_to_command(np.array([-0.3, 0.0]), None, spec).throttle == pytest.approx(-0.3)
    speed_only = CarSpec(**{**{f: getattr(spec, f) for f in ("wheelbase_m", "track_width_m", "max_steering_rad",
                                                             "max_steering_rate_rad_s", "max_speed_m_s",
                                                             "max_reverse_speed_m_s", "max_accel_m_s2")},
                            "command_modes": ("speed",)})
    with pytest.raises(ValueError, match="throttle"):
        throttle.action_space(speed_only)
    with pytest.raises(ValueError, match="stop"):
        DriveMapping(min_speed_m_s=0.5)


def test_throttle_mode_expert_laps():
    env = make(drive="throttle", track_seed=1, max_episode_steps=200)
    try:
        env.reset(seed=1)
        task = env.unwrapped.task
        for _ in range(200):
            env.step(task.expert(env.unwrapped.state))
            assert not task.metrics["collided"]
        assert task.metrics["laps_completed"] >= 1
    finally:
        env.close()


def test_pixels_see_the_track_and_visuals_randomize():
    env = make(obs="pixels", image_height=48, image_width=64, randomize_visuals=True)
    try:
        obs, _ = env.reset(seed=0)
        assert list(env.unwrapped.state_layout) == ["vel_body_m_s", "yaw_rate_rad_s", "steering_rad"]
        assert obs["state"].shape == (4,) and obs["front"].shape == (48, 64, 3) and obs["front"].std() > 5
        other, _ = env.reset(seed=1)
        assert not np.array_equal(obs["front"], other["front"])
    finally:
        env.close()


def test_clear_errors():
    with pytest.raises(ValueError, match="track's walls"):
        make(start_lateral_m=0.6).reset(seed=0)
    with pytest.raises(ValueError, match="lookahead_m"):
        CarLapConfig(lookahead_m=())
    puck = robot_rl.make("puck_reach").unwrapped.backend
    with pytest.raises(ValueError, match="needs a course"):
        CarLap().reset(puck, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="reset"):
        CarLap().reward(None)


# ---------------------------------------------------------------------- the xp pattern
def _cars(rng, batch):
    track = generate_track(0)
    index = rng.integers(0, track.num_points, batch)
    tangent = track.tangents[index]
    normal = np.stack([-tangent[..., 1], tangent[..., 0]], axis=-1)
    pos = track.points_m[index] + rng.uniform(-0.5, 0.5, (*batch, 1)) * normal
    yaw = np.arctan2(tangent[..., 1], tangent[..., 0]) + rng.uniform(-0.5, 0.5, batch)
    moved = pos + rng.uniform(-0.2, 0.2, (*batch, 2))
    return track, index, pos, yaw, moved


@pytest.mark.parametrize("batch", [(), (64,), (4, 8)])
def test_array_functions_agree_under_numpy_and_jax(batch):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    track, index, pos, yaw, moved = _cars(rng, batch)
    arrays = LapArrays(CarLapConfig())
    t_np, t_jx = track_arrays(track, np, np.float32), track_arrays(track, jnp, jnp.float32)
    cast = [np.asarray(x, np.float32) for x in (pos, yaw, moved)]
    idx_np, idx_jx = np.asarray(index, np.int32), jnp.asarray(index, jnp.int32)

    def run(xp, t, idx, pos, yaw, moved):
        tracker = arrays.start(t, idx, pos, yaw, xp.asarray(0.0, xp.float32), xp)
        driving = xp.ones(idx.shape, bool)
        stepped = arrays.step(t, tracker, moved, yaw + 0.1, xp.full(idx.shape, 9.81, xp.float32), driving,
                              xp.asarray(0.05, xp.float32), xp)
        zeros = xp.zeros(idx.shape, xp.float32)
        vel = xp.stack([zeros + 1.0, zeros], axis=-1)
        uniform = xp.full(idx.shape + (3,), 0.3, xp.float32)
        return (*stepped, arrays.reward(stepped, xp), arrays.success(stepped, xp), arrays.ended(stepped, xp),
                arrays.observe(t, stepped, moved, yaw, vel, zeros, zeros, True, xp),
                arrays.expert(t, stepped, moved, yaw, zeros + 2.0, 0.33, 0.42, xp),
                *arrays.start_pose(t, uniform, xp), arrays.mapping.to_drive(zeros + 0.3, xp))

    ours = run(np, t_np, idx_np, *cast)
    theirs = jax.jit(lambda *args: run(jnp, t_jx, *args))(idx_jx, *[jnp.asarray(x) for x in cast])
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert np.shape(a) == np.shape(b), k
        # float32 both ways; the reward divides an arc-length difference (~20 m scale) by 0.05 s
        np.testing.assert_allclose(np.asarray(b, np.float64), np.asarray(a, np.float64), rtol=1e-5, atol=1e-4,
                                   err_msg=str(k))


def test_locate_follows_the_car_like_a_global_search():
    track = generate_track(4)
    t = track_arrays(track)
    rng = np.random.default_rng(1)
    index = np.asarray(0)
    for s in np.linspace(0.0, 3 * track.length_m, 600):  # three laps in 0.15 m steps, wandering sideways
        i = int(s / track.spacing_m) % track.num_points
        normal = np.array([-track.tangents[i][1], track.tangents[i][0]])
        pos = track.points_m[i] + rng.uniform(-0.7, 0.7) * normal
        index, _, lateral, _ = locate_arrays(t, pos, index, np)
        assert abs(int(index) - track.nearest(pos)) % track.num_points in (0, 1, track.num_points - 1)
        assert abs(lateral) <= 0.75
