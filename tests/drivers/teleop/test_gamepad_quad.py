"""Flying quad_hover in MuJoCo with a gamepad (an SDL virtual joystick read through pygame) at the
velocity level, through the ordinary record and intervention paths; and the position controller as
the quadrotor's simulated human."""

import contextlib
import dataclasses
import logging
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless, as on a robot computer

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pygame")

import robot_rl  # noqa: E402
from drivers.quad.rotations import yaw_arrays  # noqa: E402
from drivers.teleop.quad_bindings import QUAD_GAMEPAD, QuadGamepad, QuadPadLimits, velocity_command_world  # noqa: E402
from drivers.teleop.testing import wait_for  # noqa: E402
from pad_person import LEFT_X, LEFT_Y, RB, RIGHT_X, RIGHT_Y, Y, Person  # noqa: E402
from robot_rl.data import read_episode  # noqa: E402
from robot_rl.human.devices import open_device, with_human  # noqa: E402
from robot_rl.human.intervene import InterveneWithTeleop  # noqa: E402
from robot_rl.human.recording import record  # noqa: E402
from robot_rl.human.simulated import SimulatedHumanConfig  # noqa: E402

pytestmark = pytest.mark.timeout(60)

START_M = (-0.8, 0.0, 1.5)


@pytest.fixture(scope="module")
def env():
    """quad_hover starting level and at rest at START_M (the target), heading random."""
    env = robot_rl.make("quad_hover", obs="state", target_low_m=START_M, target_high_m=START_M,
                        start_offset_m=(0.0, 0.0, 0.0), max_initial_tilt_rad=0.0, max_initial_speed_m_s=0.0,
                        max_initial_rate_rad_s=0.0)
    yield env
    env.close()


def quad_gamepad(env, pad, frame):
    config = dataclasses.replace(QUAD_GAMEPAD, index=pad.index, sample_hz=None)
    return QuadGamepad.for_env(env, config, QuadPadLimits(frame=frame))


def heading(state):
    return float(yaw_arrays(state.quat_wxyz, np))


def test_the_heading_frame_turns_stick_forward_into_the_vehicles_forward():
    quarter_turn = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # facing world +y
    vel, yaw_rate = velocity_command_world(np.array([1.0, 0.0, 0.5, -1.0]), quarter_turn, QuadPadLimits())
    np.testing.assert_allclose(vel, [0.0, 1.0, 0.25], atol=1e-12)
    assert yaw_rate == -1.5
    vel, _ = velocity_command_world(np.array([1.0, 0.0, 0.0, 0.0]), quarter_turn, QuadPadLimits(frame="world"))
    np.testing.assert_allclose(vel, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="frame must be one of"):
        QuadPadLimits(frame="body")


def test_left_stick_flies_world_x_and_releasing_the_dead_man_hovers_in_place(env, pad, tmp_path):
    pad.set_button(RB, True)  # dead-man
    pad.set_axis(LEFT_Y, -1.0)  # left stick up: +x at 1 m/s (world frame)
    person = Person(env, {100: lambda: pad.set_button(RB, False), 250: lambda: pad.set_button(Y, True)})
    with quad_gamepad(env, pad, "world") as device:
        summary = record(person, None, tmp_path, 1, 0, "sim", "gamepad", device=device, keep_failures=True)
    episode = read_episode(summary.files[0], task="quad_hover")
    assert episode.metadata["end_reason"] == "human_success" and episode.intervention.all()
    assert "flying a quadrotor (world frame)" in episode.metadata["teleop_device"]
    pos = np.array([s.pos_m for s in person.states])
    vel = np.array([s.vel_m_s for s in person.states])
    assert vel[99, 0] > 0.7 and np.all(np.abs(vel[99, 1:]) < 0.1)  # flying +x at most of 1 m/s, level
    assert pos[99, 0] - START_M[0] > 0.5 and np.all(np.abs(pos[99, 1:] - START_M[1:]) < 0.05)
    np.testing.assert_array_equal(episode.actions[101:], 0.0)  # released: the hold action, the fallback
    assert np.linalg.norm(vel[-1]) < 0.05  # it stopped ...
    assert np.linalg.norm(pos[-1] - pos[-50]) < 0.02  # ... and holds its position
    assert pos[-1, 2] == pytest.approx(START_M[2], abs=0.1)


