"""Learned success detectors ("reward classifiers") for tasks without a measurable reward.

Record labelled camera frames (:mod:`robot_rl.reward.dataset`, ``robot-rl record-labels``),
train a :class:`RewardClassifier` on them (:mod:`robot_rl.reward.train`, ``robot-rl
train-reward``), then let :class:`robot_rl.wrappers.reward.RewardFromClassifier` give the reward.
"""

from robot_rl.reward.dataset import (
    LabelSet,
    LabelWriter,
    collect_from_env,
    collect_from_episodes,
    collect_from_teleop,
    read_labels,
)
from robot_rl.reward.model import ClassifierSpec, RewardClassifier, load_classifier, save_classifier
from robot_rl.reward.train import RewardTrainConfig, train_classifier

__all__ = [
    "ClassifierSpec", "LabelSet", "LabelWriter", "RewardClassifier", "RewardTrainConfig", "collect_from_env",
    "collect_from_episodes", "collect_from_teleop", "load_classifier", "read_labels", "save_classifier", "train_classifier",
]
