"""Driving car_lap in MuJoCo with a gamepad (an SDL virtual joystick read through pygame) and the
terminal keyboard (over a pty), through the ordinary record and intervention paths; and the
pure-pursuit expert as the car's simulated human."""

import contextlib
import dataclasses
import logging
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless, as on a robot computer

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pygame")

import robot_rl  # noqa: E402
from drivers.teleop.car_bindings import (  # noqa: E402
    CAR_GAMEPAD,
    CAR_KEYBOARD,
    CarGamepad,
    CarKeyboard,
    car_action,
    trigger_fraction,
)
from drivers.teleop.testing import wait_for  # noqa: E402
from pad_person import LEFT_X, LT, RT, A, Y, Person  # noqa: E402
from robot_rl import cli  # noqa: E402
from robot_rl.data import read_episode  # noqa: E402
from robot_rl.human import devices  # noqa: E402
from robot_rl.human.devices import DeviceUnavailable, open_device, with_human  # noqa: E402
from robot_rl.human.intervene import InterveneWithTeleop  # noqa: E402
from robot_rl.human.recording import record  # noqa: E402
from robot_rl.human.simulated import SimulatedHumanConfig  # noqa: E402
from tasks.car.base import DriveMapping  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def env():
    env = robot_rl.make("car_lap", obs="state")
    yield env
    env.close()


def car_gamepad(env, pad):
    return CarGamepad.for_env(env, dataclasses.replace(CAR_GAMEPAD, index=pad.index, sample_hz=None))


def forward_speed(state):
    return float(state.forward_speed_m_s)


def test_car_action_maps_triggers_and_stick_through_the_tasks_drive_mapping():
    speed = DriveMapping("speed", min_speed_m_s=-1.0, max_speed_m_s=4.0)  # action -1..1 spans -1..4 m/s
    np.testing.assert_allclose(car_action(0.5, 1.0, 0.0, speed), [1.0, 0.5])  # full throttle: 4 m/s
    np.testing.assert_allclose(car_action(0.0, 0.5, 0.0, speed), [speed.to_action(2.0, np), 0.0])
    np.testing.assert_allclose(car_action(0.0, 1.0, 1.0, speed), [-1.0, 0.0])  # brake wins: full reverse
    no_reverse = DriveMapping("speed", 0.0, 4.0)
    assert car_action(0.0, 0.0, 0.3, no_reverse)[0] == no_reverse.to_action(0.0, np) == -1.0  # brake: 0 m/s
    np.testing.assert_allclose(car_action(-1.0, 0.75, 0.25, DriveMapping("throttle")), [0.5, -1.0])
    assert trigger_fraction(-1.0) == 0.0 and trigger_fraction(1.0) == 1.0 and trigger_fraction(-0.95) == 0.0
    with pytest.raises(ValueError, match="throttle and brake must be in"):
        car_action(0.0, 1.5, 0.0, speed)


def test_steer_and_throttle_drive_the_car_and_releasing_the_dead_man_brakes(env, pad, tmp_path):
    pad.set_button(A, True)  # dead-man
    pad.set_axis(RT, -0.5)  # throttle a quarter pulled: (0.25 - 0.05) / 0.95 of car_lap's 4 m/s
    pad.set_axis(LEFT_X, -0.37)  # stick left: (0.37 - 0.1) / 0.9 = 30 % of the steering angle, to the left
    person = Person(env, {20: lambda: pad.set_button(A, False), 60: lambda: pad.set_button(Y, True)})
    with car_gamepad(env, pad) as device:
        summary = record(person, None, tmp_path, 1, 0, "sim", "gamepad", device=device, keep_failures=True)
    episode = read_episode(summary.files[0], task="car_lap")
    assert episode.metadata["end_reason"] == "human_success" and episode.intervention.all()
    assert "driving a car" in episode.metadata["teleop_device"]
    human = car_action(0.3, trigger_fraction(-0.5), 0.0, env.unwrapped.task.mapping)  # 0.84 m/s, 30 % left
    assert human[0] == pytest.approx(2 * 0.2 / 0.95 - 1) and human[1] == pytest.approx(0.3)
    # the executed actions (what the backend's rate limits let through), once the car has caught up
    np.testing.assert_allclose(episode.actions[10:20], np.tile(human, (10, 1)), atol=1e-4)
    np.testing.assert_allclose(episode.actions[30:], np.tile([-1.0, 0.0], (len(episode) - 30, 1)))  # brake
    states = person.states
    max_steering_rad = env.unwrapped.backend.spec.max_steering_rad
    assert forward_speed(states[19]) > 0.7  # moving, the wheels at 30 % to the left
    assert float(states[19].steering_rad) == pytest.approx(0.3 * max_steering_rad, abs=1e-3)
    yaw_turned = float(states[19].yaw_rad) - float(states[0].yaw_rad)
    assert 0.15 < (yaw_turned + np.pi) % (2 * np.pi) - np.pi  # the car turned left
    assert abs(forward_speed(states[-1])) < 0.05  # braked to a standstill


