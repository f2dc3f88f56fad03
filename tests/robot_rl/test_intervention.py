"""InterveneWithTeleop on the real pick_cube env, driven by the simulated human, a SpaceMouse over a
fake hidapi and a terminal keyboard over a pty."""

import logging
import os
import time

import gymnasium as gym
import numpy as np
import pytest

import robot_rl
from drivers.teleop.gamepad import Gamepad
from drivers.teleop.keyboard import KeyboardConfig, TerminalKeyboard
from drivers.teleop.spacemouse import SpaceMouse
from drivers.teleop.testing import FakeHidApi, FakeHidDevice
from robot_rl.human.intervene import InterveneWithTeleop
from robot_rl.human.simulated import SimulatedHuman, SimulatedHumanConfig, task_progress
from robot_rl.human.teleop import TeleopDevice

HOLD = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)  # no motion, gripper open: never succeeds


@pytest.fixture
def env():
    env = robot_rl.make("pick_cube", obs="state", max_episode_steps=40)
    yield env
    env.close()


@pytest.fixture
def long_env():
    """Steps run until a reader thread notices an unplug, so the episode must outlast that wait at full
    sim speed (the compiled arm sim does ~200 steps/s): no time limit ends it meanwhile."""
    env = robot_rl.make("pick_cube", obs="state", max_episode_steps=100_000)
    yield env
    env.close()


def expert_now(env):
    return env.unwrapped.task.expert(env.unwrapped.state)


def run_episode(env, policy, seed=0):
    env.reset(seed=seed)
    infos, rewards = [], []
    while True:
        _, reward, terminated, truncated, info = env.step(policy(env))
        infos.append(info)
        rewards.append(reward)
        if terminated or truncated:
            return infos, rewards, terminated, truncated


# ---------------------------------------------------------------------- simulated human, unit level
def test_distance_trigger_needs_k_far_steps_then_drives_hold_steps():
    human = SimulatedHuman(lambda: np.array([1.0, 0.0], np.float32), (2,),
                           SimulatedHumanConfig(triggers=("distance",), distance_threshold=0.5, distance_steps=3, hold_steps=2))
    far, near = np.array([-1.0, 0.0]), np.array([0.9, 0.0])
    assert [human.poll(far).intervening for _ in range(2)] == [False, False]
    assert not human.poll(near).intervening  # the streak restarts
    flags = [human.poll(far).intervening for _ in range(6)]
    assert flags == [False, False, True, True, False, False]
    assert human.interventions == 1 and human.intervention_steps == 2 and human.trigger_counts["distance"] == 1
    assert human.poll(far).intervening  # third far step after the hand-back


def test_stall_trigger_follows_progress():
    level = {"value": 0.0}
    human = SimulatedHuman(lambda: np.zeros(2, np.float32), (2,),
                           SimulatedHumanConfig(triggers=("stall",), stall_steps=3, stall_eps=0.01, hold_steps=1),
                           progress=lambda: level["value"])
    flags = []
    for step in range(8):
        level["value"] += 0.1 if step < 4 else 0.001  # progress, then a plateau
        flags.append(human.poll().intervening)
    assert flags == [False] * 6 + [True, False]  # third poll without progress; then fresh streaks
    assert human.trigger_counts["stall"] == 1


def test_random_trigger_is_seeded():
    def flags(seed):
        human = SimulatedHuman(lambda: np.zeros(2, np.float32), (2,),
                               SimulatedHumanConfig(triggers=("random",), random_prob=0.3, hold_steps=1, seed=seed))
        return [human.poll().intervening for _ in range(50)]

    assert flags(1) == flags(1) and flags(1) != flags(2) and 5 < sum(flags(1)) < 30


def test_simulated_human_config_checks():
    with pytest.raises(ValueError, match="unknown triggers"):
        SimulatedHumanConfig(triggers=("boredom",))
    with pytest.raises(ValueError, match="progress"):
        SimulatedHuman(lambda: np.zeros(2), (2,), SimulatedHumanConfig(triggers=("stall",)))


