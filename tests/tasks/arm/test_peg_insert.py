"""peg_insert: the expert, reward/termination, the reset distribution, the contact force bound
during a jammed insertion, and the array functions under numpy and jax."""

import dataclasses

import numpy as np
import pytest

import robot_rl
from robot_rl.testing.expert import run_expert
from tasks.arm import peg_insert
from tasks.arm.held_actions import HeldToolActions
from tasks.arm.peg_insert import PegInsert, PegInsertConfig

CFG = PegInsertConfig()


def test_expert_inserts_the_peg_in_at_least_90_percent_of_10_seeded_resets():
    """(50 seeds: benchmarks/peg_insert.py --expert-episodes 50.)"""
    env = robot_rl.make("peg_insert")
    try:
        results = [run_expert(env, seed) for seed in range(10)]
    finally:
        env.close()
    successes = sum(r[0] for r in results)
    assert successes >= 9, f"expert succeeded in {successes}/10"
    for success, terminated, total, steps in results:  # sparse: 1 on the terminating success step
        assert total == (1.0 if success else 0.0) and terminated == success
        assert steps < CFG.max_episode_steps or not success


def test_success_means_the_tip_is_inside_the_hole_and_deep_enough():
    env = robot_rl.make("peg_insert")
    try:
        success, *_ = run_expert(env, 3)
        state = env.unwrapped.state
        hole_top = state.objects["hole"][:3] + [0.0, 0.0, CFG.hole_depth_m / 2]
        tip = peg_insert.peg_tip_arrays(state.objects["peg"], CFG.peg_half_length_m, np)
        assert success
        assert np.abs(tip[:2] - hole_top[:2]).max() <= CFG.clearance_m / 2 + 1e-4, "the walls keep the tip centred"
        assert hole_top[2] - tip[2] >= CFG.insert_depth_m
        # The peg hangs rigidly below the TCP, pointing down, 5 cm of it beyond the TCP.
        np.testing.assert_allclose(tip, state.tcp_pos_m - [0.0, 0.0, CFG.tip_below_tcp_m], atol=1e-3)
    finally:
        env.close()


def test_dense_reward_grows_toward_the_hole_and_is_one_at_success():
    env = robot_rl.make("peg_insert", dense_reward=True)
    try:
        env.reset(seed=5)
        task, rewards = env.unwrapped.task, []
        while True:
            _, reward, terminated, truncated, info = env.step(task.expert(env.unwrapped.state))
            rewards.append(reward)
            if terminated or truncated:
                break
        assert info["success"] and rewards[-1] == 1.0
        assert 0.0 < rewards[0] < rewards[-2] < 1.0
    finally:
        env.close()


def test_reset_distribution_is_seeded_and_covers_the_ranges():
    env = robot_rl.make("peg_insert")
    try:
        holes, offsets = [], []
        for seed in range(10):
            obs, _ = env.reset(seed=seed)
            layout = env.unwrapped.state_layout
            holes.append(env.unwrapped.state.objects["hole"][:3].copy())
            offsets.append(obs[layout["peg_tip_minus_hole_top_cm"]] / 100.0)
            np.testing.assert_allclose(obs[layout["hole_top_m"]], holes[-1] + [0, 0, CFG.hole_depth_m / 2], atol=1e-6)
        holes, offsets = np.array(holes), np.array(offsets)
        assert np.all(holes[:, :2] >= np.array(CFG.hole_low_m) - 1e-9) and np.all(holes[:, :2] <= np.array(CFG.hole_high_m) + 1e-9)
        assert np.ptp(holes[:, 0]) > 0.05 and np.ptp(holes[:, 1]) > 0.08
        np.testing.assert_allclose(holes[:, 2], CFG.hole_depth_m / 2)
        # The settled start is within a few mm of the drawn offset (the controller settles for 0.2 s).
        assert np.all(offsets >= np.array(CFG.start_low_m) - 0.004) and np.all(offsets <= np.array(CFG.start_high_m) + 0.004)
        # Same seed, same start: the whole observation (hole, peg, arm) repeats exactly.
        np.testing.assert_array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])
    finally:
        env.close()


