"""InterveneWithTeleop: a human (or a simulated one) takes over the policy's actions.

Every ``step`` polls the teleop device with the policy's action. While the device reports an
intervention, the human's action is executed instead of the policy's. ``info`` then holds:

- ``intervention`` (bool): the human's action was executed this step;
- ``policy_action``: what the policy proposed (float32 copy);
- ``executed_action``: the env's own ``executed_action`` when it reports one (the action after
  the backend's safety limits: store this one), else the action passed to the env, i.e. the
  human's while intervening;
- at the end of an episode (``terminated or truncated``): ``intervention_steps`` (int),
  ``intervention_rate`` (intervention steps / episode steps) and ``interventions`` (take-overs).

Human buttons end the episode:

- ``success``: ``terminated=True``, ``info["human_success"]=True``; the reward is raised to
  ``success_reward`` (if not None), as a success detector would label it. Terminated because
  the goal is reached: the value target does not bootstrap past it.
- ``failure``: ``truncated=True``, ``info["human_failure"]=True``. Truncated, not terminated:
  the person stopped a bad attempt, the state itself is not terminal (no zero-value target).
- ``end_episode``: ``truncated=True``.
- ``rerecord``: ``truncated=True`` and ``info["rerecord"]=True`` (the caller discards the episode).

A device that disconnects mid-episode stops intervening (the policy continues); a warning is
logged once per disconnection. The wrapper polls but does not own the device: connect and close
it yourself (``with device: ...``).
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.human.teleop import TeleopDevice

log = logging.getLogger(__name__)


class InterveneWithTeleop(gym.Wrapper):
    """Executes the teleop device's action instead of the policy's while the human intervenes."""

    def __init__(self, env: gym.Env, device: TeleopDevice, success_reward: float | None = 1.0) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"InterveneWithTeleop needs a Box action space, got {space}")
        for attr in ("poll", "new_episode", "action_shape"):
            if not hasattr(device, attr):
                raise TypeError(f"{device!r} is not a TeleopDevice: it has no {attr!r}")
        if tuple(device.action_shape) != space.shape:
            raise ValueError(
                f"{device.name} produces actions of shape {tuple(device.action_shape)} but the env's action "
                f"space has shape {space.shape}; give the device an axis map for this env's actions"
            )
        self.device = device
        self.success_reward = success_reward
        self._was_connected = True
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._steps = 0
        self._intervention_steps = 0
        self._interventions = 0
        self._intervening = False

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        self._reset_counters()
        self.device.new_episode()
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        policy_action = np.array(action, dtype=np.float32, copy=True)
        event = self.device.poll(policy_action)
        self._note_connection(event.connected)
        human = event.intervening and event.connected and event.action is not None
        executed = np.asarray(event.action, dtype=np.float32) if human else policy_action
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info = dict(info)
        info["intervention"] = human
        info["policy_action"] = policy_action
        info.setdefault("executed_action", executed)
        self._count(human)
        reward, terminated, truncated = self._apply_buttons(event, info, reward, terminated, truncated)
        if terminated or truncated:
            info.update(self.episode_stats())
        return obs, reward, terminated, truncated, info

    def _note_connection(self, connected: bool) -> None:
        if self._was_connected and not connected:
            log.warning("teleop device %s is disconnected: no interventions, the policy continues", self.device.name)
        self._was_connected = connected

    def _count(self, human: bool) -> None:
        self._steps += 1
        self._intervention_steps += int(human)
        self._interventions += int(human and not self._intervening)
        self._intervening = human

    def _apply_buttons(self, event, info: dict, reward: float, terminated: bool, truncated: bool):
        if event.success:
            info["human_success"] = True
            if self.success_reward is not None:
                reward = max(float(reward), self.success_reward)
            return reward, True, False
        if event.failure:
            info["human_failure"] = True
            truncated = not terminated
        if event.rerecord:
            info["rerecord"] = True
            truncated = not terminated
        if event.end_episode:
            truncated = not terminated
        return reward, terminated, truncated

    def episode_stats(self) -> dict[str, float | int]:
        """Intervention counts of the episode so far."""
        rate = self._intervention_steps / self._steps if self._steps else 0.0
        return {
            "intervention_steps": self._intervention_steps,
            "intervention_rate": rate,
            "interventions": self._interventions,
        }
