"""RewardFromClassifier: the reward and success termination come from a learned image classifier."""

from __future__ import annotations

import os
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from robot_rl.reward.model import RewardClassifier, load_classifier


class RewardFromClassifier(gym.Wrapper):
    """Reward 1 and ``terminated=True`` when the classifier says success, else reward 0.

    Success means the classifier's success probability on the step's camera images is
    ``>= threshold`` (default: the threshold stored in the classifier file, else 0.5) and, when
    given, ``condition(obs)`` is true (e.g. a check on the proprioceptive ``obs["state"]`` such as
    "gripper closed"). Otherwise the reward is 0 (the env's reward with ``keep_env_reward=True``)
    and ``terminated``/``truncated`` are the env's own.

    ``info["classifier_prob"]`` (also after ``reset``) and ``info["classifier_success"]`` are added;
    the env's ``info["success"]`` (the ground truth in sim) is left untouched for evaluation.

    ``__init__`` checks that the env observes every camera the classifier was trained on, with the
    same image shape, and raises ``ValueError`` naming any mismatch.
    """

    def __init__(
        self,
        env: gym.Env,
        classifier: RewardClassifier | str | os.PathLike,
        threshold: float | None = None,
        condition: Callable[[Any], bool] | None = None,
        keep_env_reward: bool = False,
        device: str | torch.device = "cpu",
    ):
        super().__init__(env)
        if isinstance(classifier, (str, os.PathLike)):
            classifier, metadata = load_classifier(classifier, device)
        elif isinstance(classifier, RewardClassifier):
            metadata = {}
        else:
            raise TypeError(f"classifier must be a RewardClassifier or a file path, got {type(classifier).__name__}")
        threshold = float(metadata.get("threshold", 0.5) if threshold is None else threshold)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        classifier.spec.check_inputs(_camera_shapes(env.observation_space), source="the env")
        self.classifier = classifier.to(device).eval()
        self.threshold, self.condition, self.keep_env_reward = threshold, condition, keep_env_reward
        self.device = torch.device(device)

    @torch.no_grad()
    def success_probability(self, obs: Any) -> float:
        """The classifier's success probability for one observation (batch of one, eval mode)."""
        images = {
            cam: torch.as_tensor(np.asarray(obs[cam], dtype=np.uint8), device=self.device).unsqueeze(0)
            for cam in self.classifier.spec.cameras
        }
        return float(self.classifier.success_probability(self.classifier(images))[0])

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "classifier_prob": self.success_probability(obs), "classifier_success": False}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        prob = self.success_probability(obs)
        success = prob >= self.threshold and (self.condition is None or bool(self.condition(obs)))
        info = {**info, "classifier_prob": prob, "classifier_success": success}
        if success:
            return obs, 1.0, True, truncated, info
        return obs, float(reward) if self.keep_env_reward else 0.0, terminated, truncated, info


def _camera_shapes(space: gym.spaces.Space) -> dict[str, tuple[int, ...]]:
    """Camera -> (H, W, 3) of a Dict observation space's uint8 images."""
    if not isinstance(space, gym.spaces.Dict):
        raise ValueError(f"RewardFromClassifier needs camera images in a Dict observation (obs='pixels'); "
                         f"the env observes {space}")
    return {k: tuple(s.shape) for k, s in space.spaces.items() if s.dtype == np.uint8 and len(s.shape) == 3}
