"""The JAX quadrotor vector env: the gymnasium VectorEnv API, seeding, SAME_STEP autoreset laid out
as SyncVectorEnv lays out RobotEnv quad envs, terminal observations, the expert flying in it, domain
randomization (ranges, redraw, action delay, observation noise) and clear refusals."""

import gymnasium as gym
import numpy as np
import pytest

jax = pytest.importorskip("jax")

import robot_rl
from robot_rl import registry
from robot_rl.testing.vector import check_seeded_determinism, check_step_arrays
from sim.quad.jax_core import JaxQuadConfig
from sim.quad.jax_env import QuadVectorEnv, make_vector_env
from tasks.quad.hover import make_task

SAME_STEP = gym.vector.AutoresetMode.SAME_STEP
FALL = np.array([-1.0, 0.0, 0.0, 0.0], np.float32)  # residual -1 on the collective: motors off, it falls
SCENARIO = {"max_episode_steps": 150}  # env 0 falls (crashes by step ~110), env 1 holds (truncated at 150)


@pytest.fixture(scope="module")
def env8():
    env = make_vector_env(make_task(), "state", num_envs=8)
    yield env
    env.close()


def test_vector_api_shapes_and_dtypes(env8):
    assert isinstance(env8, gym.vector.VectorEnv) and env8.num_envs == 8
    assert env8.metadata["autoreset_mode"] == SAME_STEP
    assert env8.single_observation_space.shape == (18,) and env8.single_action_space.shape == (4,)
    assert list(env8.state_layout) == ["pos_error_m", "rotation_matrix", "vel_m_s", "body_rates_rad_s"]
    check_step_arrays(env8)


def test_seeded_determinism(env8):
    check_seeded_determinism(env8, lambda: make_vector_env(make_task(), "state", num_envs=8))
def test_the_expert_hovers_in_the_jax_env(env8):
    """The position controller (the task's expert, numpy) from 8 random starts tilted up to 90 deg:
    no crash, final-second position error RMS below 2 cm (measured ~3 mm)."""
    obs, _ = env8.reset(seed=5)
    errors = []
    for _ in range(500):
        state = env8.vehicle_state
        action = env8.arrays.expert(state["pos_m"], state["quat_wxyz"], state["vel_m_s"], state["target_m"], np)
        obs, _, terminated, truncated, info = env8.step(action.astype(np.float32))
        assert not terminated.any()
        errors.append(np.linalg.norm((info["final_obs"] if truncated.any() else obs)[:, :3], axis=1))
    rms = np.sqrt(np.mean(np.square(errors[-100:]), axis=0))
    assert truncated.all() and np.all(rms < 0.02), rms
    assert info["final_info"]["success"].all()


def _info_pattern(info):
    """Keys, dtypes and shapes of one step's infos (final_obs compared separately)."""
    out = {}
    for key, value in info.items():
        if key == "final_info":
            out[key] = _info_pattern(value)
        elif key != "final_obs":
            out[key] = (value.dtype, value.shape)
    return out


def test_same_step_autoreset_layout_matches_sync_vector_env():
    task, entry, options, _ = registry.make_parts("quad_hover", "jax", "state", dict(SCENARIO))
    ours = registry.load(entry.entry_point)(task, "state", 2, **options)
    theirs = gym.vector.SyncVectorEnv([lambda: robot_rl.make("quad_hover", **SCENARIO)] * 2, autoreset_mode=SAME_STEP)
    actions = np.stack([FALL, np.zeros(4, np.float32)])
    try:
        patterns = {}
        for name, env in (("ours", ours), ("theirs", theirs)):
            env.reset(seed=0)
            for _ in range(160):
                _, _, terminated, truncated, info = env.step(actions)
                done = terminated | truncated
                for mask in ("_final_obs", "_final_info"):
                    assert np.array_equal(info.get(mask, np.zeros(2, bool)), done), name
                assert not (info["success"] & done).any() and np.array_equal(info["_executed_action"], ~done)
                assert not (terminated & truncated).any() and not truncated[0] and not terminated[1]
                patterns.setdefault(name, {}).setdefault((bool(terminated[0]), bool(truncated[1])), _info_pattern(info))
                if done.any():
                    final = info["final_obs"]
                    rows = np.stack(final[done]) if final.dtype == object else final[done]
                    assert rows.shape == (done.sum(), 18) and rows.dtype == np.float32
        assert set(patterns["ours"]) >= {(False, False), (True, False), (False, True)}
        for key, pattern in patterns["theirs"].items():
            if key in patterns["ours"]:
                assert patterns["ours"][key] == pattern, key
    finally:
        ours.close()
        theirs.close()