def test_heading_frame_climb_and_yaw_through_intervention(env, pad):
    with quad_gamepad(env, pad, "yaw") as device:
        hil = InterveneWithTeleop(env, device)
        hil.reset(seed=1)
        hover = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
        start = env.unwrapped.state
        pad.set_button(RB, True)
        pad.set_axis(LEFT_Y, -1.0)  # forward, along the heading
        pad.set_axis(RIGHT_Y, -1.0)  # climb at 0.5 m/s
        infos = [hil.step(hover)[-1] for _ in range(80)]
        assert all(i["intervention"] for i in infos)
        state = env.unwrapped.state
        moved = state.pos_m - start.pos_m
        facing = np.array([np.cos(heading(start)), np.sin(heading(start))])
        assert moved[:2] @ facing > 0.4 and abs(facing[0] * moved[1] - facing[1] * moved[0]) < 0.05  # along the heading
        assert moved[2] > 0.15  # climbed (0.5 m/s after spinning up)
        for axis in (LEFT_Y, RIGHT_Y):
            pad.set_axis(axis, 0.0)
        pad.set_axis(RIGHT_X, 1.0)  # right stick right: turn right (clockwise) at 1.5 rad/s
        before = heading(env.unwrapped.state)
        for _ in range(50):
            hil.step(hover)
        turned = (heading(env.unwrapped.state) - before + np.pi) % (2 * np.pi) - np.pi
        assert -0.9 < turned < -0.4  # ~0.5 s at 1.5 rad/s, after spinning up


def test_an_unplugged_pad_hands_the_quadrotor_back_to_the_policy(env, pad, caplog):
    with contextlib.ExitStack() as stack:
        if pad.index != 0:
            pytest.skip("another gamepad is plugged in; open_device opens the first one")
        device = open_device("gamepad", env, stack)  # the quadrotor's bindings, chosen by the task's family
        assert isinstance(device, QuadGamepad) and "yaw frame" in device.name
        hil = InterveneWithTeleop(env, device)
        hil.reset(seed=2)
        hover = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
        pad.set_axis(LEFT_X, -1.0)  # left: +y in the heading frame
        pad.set_button(RB, True)
        wait_for(lambda: device.poll().intervening)  # its sampler thread reads the pad at 200 Hz
        for _ in range(30):
            info = hil.step(hover)[-1]
        assert info["intervention"] and np.linalg.norm(env.unwrapped.state.vel_m_s) > 0.3
        with caplog.at_level(logging.WARNING):
            pad.detach()
            wait_for(lambda: not device.poll().connected)  # its sampler thread notices within 5 ms
            infos = [hil.step(hover)[-1] for _ in range(150)]
        assert not any(i["intervention"] for i in infos)
        assert np.linalg.norm(env.unwrapped.state.vel_m_s) < 0.05  # the policy (here: hover in place) flies
        assert any("disconnected" in r.getMessage() for r in caplog.records)


def fly(env, policy, seed, steps=500):
    """One episode (at most ``steps``) with ``policy(state)``; every step's info."""
    env.reset(seed=seed)
    infos = []
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(policy(env.unwrapped.state))
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def test_the_position_controller_is_the_simulated_human_for_quad_hover():
    env = robot_rl.make("quad_hover", obs="state")
    task = env.unwrapped.task
    tumbling = np.array([-1.0, 0.5, 0.5, 0.0], dtype=np.float32)  # thrust off, rolling and pitching
    with contextlib.ExitStack() as stack:
        hil = with_human(env, "simulated", stack)
        infos = fly(hil, lambda state: tumbling, seed=3, steps=200)
        assert len(infos) == 200  # no crash (a termination): the expert catches it every time
        assert hil.device.trigger_counts["distance"] >= 1 and hil.device.intervention_steps >= 60
        # a policy flying like the expert is left alone once it holds the target: holding is progress
        infos = fly(hil, task.expert, seed=3, steps=300)
        assert not any(i["intervention"] for i in infos[100:]) and infos[-1]["success"]
        stall_only = with_human(env, "simulated", stack, SimulatedHumanConfig(triggers=("stall",)))
        hover = task.hold_action(env.unwrapped.backend.spec)
        stall_only.reset(seed=1)
        start_m = -task.progress(env.unwrapped.state)
        fly(stall_only, lambda state: hover, seed=1, steps=200)  # stops, but does not fly to the target
        assert stall_only.device.trigger_counts["stall"] >= 2
        assert -task.progress(env.unwrapped.state) < 0.8 * start_m  # the expert brings it closer, burst by burst
    env.close()