def test_an_unplugged_pad_hands_the_car_back_to_the_policy_and_stops_a_recording(env, pad, tmp_path, caplog):
    brake = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
    with car_gamepad(env, pad) as device:
        hil = InterveneWithTeleop(env, device)
        hil.reset(seed=1)
        pad.set_button(A, True)
        pad.set_axis(RT, 1.0)
        infos = [hil.step(brake)[-1] for _ in range(10)]
        assert all(i["intervention"] for i in infos) and forward_speed(env.unwrapped.state) > 0.5
        with caplog.at_level(logging.WARNING):
            pad.detach()
            infos = [hil.step(brake)[-1] for _ in range(30)]
        assert not any(i["intervention"] for i in infos)
        np.testing.assert_array_equal(infos[-1]["executed_action"], brake)  # the policy's action runs
        assert abs(forward_speed(env.unwrapped.state)) < 0.05
        assert any("unplugged" in r.getMessage() for r in caplog.records)
        with pytest.raises(DeviceUnavailable, match="stopped delivering input"):
            record(env, None, tmp_path, 1, 0, "sim", "gamepad", device=device)
    assert not list(tmp_path.glob("*.npz"))


def test_robot_rl_record_car_lap_teleop_gamepad_opens_the_car_bindings(pad, tmp_path, capsys):
    if pad.index != 0:
        pytest.skip("another gamepad is plugged in; `robot-rl record` opens the first one")
    pad.set_button(Y, True)  # success at the first poll: a one-step human episode
    argv = ["record", "--task", "car_lap", "--teleop", "gamepad", "--episodes", "1", "--out", str(tmp_path),
            "--video-episodes", "0"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    episode = read_episode(tmp_path / "episode_000000.npz", task="car_lap")
    assert episode.metadata["end_reason"] == "human_success" and "driving a car" in episode.metadata["teleop_device"]
    np.testing.assert_allclose(episode.actions[0], [-1.0, 0.0])  # dead-man not held: the brake


def test_open_device_picks_the_bindings_of_the_tasks_family(env, pad, monkeypatch):
    with contextlib.ExitStack() as stack:
        if pad.index != 0:
            pytest.skip("another gamepad is plugged in; open_device opens the first one")
        device = open_device("gamepad", env, stack)
        assert isinstance(device, CarGamepad) and device.action_shape == (2,)
        pad.set_button(A, True)
        pad.set_axis(LT, 1.0)  # full brake
        event = wait_for(lambda: (e := device.poll()).intervening and e)  # sampled at 200 Hz by its thread
        assert event.action.tolist() == [-1.0, 0.0]
    quad = robot_rl.make("quad_hover", obs="state")
    with pytest.raises(ValueError, match="the car bindings drive car tasks; 'quad_hover' is not one"):
        CarGamepad.for_env(quad)
    # a plugin's device with bindings for some families only (the registry's contents, as its entry
    # point would declare them)
    monkeypatch.setattr(devices, "_found", ({"pedals@car": "drivers.teleop.car_bindings:CarGamepad"}, []))
    assert "pedals" in devices.device_names()
    with pytest.raises(ValueError, match=r"'pedals' has bindings only for the families \['car'\]; this task's "
                                         r"family is 'quadrotor'"):
        open_device("pedals", quad, contextlib.ExitStack())
    quad.close()


def test_the_keyboard_drives_the_car_with_wasd(env):
    master, slave = os.openpty()
    try:
        with CarKeyboard.for_env(env, dataclasses.replace(CAR_KEYBOARD, fd=slave)) as keyboard:
            os.write(master, b"wa")
            event = keyboard.poll()
            assert event.intervening and event.action.tolist() == [0.0, 1.0]  # half speed (2 m/s), full left
            os.write(master, b"sd")  # a key overrides the opposite one on its axis
            assert keyboard.poll().action.tolist() == [-1.0, -1.0]  # brake (0 m/s), full right
    finally:
        os.close(master)
        os.close(slave)


def drive(env, policy, steps):
    """A fresh episode (seed 2) of at most ``steps`` steps; every step's info."""
    env.reset(seed=2)
    infos = []
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(policy())
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def test_the_pure_pursuit_expert_is_the_simulated_human_for_car_lap(env):
    expert = env.unwrapped.task.expert
    with contextlib.ExitStack() as stack:
        hil = with_human(env, "simulated", stack)
        infos = drive(hil, lambda: expert(env.unwrapped.state), 120)
        # it agrees with a policy driving like it; the stall test watches metres along the track, not
        # the reward (a speed, flat while cruising, which fired it every 20 steps)
        assert len(infos) == 120 and not any(i["intervention"] for i in infos)
        brake = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)
        stall_only = with_human(env, "simulated", stack, SimulatedHumanConfig(triggers=("stall",)))
        infos = drive(stall_only, lambda: brake, 120)
    takeovers = [k for k, i in enumerate(infos) if i["intervention"]]
    assert takeovers and takeovers[0] == 20  # a stopped car makes no progress for 20 steps: the expert drives
    assert stall_only.device.trigger_counts["stall"] >= 1
    assert env.unwrapped.task.progress(env.unwrapped.state) > 0.8  # and drives it on along the track