def test_actions_move_the_tcp_and_keep_holding_the_peg():
    env = robot_rl.make("peg_insert")
    try:
        assert env.action_space.shape == (3,)
        env.reset(seed=0)
        before = env.unwrapped.state.tcp_pos_m.copy()
        for _ in range(5):
            _, _, _, _, info = env.step(np.array([1.0, 0.0, 0.0], dtype=np.float32))
        state = env.unwrapped.state
        assert 0.01 < state.tcp_pos_m[0] - before[0] < 5 * CFG.actions.step_m + 0.002
        assert state.gripper_width_m == pytest.approx(2 * CFG.peg_half_width_m, abs=1e-3), "the fingers stay closed on the peg"
        assert info["executed_action"].shape == (3,)
    finally:
        env.close()


# --------------------------------------------------------------------------- jammed insertion
def jam_on_rim(gap_m: float, control_steps: int, command):
    """Start with the peg's tip ``gap_m`` above the hole's rim (its inner face flush with the
    opening's edge), drive ``command(task, backend, state)`` every control period; return the
    contact force magnitude [N] at every 500 Hz physics tick, and the env."""
    rim_x_m = CFG.opening_half_m + CFG.peg_half_width_m
    env = robot_rl.make("peg_insert", start_low_m=(rim_x_m, 0.0, gap_m), start_high_m=(rim_x_m, 0.0, gap_m))
    env.reset(seed=0)
    task, backend = env.unwrapped.task, env.unwrapped.backend
    ticks = int(round(1.0 / (env.unwrapped.control_hz * backend.model.opt.timestep)))
    forces = []
    for _ in range(control_steps):
        backend.command(command(task, backend, backend.read_state()))
        for _ in range(ticks):
            backend.sync(backend.model.opt.timestep)
            forces.append(backend.read_state().ext_wrench_n_nm[:3])
    return np.array(forces), env


def push_down_action(task, backend, state):
    """The strongest downward push the task's actions allow."""
    return task.action_to_command(np.array([0.0, 0.0, -1.0]), state, backend.spec)


@pytest.mark.parametrize("gap_m", [0.002, 0.0148, 0.03])  # 0.0148: the worst of a 1-39 mm scan
def test_peak_contact_force_of_a_jammed_insertion_stays_under_the_reference_limit(gap_m):
    """The policy pushes the peg onto the rim as hard and as fast as its actions allow: impact
    included, the contact force never exceeds the controller's spring bound K * |clip|."""
    forces, env = jam_on_rim(gap_m, int(gap_m / CFG.actions.step_m * 1.5) + 10, push_down_action)
    try:
        impedance = env.unwrapped.backend.controller.config
        bound_n = impedance.stiffness_pos_n_m * float(np.linalg.norm(impedance.clip_pos_m))
        magnitude = np.linalg.norm(forces, axis=1)
        assert magnitude.max() > 5.0, "the peg must have hit the rim"
        assert magnitude.max() <= bound_n, f"peak {magnitude.max():.1f} N > bound {bound_n:.1f} N"
        # Jammed: the push settles at K * step (the action's reach below the measured TCP).
        assert forces[-1][2] == pytest.approx(impedance.stiffness_pos_n_m * CFG.actions.step_m, rel=0.05)
        assert not env.unwrapped.task.success(env.unwrapped.backend.read_state())
    finally:
        env.close()


def test_jammed_push_toward_any_depth_settles_at_stiffness_times_clip():
    """A target far below the rim (what a runaway policy or a bad script could send straight to
    the backend) still pushes with no more than the clipped spring, K * clip_z."""

    def deep_target(task, backend, state):
        return dataclasses.replace(push_down_action(task, backend, state), tcp_pos_m=state.tcp_pos_m - [0.0, 0.0, 0.20])

    forces, env = jam_on_rim(0.001, 15, deep_target)
    try:
        impedance = env.unwrapped.backend.controller.config
        steady = forces[-100:]  # the last 0.2 s
        assert np.ptp(steady, axis=0).max() < 0.5
        assert steady[:, 2].mean() == pytest.approx(impedance.stiffness_pos_n_m * impedance.clip_pos_m[2], rel=0.05)
        assert np.abs(env.unwrapped.task._tip_minus_top(env.unwrapped.backend.read_state())[2]) < 5e-4, "the rim holds the peg"
    finally:
        env.close()


