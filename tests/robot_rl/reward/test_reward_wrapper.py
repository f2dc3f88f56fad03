"""RewardFromClassifier on the real pixel pick_cube env (16x16 cameras, a tiny classifier)."""

import gymnasium as gym
import pytest

import robot_rl
from robot_rl.reward.model import ClassifierSpec, RewardClassifier, save_classifier
from robot_rl.wrappers.reward import RewardFromClassifier

SIZE = dict(image_height=16, image_width=16)


def tiny_classifier(shapes=None):
    shapes = shapes or {"front": (16, 16, 3), "wrist": (16, 16, 3)}
    return RewardClassifier(ClassifierSpec(shapes, channels=4, layers=2, features=8, hidden=(8,)))


@pytest.fixture(scope="module")
def env():
    env = robot_rl.make("pick_cube", obs="pixels", **SIZE)
    yield env
    env.close()


def expert(env):
    return env.unwrapped.task.expert(env.unwrapped.state)


def test_reward_and_termination_follow_the_classifier(env):
    wrapped = RewardFromClassifier(env, tiny_classifier(), threshold=1e-6)  # every frame "succeeds"
    obs, info = wrapped.reset(seed=0)
    assert 0.0 <= info["classifier_prob"] <= 1.0 and info["success"] is False
    obs, reward, terminated, truncated, info = wrapped.step(expert(wrapped))
    assert reward == 1.0 and terminated and info["classifier_success"]
    assert info["success"] is False  # the env's ground truth is untouched
    assert not wrapped.classifier.training


def test_no_success_gives_zero_reward_and_the_env_termination(env):
    never = RewardFromClassifier(env, tiny_classifier(), threshold=1e-6, condition=lambda obs: False)
    never.reset(seed=1)
    for _ in range(3):
        obs, reward, terminated, truncated, info = never.step(expert(never))
        assert reward == 0.0 and not terminated and not info["classifier_success"]
        assert set(obs) == {"state", "front", "wrist"}
    dense = robot_rl.make("pick_cube", obs="pixels", dense_reward=True, **SIZE)
    try:
        kept = RewardFromClassifier(dense, tiny_classifier(), threshold=1.0, keep_env_reward=True)
        kept.reset(seed=2)
        _, reward, _, _, info = kept.step(expert(kept))
        assert 0.0 < reward < 1.0 and info["classifier_prob"] < 1.0
    finally:
        dense.close()


def test_probability_is_deterministic_batch_of_one(env):
    wrapped = RewardFromClassifier(env, tiny_classifier())
    obs, info = wrapped.reset(seed=3)
    assert wrapped.success_probability(obs) == info["classifier_prob"] == wrapped.success_probability(obs)


def test_loads_a_file_and_its_threshold(env, tmp_path):
    path = save_classifier(tmp_path / "clf.pt", tiny_classifier(), {"threshold": 0.25})
    wrapped = RewardFromClassifier(env, path)
    assert wrapped.threshold == 0.25 and RewardFromClassifier(env, str(path), threshold=0.9).threshold == 0.9


def test_mismatched_cameras_fail_in_init(env):
    with pytest.raises(ValueError, match="trained on 'front' 32x32; the env gives 'front' 16x16"):
        RewardFromClassifier(env, tiny_classifier({"front": (32, 32, 3)}))
    with pytest.raises(ValueError, match=r"trained on camera 'side' \(16x16\); the env has no such camera"):
        RewardFromClassifier(env, tiny_classifier({"side": (16, 16, 3)}))
    with pytest.raises(ValueError, match="threshold"):
        RewardFromClassifier(env, tiny_classifier(), threshold=0.0)
    state_env = gym.make("Pendulum-v1")
    with pytest.raises(ValueError, match="obs='pixels'"):
        RewardFromClassifier(state_env, tiny_classifier())
    RewardFromClassifier(env, tiny_classifier({"wrist": (16, 16, 3)}))  # a subset of the cameras is fine
