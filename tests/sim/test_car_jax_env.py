"""The car's natively batched JAX env: registration, spaces and dtypes, no aliasing, seeding, the
SAME_STEP info layout against gymnasium's SyncVectorEnv over MuJoCo RobotEnvs, final_obs, the
expert, domain randomization, clear refusals, and agreement with the MuJoCo car."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import robot_rl
from robot_rl import registry
from robot_rl.backends.car import CarCommand
from robot_rl.testing.vector import (
    check_same_step_layout,
    check_seeded_determinism,
    check_step_arrays,
)
from sim.car.backend import MujocoCar, MujocoCarConfig
from sim.car.dynamics import Bicycle
from sim.car.jax_env import CarVectorEnv, JaxCarConfig, make_vector_env
from sim.car.jax_step import control_period
from tasks.car.lap import make_task

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
# env 0 creeps forward at 0.15 m/s: driving without progress, stuck after 0.12 s (step 3);
# env 1 holds still: truncated at the time limit (step 5)
SCENARIO = {"max_episode_steps": 5, "stuck_s": 0.12, "recovery_s": 0.1}
CREEP, HOLD = [-0.925, 0.0], [-1.0, 0.0]


@pytest.fixture(scope="module")
def env8():
    return robot_rl.make_vector("car_lap", backend="jax", num_envs=8)


def test_registered_natively_batched(env8):
    entry = registry.backends("car")[("car", "jax")]
    assert entry.batched and isinstance(env8, CarVectorEnv) and env8.num_envs == 8
    assert env8.metadata["autoreset_mode"] == SAME_STEP
    assert env8.single_observation_space.shape == (17,) and env8.single_action_space.shape == (2,)
    assert list(env8.state_layout) == ["vel_body_m_s", "yaw_rate_rad_s", "steering_rad", "lateral_m",
                                       "heading_sin_cos", "lookahead_body_m"]
    assert np.array_equal(env8.track.points_m, MujocoCar().track.points_m)  # same seed, same track


def test_spaces_dtypes_and_no_aliasing(env8):
    assert env8.single_observation_space.shape == (17,) and env8.single_action_space.shape == (2,)
    obs, info = env8.reset(seed=0)
    assert info == {"success": info["success"], "_success": info["_success"]}
    _, info = check_step_arrays(env8)
    assert info["laps_completed"].dtype == np.int64 and info["lap_time_s"].dtype == np.float64


def test_seeded_determinism(env8):
    check_seeded_determinism(env8, lambda: make_vector_env(make_task(), "state", num_envs=8))
def test_same_step_autoreset_layout_matches_sync_vector_env():
    """Both carry car_lap's metric keys (the MuJoCo side through the task's info(state))."""
    task, entry, backend_options, _ = registry.make_parts("car_lap", "jax", "state", dict(SCENARIO))
    ours = registry.load(entry.entry_point)(task, "state", 2, **backend_options)
    theirs = gym.vector.SyncVectorEnv([lambda: robot_rl.make("car_lap", **SCENARIO)] * 2,
                                      autoreset_mode=SAME_STEP)
    actions = np.array([CREEP, HOLD], np.float32)
    try:
        check_same_step_layout(ours.reset(seed=0)[1], theirs.reset(seed=0)[1], "reset")
        seen = set()
        for t in range(1, 11):
            step_a, step_b = ours.step(actions), theirs.step(actions)
            for a, b in zip(step_a[1:4], step_b[1:4]):
                assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(step_a[2], step_b[2])
            np.testing.assert_array_equal(step_a[3], step_b[3])
            check_same_step_layout(step_a[4], step_b[4], f"step {t}")
            seen |= {(t, i) for i in np.flatnonzero(step_a[3])}
        assert seen == {(3, 0), (6, 0), (9, 0), (5, 1), (10, 1)}, seen
    finally:
        ours.close()
        theirs.close()


def test_final_obs_is_the_terminal_observation():
    env = make_vector_env(make_task(**SCENARIO), "state", num_envs=2)
    layout = env.state_layout
    env.reset(seed=1)
    for t in range(1, 4):
        obs, _, _, truncated, info = env.step(np.array([CREEP, HOLD], np.float32))
    assert truncated.tolist() == [True, False] and info["_final_obs"].tolist() == [True, False]
    final = info["final_obs"][0]
    assert 0.08 < final[layout["vel_body_m_s"]][0] < 0.16  # still creeping (toward 0.15 m/s)
    assert obs[0, layout["vel_body_m_s"]][0] == 0.0 and not np.allclose(obs[0], final)  # a fresh start
    assert not info["_executed_action"][0] and info["final_info"]["_executed_action"].tolist() == [True, False]
    np.testing.assert_allclose(info["final_info"]["executed_action"][0], CREEP, atol=1e-6)
    assert np.all(info["final_obs"][1] == 0.0)


def test_the_expert_laps_without_collisions(env8):
    env8.reset(seed=5)
    collided, laps = False, np.zeros(8, int)
    for _ in range(249):
        _, _, _, truncated, info = env8.step(env8.expert_actions())
        collided |= bool(info["collided"].any())
        laps = np.maximum(laps, info["laps_completed"])
        assert not truncated.any()
    assert not collided and laps.min() >= 1
    lap_times = info["lap_time_s"]
    assert np.all((lap_times > 5.0) & (lap_times < 12.0)) and np.all(info["success"])


def test_a_collision_truncates_with_the_crash_penalty(env8):
    env8.reset(seed=0)
    actions = np.array([[1.0, 1.0]] * 8, np.float32)  # full speed, full left lock: into a wall
    for _ in range(60):
        _, reward, terminated, truncated, info = env8.step(actions)
        if truncated.any():
            break
    i = int(np.flatnonzero(truncated)[0])
    assert not terminated.any() and info["final_info"]["collided"][i] and not info["collided"][i]
    assert reward[i] < -5.0  # progress per second minus the crash penalty (10)


def test_domain_randomization_stays_in_its_ranges_and_is_redrawn_at_reset(env8):
    ranges = {"mass_range_kg": (3.0, 4.5), "friction_range": (0.6, 1.2), "steering_delay_range_s": (0.0, 0.05),
              "motor_gain_range": (0.8, 1.2)}
    env = make_vector_env(make_task(max_episode_steps=2), "state", num_envs=64, **ranges)
    env.reset(seed=0)
    before = env.dynamics_params
    for (name, (low, high)), values in zip(ranges.items(), before.values()):
        assert np.all((values >= low) & (values <= high)), name
        assert values.std() > 0.2 * (high - low), f"{name} is not spread over its range"
    for _ in range(2):
        env.step(np.zeros((64, 2), np.float32))
    after = env.dynamics_params
    assert all(not np.any(after[name] == before[name]) for name in after)
    env8.reset(seed=0)  # nominal: no ranges
    assert {k: set(v.tolist()) for k, v in env8.dynamics_params.items()} == {
        "mass_kg": {np.float32(3.74)}, "friction": {np.float32(1.0489)}, "steering_delay_s": {0.0}, "motor_gain": {1.0}}


def test_clear_refusals(env8):
    with pytest.raises(ValueError, match="state observations only"):
        make_vector_env(make_task(), "pixels", num_envs=4)
    with pytest.raises(ValueError, match="make_vector"):
        robot_rl.make("car_lap", backend="jax")
    with pytest.raises(ValueError, match="friction_range"):
        JaxCarConfig(friction_range=(1.2, 0.6))
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env(make_task(), "state", num_envs=0)
    with pytest.raises(RuntimeError, match="reset"):
        CarVectorEnv(make_task(), 8).step(np.zeros((8, 2), np.float32))
    with pytest.raises(ValueError, match="array functions"):
        CarVectorEnv(registry.load(registry.lookup("puck_reach").entry_point)(), 8)
    env8.reset(seed=0)
    for bad in (np.zeros((8, 3), np.float32), np.zeros(2, np.float32), np.full((8, 2), np.nan, np.float32)):
        with pytest.raises(ValueError, match=r"\(8, 2\)"):
            env8.step(bad)


def test_jax_model_agrees_with_the_mujoco_car_on_an_open_loop_manoeuvre():
    """1 s accelerating to 2 m/s straight, then 1.5 s at 0.25 rad steering (~4.7 m, a 1.3 m radius
    turn at 3 m/s^2), the same executed commands into both. Tolerances: position 0.3 m, yaw
    0.15 rad, forward speed 0.15 m/s, yaw rate in the turn 6 %. The difference is tyre slip: the
    JAX model's tyres have the published cornering stiffness (its rear axle slips ~0.1 m/s sideways
    in this turn), MuJoCo's point contacts are laterally stiffer (~0.035 m/s)."""
    mujoco_car = MujocoCar(MujocoCarConfig(track_mean_radius_m=15.0))
    p = JaxCarConfig()
    step = jax.jit(lambda car, servo, old, new, speed: control_period(
        p, car, servo, old, new, speed, True, p.mass_kg, p.friction, 0.0, 1.0, 5))
    car = Bicycle(jnp.zeros(2), *(jnp.float32(0.0),) * 4)
    servo = old = jnp.float32(0.0)
    errors = []
    with mujoco_car:
        mujoco_car.set_pose(np.zeros(2), 0.0)
        for steering, speed in [(0.0, 2.0)] * 20 + [(0.25, 2.0)] * 30:
            sent = mujoco_car.command(CarCommand(steering_rad=steering, speed_m_s=speed))
            mujoco_car.sync(0.05)
            car, servo = step(car, servo, old, jnp.float32(sent.steering_rad), jnp.float32(sent.speed_m_s))
            old = jnp.float32(sent.steering_rad)
            s = mujoco_car.read_state()
            errors.append([np.linalg.norm(s.pos_m - np.asarray(car.pos_m)), abs(s.yaw_rad - float(car.yaw_rad)),
                           abs(s.vel_body_m_s[0] - float(car.vx_m_s)), s.yaw_rate_rad_s, float(car.yaw_rate_rad_s)])
    errors = np.array(errors)
    assert errors[:20, 0].max() < 0.05  # straight: speed control and motor agree
    assert errors[:, 0].max() < 0.3 and errors[:, 1].max() < 0.15 and errors[:, 2].max() < 0.15
    np.testing.assert_allclose(errors[-1, 4], errors[-1, 3], rtol=0.06)