# --------------------------------------------------------------------------- array functions
def array_rules(xp, tip_minus_top, peg_pose, tcp, vel, top, uniform):
    cfg = CFG
    success = peg_insert.success_arrays(tip_minus_top, cfg.insert_depth_m, cfg.opening_half_m, xp)
    tip = peg_insert.peg_tip_arrays(peg_pose, cfg.peg_half_length_m, xp)
    return {
        "tip": tip,
        "obs": peg_insert.observe_arrays(tcp, vel, top, tip, xp),
        "success": success,
        "sparse": peg_insert.reward_arrays(tip_minus_top, success, cfg.insert_depth_m, False, xp),
        "dense": peg_insert.reward_arrays(tip_minus_top, success, cfg.insert_depth_m, True, xp),
        "expert": peg_insert.expert_arrays(tip_minus_top, cfg.opening_half_m, cfg.expert_align_m, cfg.expert_hover_m,
                                           cfg.insert_depth_m, cfg.actions.step_m, xp),
        "start": peg_insert.start_arrays(uniform, cfg.hole_low_m, cfg.hole_high_m, cfg.start_low_m, cfg.start_high_m, xp),
    }


def test_array_functions_agree_between_numpy_and_jax():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    n = 256
    tip_minus_top = (rng.uniform(-0.03, 0.03, (n, 3))).astype(np.float32)
    tip_minus_top[: n // 4, :2] *= 0.02  # some inside the opening, some deep enough
    quat = rng.normal(size=(n, 4))
    peg_pose = np.concatenate([rng.uniform(-1, 1, (n, 3)), quat / np.linalg.norm(quat, axis=1, keepdims=True)], axis=1).astype(np.float32)
    others = [rng.uniform(-1, 1, (n, 3)).astype(np.float32) for _ in range(3)] + [rng.uniform(size=(n, 5)).astype(np.float32)]
    ours = array_rules(np, tip_minus_top, peg_pose, *others)
    theirs = jax.jit(lambda *arrays: array_rules(jax.numpy, *arrays))(tip_minus_top, peg_pose, *others)  # one compile
    assert 0 < ours["success"].sum() < n, "the batch must hold successes and failures"
    for key, value in ours.items():
        for a, b in zip(value if isinstance(value, tuple) else (value,), theirs[key] if isinstance(value, tuple) else (theirs[key],)):
            np.testing.assert_allclose(np.asarray(b), a, rtol=1e-5, atol=1e-6, err_msg=key)


def test_tip_of_a_top_down_peg_is_below_its_centre():
    pose = np.array([0.5, 0.1, 0.2, 0.0, 1.0, 0.0, 0.0])  # TOP_DOWN_QUAT_WXYZ: the peg's +z points down
    np.testing.assert_allclose(peg_insert.peg_tip_arrays(pose, 0.035, np), [0.5, 0.1, 0.165], atol=1e-12)


# --------------------------------------------------------------------------- config
def test_invalid_config_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="max_episode_steps"):
        PegInsertConfig(max_episode_steps=0)
    with pytest.raises(ValueError, match="clearance_m"):
        PegInsertConfig(clearance_m=0.03)
    with pytest.raises(ValueError, match="insert_depth_m"):
        PegInsertConfig(insert_depth_m=0.03)
    with pytest.raises(ValueError, match="HeldToolActions"):
        PegInsertConfig(actions=peg_insert.ArmTask.actions)
    with pytest.raises(ValueError, match="shape"):
        PegInsert().actions.to_target(np.zeros(4), None, None)


def test_rotation_actions_add_three_dimensions_the_expert_holds_still():
    env = robot_rl.make("peg_insert", actions=HeldToolActions(step_m=0.004, rotation=True))
    try:
        assert env.action_space.shape == (6,)
        env.reset(seed=0)
        action = env.unwrapped.task.expert(env.unwrapped.state)
        assert action.shape == (6,) and np.all(action[3:] == 0.0)
        env.step(action)
    finally:
        env.close()