def test_final_obs_is_the_terminal_observation():
    env = make_vector_env(make_task(**SCENARIO), "state", num_envs=2)
    env.reset(seed=1)
    for _ in range(150):
        before = env.vehicle_state
        obs, reward, terminated, _, info = env.step(np.stack([FALL, np.zeros(4, np.float32)]))
        if terminated[0]:
            break
    final = info["final_obs"][0]
    target_z = before["target_m"][0, 2]
    assert final[2] + target_z < env.task.config.crash_height_m, "the terminal obs is on the ground"
    assert reward[0] == env.task.config.crash_reward
    assert obs[0, 2] + env.vehicle_state["target_m"][0, 2] > 0.9, "the returned row is the next episode's start"
    assert not info["_executed_action"][0] and info["final_info"]["_executed_action"][0]


RANDOMIZED = {"mass_scale_range": (0.8, 1.2), "inertia_scale_range": (0.7, 1.3), "thrust_to_weight_range": (1.8, 2.6),
              "motor_time_constant_range_s": (0.05, 0.2), "max_disturbance_force_n": 0.02,
              "max_disturbance_torque_nm": 1e-5, "obs_noise_std": 0.01, "action_delay_steps": (0, 3)}


def test_domain_randomization_stays_in_its_ranges_and_is_redrawn_at_reset(env8):
    env = make_vector_env(make_task(max_episode_steps=3), "state", num_envs=256, **RANDOMIZED)
    obs, _ = env.reset(seed=0)
    p = env.dynamics_params
    mass = p["mass_kg"] / 0.027
    ttw = 4 * p["max_thrust_per_motor_n"] / (p["mass_kg"] * 9.80665)
    for values, (low, high) in ((mass, (0.8, 1.2)), (p["inertia_kg_m2"] / np.array(env.config.inertia_kg_m2), (0.7, 1.3)),
                                (ttw, (1.8, 2.6)), (p["motor_time_constant_s"], (0.05, 0.2)),
                                (p["force_disturbance_n"], (-0.02, 0.02)), (p["action_delay_steps"], (0, 3))):
        assert np.all((values >= low - 1e-6) & (values <= high + 1e-6)) and values.std() > 0.2 * (high - low)
    state = env.vehicle_state
    clean = env.arrays.observe(state["pos_m"], state["quat_wxyz"], state["vel_m_s"], state["rates_rad_s"],
                               state["target_m"], np)
    assert 0.008 < np.std(obs - clean) < 0.012, "observation noise on what the policy sees"
    for _ in range(3):
        env.step(np.zeros((256, 4), np.float32))
    after = env.dynamics_params
    assert not np.any(after["mass_kg"] == p["mass_kg"]) and not np.any(after["motor_time_constant_s"] == p["motor_time_constant_s"])
    env8.reset(seed=0)
    q = env8.dynamics_params
    assert set(q["mass_kg"].tolist()) == {np.float32(0.027)} and not q["action_delay_steps"].any()
    assert not q["force_disturbance_n"].any() and set(q["motor_time_constant_s"].tolist()) == {np.float32(0.15)}


def test_action_delay_applies_commands_late(env8):
    """Full thrust from the first step. Without delay the motors' total thrust rises at once; with a
    2-step delay the first 2 steps fly the queued hover command (total thrust stays at the weight:
    the mixer keeps the collective), the third flies the first full-thrust command."""
    delayed = make_vector_env(make_task(), "state", num_envs=8, action_delay_steps=(2, 2))
    full = np.tile(np.array([[1.0, 0, 0, 0]], np.float32), (8, 1))
    totals = {}
    for name, env in (("none", env8), ("delayed", delayed)):
        env.reset(seed=2)
        totals[name] = []
        for _ in range(3):
            env.step(full)
            totals[name].append(env.vehicle_state["thrust_n"].sum(axis=1))
    weight = 0.027 * 9.80665
    assert np.all(totals["none"][0] > weight + 0.002)
    np.testing.assert_allclose(totals["delayed"][0], weight, rtol=1e-4)
    np.testing.assert_allclose(totals["delayed"][1], weight, rtol=1e-4)
    assert np.all(totals["delayed"][2] > weight + 0.002)
    assert np.all(delayed.dynamics_params["action_delay_steps"] == 2)


def test_clear_refusals(env8):
    with pytest.raises(ValueError, match="state observations only"):
        make_vector_env(make_task(), "pixels", num_envs=4)
    with pytest.raises(ValueError, match="make_vector"):
        robot_rl.make("quad_hover", backend="jax")
    with pytest.raises(ValueError, match="mass_scale_range"):
        JaxQuadConfig(mass_scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="action_delay_steps"):
        JaxQuadConfig(action_delay_steps=(0, 1.5))
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env(make_task(), "state", num_envs=0)
    with pytest.raises(RuntimeError, match="reset"):
        QuadVectorEnv(make_task(), 8).step(np.zeros((8, 4), np.float32))
    with pytest.raises(ValueError, match="geofence"):
        make_vector_env(make_task(fence_low_m=(-5, -5, 0)), "state", num_envs=2)
    env8.reset(seed=0)
    for bad in (np.zeros((8, 3), np.float32), np.zeros(4, np.float32), np.full((8, 4), np.nan, np.float32)):
        with pytest.raises(ValueError, match=r"\(8, 4\)"):
            env8.step(bad)