@pytest.mark.slow  # ~9 s on a loaded 2-core machine: a real (tiny) training run
def test_train_hil_gamepad_on_car_lap_stores_the_humans_steps_as_interventions(pad, tmp_path):
    if pad.index != 0:
        pytest.skip("another gamepad is plugged in; --hil gamepad opens the first one")
    from robot_rl.agents.sac import SACConfig
    from robot_rl.data import read_episodes
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.data.schema import ObsSpec
    from robot_rl.envs import EnvConfig
    from robot_rl.train.collect import add_intervention_segments
    from robot_rl.train.config import TrainConfig
    from robot_rl.train.loop import train

    pad.set_button(A, True)  # the human drives the whole run
    pad.set_axis(RT, -0.5)
    cfg = TrainConfig(env=EnvConfig(task="car_lap"), steps=120, out=tmp_path, name="hil", hil="gamepad",
                      eval_every=100000, eval_episodes=1, checkpoint_every=100000, learning_starts=64, random_steps=64,
                      video_episodes=0, sac=SACConfig(hidden_dims=(32, 32), batch_size=32))
    train(cfg)
    episodes, errors = read_episodes(tmp_path / "hil" / "episodes", task="car_lap")
    assert episodes and not errors and all(e.intervention.all() for e in episodes)
    human = car_action(0.0, trigger_fraction(-0.5), 0.0, DriveMapping())
    np.testing.assert_allclose(episodes[0].actions[10:20], np.tile(human, (10, 1)), atol=1e-4)
    buffer = ReplayBuffer(ObsSpec(episodes[0].observations["state"].shape[1], {}, ()), 2, 1000, name="demos")
    assert sum(add_intervention_segments(buffer, e) for e in episodes) == sum(len(e) for e in episodes) == len(buffer)