def test_task_progress_is_dense_even_for_a_sparse_env(env):
    env.reset(seed=0)
    assert env.unwrapped.task.config.dense_reward is False
    progress = task_progress(env)
    before = progress()
    assert 0.0 < before < 0.25  # the reach term of the dense shaping
    for _ in range(8):
        env.step(expert_now(env))
    assert progress() > before


# ---------------------------------------------------------------------- wrapper + simulated human on pick_cube
def test_stalling_policy_is_taken_over_by_the_expert(env):
    config = SimulatedHumanConfig(triggers=("stall",), stall_steps=5, hold_steps=8)
    human = SimulatedHuman.for_env(env, config)
    wrapped = InterveneWithTeleop(env, human)
    env_steps = 0
    wrapped.reset(seed=3)
    while True:
        expected = expert_now(env)  # the simulated human's action if it drives this step
        _, _, terminated, truncated, info = wrapped.step(HOLD)
        env_steps += 1
        np.testing.assert_array_equal(info["policy_action"], HOLD)
        if info["intervention"] and not info["action_clipped"]:
            np.testing.assert_allclose(info["executed_action"], expected, atol=1e-4)
        elif not info["intervention"] and not info["action_clipped"]:
            np.testing.assert_allclose(info["executed_action"], HOLD, atol=1e-4)
        if terminated or truncated:
            break
    assert human.interventions >= 1 and info["intervention_steps"] == human.intervention_steps
    assert info["intervention_rate"] == pytest.approx(human.intervention_steps / env_steps)
    assert info["interventions"] == human.interventions


def test_expert_driving_all_the_time_solves_the_task(env):
    human = SimulatedHuman.for_env(env, SimulatedHumanConfig(triggers=("random",), random_prob=1.0, hold_steps=1))
    wrapped = InterveneWithTeleop(env, human)
    infos, _, terminated, _ = run_episode(wrapped, lambda e: e.action_space.sample())
    assert terminated and infos[-1]["success"] and "human_success" not in infos[-1]
    assert infos[-1]["intervention_rate"] == 1.0 and all(i["intervention"] for i in infos)


def test_distance_trigger_corrects_a_random_policy_and_rates_appear_only_at_episode_end(env):
    human = SimulatedHuman.for_env(env, SimulatedHumanConfig(triggers=("distance",), distance_steps=2, hold_steps=5))
    wrapped = InterveneWithTeleop(env, human)
    wrapped.action_space.seed(0)
    infos, _, _, _ = run_episode(wrapped, lambda e: e.action_space.sample())
    assert any(i["intervention"] for i in infos) and not all(i["intervention"] for i in infos)
    assert all("intervention_rate" not in i for i in infos[:-1])
    assert 0.0 < infos[-1]["intervention_rate"] < 1.0
    assert human.trigger_counts["distance"] == infos[-1]["interventions"]


def test_reset_ends_a_take_over_in_progress():
    env = robot_rl.make("pick_cube", obs="state", max_episode_steps=3)
    human = SimulatedHuman.for_env(env, SimulatedHumanConfig(triggers=("distance",), distance_steps=1, hold_steps=50))
    wrapped = InterveneWithTeleop(env, human)
    infos, _, _, truncated = run_episode(wrapped, lambda e: -expert_now(e))
    assert truncated and all(i["intervention"] for i in infos)
    infos, _, _, _ = run_episode(wrapped, expert_now)  # agrees with the expert: no reason to take over
    assert not any(i["intervention"] for i in infos) and infos[-1]["intervention_rate"] == 0.0
    env.close()


@pytest.mark.parametrize("make_device", [SpaceMouse, Gamepad, TerminalKeyboard])
def test_every_device_is_a_teleop_device_for_pick_cube_and_inert_until_connected(env, make_device):
    device = make_device()  # no device opened, no thread, no terminal change in __init__
    assert isinstance(device, TeleopDevice) and device.action_shape == env.action_space.shape
    assert not device.poll().connected
    InterveneWithTeleop(env, device)
    assert isinstance(SimulatedHuman.for_env(env), TeleopDevice)


