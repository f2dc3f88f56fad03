"""Learning data flows through ROS 2 topics: car_lap (state) on the ros_car backend, over CdrLoopback (every
message through rosbags' CDR, virtual clock) to a RobotBridge around the MuJoCo car, driven by the training
loop's collection (robot_rl.train.collect.Collector) with SAC updating on what it stores. The episode files hold
the commands the robot node received (after the backend's clipping), and the watchdog never fires."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from drivers.ros2.bridge import RobotBridge
from drivers.ros2.families import family_messages
from drivers.ros2.qos import qos_for
from drivers.ros2.ros_backend import RosCarBackend
from drivers.ros2.ros_backend_config import RosBackendConfig
from drivers.ros2.transport import CdrLoopback
from robot_rl.agents.registry import make_agent
from robot_rl.agents.sac import SACConfig
from robot_rl.data import read_episodes
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.sampling import sample_batch
from robot_rl.env import RobotEnv
from robot_rl.train.collect import Collector
from robot_rl.train.setup import new_replay, spaces_of
from robot_rl.vector import vectorize
from sim.car.backend import MujocoCar, MujocoCarConfig
from tasks.car.course import save_course
from tasks.car.lap import CarLap, CarLapConfig

STEPS, RANDOM_STEPS, EPISODE_STEPS = 70, 40, 30
SMALL = SACConfig(hidden_dims=(32, 32), batch_size=16)


@pytest.fixture()
def car_over_ros(tmp_path):
    """(loopback, robot node around the MuJoCo car, car_lap env on ros_car, commands the node received)."""
    with MujocoCar(MujocoCarConfig(cameras=())) as sim:
        loop = CdrLoopback()
        bridge = RobotBridge(sim, loop)
        bridge.timer = bridge.run_every(0.01)
        received, car = [], family_messages("car")
        loop.subscribe("cmd/ackermann", "ackermann_msgs/msg/AckermannDriveStamped",
                       lambda m: received.append(car.command_from_message("ackermann", m, sim.spec)), qos_for("command"))
        course = save_course(sim.track, tmp_path / "course.npz")  # a real car's course comes from one driven lap
        task = CarLap(CarLapConfig(course=str(course), max_episode_steps=EPISODE_STEPS))
        env = RobotEnv(RosCarBackend(RosBackendConfig(spec=sim.spec), transport=loop), task)
        yield loop, bridge, env, received
        env.close()


def test_car_lap_on_ros_car_collects_the_executed_commands_and_sac_learns_from_them(car_over_ros, tmp_path, caplog):
    loop, bridge, env, received = car_over_ros
    envs = vectorize(lambda: env, 1, "sync")
    spec, action_dim = spaces_of(envs)
    agent = make_agent("sac", spec, action_dim, SMALL)
    online = new_replay(SMALL, spec, action_dim, 1000, "online", 0)
    metadata = episode_metadata("car_lap", "state", spec, envs.single_action_space, env.control_hz, "online",
                                backend="ros_car")
    rng, asked, step_commands, losses = np.random.default_rng(0), [], [], []
    with caplog.at_level(logging.WARNING):
        collector = Collector(envs, spec, online, tmp_path / "episodes", metadata, seed=0)
        for step in range(STEPS):
            before = len(received)
            policy = (lambda obs: rng.uniform(-1.5, 1.5, (1, action_dim))) if step < RANDOM_STEPS else agent.act_batch
            collector.step(lambda obs: asked.append(np.clip(policy(obs), -1, 1)[0]) or asked[-1][None])
            step_commands.append(received[before])  # this step's command; a reset's stop/straightening follow it
            if len(online) >= 2 * SMALL.batch_size:
                losses.append(agent.update(sample_batch(online, None, SMALL, 0.0))["train/critic_loss"])
    episodes, errors = read_episodes(tmp_path / "episodes", task="car_lap")
    assert not errors and len(episodes) >= 2 and all(e.metadata["backend"] == "ros_car" for e in episodes)
    stored = np.concatenate([e.actions for e in episodes])
    n = len(stored)
    assert EPISODE_STEPS <= n <= STEPS
    executed = np.stack([env.task.command_to_action(c, None, env.backend.spec) for c in step_commands[:n]])
    np.testing.assert_allclose(stored, executed, atol=1e-6)  # what the robot received, after the backend's limits
    assert np.max(np.abs(stored - np.array(asked[:n]))) > 0.05  # ... which is not always what the policy asked
    assert len(losses) >= STEPS - 2 * SMALL.batch_size and np.all(np.isfinite(losses))
    assert bridge.stats.timeouts == 0 and bridge.stats.commands_refused == 0  # the node's command timeout
    assert not [r for r in caplog.records if "no command for" in r.getMessage()]  # nor the backend's watchdog