def test_action_shape_mismatch_is_a_clear_error(env):
    seven = SimulatedHuman(lambda: np.zeros(7, np.float32), (7,), SimulatedHumanConfig(triggers=("random",)))
    with pytest.raises(ValueError, match=r"shape \(7,\).*shape \(4,\)"):
        InterveneWithTeleop(env, seven)
    with pytest.raises(TypeError, match="not a TeleopDevice"):
        InterveneWithTeleop(env, object())


def test_needs_a_box_action_space():
    discrete = gym.make("CartPole-v1")
    human = SimulatedHuman(lambda: np.zeros(1), (1,), SimulatedHumanConfig(triggers=("random",)))
    with pytest.raises(TypeError, match="Box"):
        InterveneWithTeleop(discrete, human)


# ---------------------------------------------------------------------- wrapper + SpaceMouse over fake hidapi
def test_spacemouse_push_forward_moves_the_tcp_forward_then_unplug_hands_back(long_env, caplog):
    env = long_env
    hid_device = FakeHidDevice()
    with SpaceMouse(hid_api=FakeHidApi([hid_device])) as mouse:
        wrapped = InterveneWithTeleop(env, mouse)
        wrapped.reset(seed=1)
        hid_device.send(bytes([1, 0x00, 0x00, 0xA2, 0xFE, 0x00, 0x00]))  # y = -350: cap pushed away
        deadline = time.monotonic() + 3.0
        while not mouse.poll().intervening:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        start = env.unwrapped.state.tcp_pos_m.copy()
        for _ in range(3):
            _, _, _, _, info = wrapped.step(HOLD)
            assert info["intervention"] and info["executed_action"][0] > 0.9
        moved = env.unwrapped.state.tcp_pos_m - start
        assert moved[0] > 0.02 and abs(moved[1]) < 0.01 and abs(moved[2]) < 0.01  # +x of the base frame
        with caplog.at_level(logging.WARNING, logger="robot_rl.human.intervene"):
            hid_device.unplug()
            deadline = time.monotonic() + 3.0
            while True:
                _, _, terminated, truncated, info = wrapped.step(HOLD)
                if not info["intervention"]:
                    break
                assert time.monotonic() < deadline
            for _ in range(3):
                _, _, terminated, truncated, info = wrapped.step(HOLD)
                assert not info["intervention"] and not (terminated or truncated)
        ours = [r for r in caplog.records if r.name == "robot_rl.human.intervene"]
        assert len(ours) == 1 and "disconnected" in ours[0].getMessage()


# ---------------------------------------------------------------------- wrapper + keyboard buttons over a pty
@pytest.fixture
def typed_env(env):
    master, slave = os.openpty()
    keyboard = TerminalKeyboard(KeyboardConfig(fd=slave))
    keyboard.connect()
    wrapped = InterveneWithTeleop(env, keyboard, success_reward=1.0)
    wrapped.reset(seed=0)
    yield wrapped, lambda data: os.write(master, data)
    keyboard.close()
    os.close(master)
    os.close(slave)


def step_until_done(wrapped, steps=20):
    for _ in range(steps):
        _, reward, terminated, truncated, info = wrapped.step(HOLD)
        if terminated or truncated:
            return reward, terminated, truncated, info
        time.sleep(0.005)
    raise AssertionError("the episode did not end")


def test_human_success_terminates_with_the_success_reward(typed_env):
    wrapped, type_keys = typed_env
    wrapped.step(HOLD)
    type_keys(b"\n")
    reward, terminated, truncated, info = step_until_done(wrapped)
    assert terminated and not truncated and info["human_success"] and reward == 1.0
    assert not info["success"]  # the env's own detector did not see a success
    assert "intervention_rate" in info


@pytest.mark.parametrize("key, flag", [(b"\x7f", "human_failure"), (b"q", None), (b"x", "rerecord")])
def test_failure_end_and_rerecord_truncate(typed_env, key, flag):
    wrapped, type_keys = typed_env
    type_keys(key)
    reward, terminated, truncated, info = step_until_done(wrapped)
    assert truncated and not terminated and reward == 0.0
    if flag:
        assert info[flag] is True
    assert "human_success" not in info
