"""The learner's automatic torch thread count (``--threads 0``)."""

import pytest
import torch

from robot_rl.agents.bc import BCConfig
from robot_rl.agents.sac import SACConfig
from robot_rl.data.schema import ObsSpec
from robot_rl.train.setup import TORCH_DEFAULT_THREADS, choose_threads, set_threads

STATE = ObsSpec(13, {})
PIXELS = ObsSpec(7, {"front": (64, 64, 3)}, ("state",))


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_state_and_cached_features_get_one_thread():
    assert choose_threads(0, STATE, SACConfig()) == 1
    assert choose_threads(0, PIXELS, SACConfig(image_encoder="frozen", pretrained_path="enc.pt")) == 1


def test_conv_encoders_on_images_get_torch_default(restore_threads):
    torch.set_num_threads(1)  # an earlier run in this process set one thread: the default still is torch's own
    assert choose_threads(0, PIXELS, SACConfig()) == TORCH_DEFAULT_THREADS  # 'conv', trained end to end
    assert choose_threads(0, PIXELS, SACConfig(image_encoder="pretrained", pretrained_path="r.pt")) == TORCH_DEFAULT_THREADS
    assert choose_threads(0, PIXELS, BCConfig()) == TORCH_DEFAULT_THREADS
    assert choose_threads(0, STATE, SACConfig()) == 1  # a conv encoder without images runs no convolution


def test_an_explicit_count_wins(restore_threads):
    assert choose_threads(3, STATE, SACConfig()) == 3
    assert set_threads(0, STATE, SACConfig()) == 1 and torch.get_num_threads() == 1
    assert set_threads(2, STATE, SACConfig()) == 2 and torch.get_num_threads() == 2


def test_a_jax_env_with_a_scripted_expert_points_to_train_fused_and_others_do_not():
    pytest.importorskip("jax")
    from robot_rl.train.setup import fused_hint
    from robot_rl.vector import make_vector

    quad = make_vector("quad_hover", backend="jax", num_envs=2)
    assert "robot-rl train-fused --task quad_hover" in fused_hint(quad, "quad_hover")
    puck = make_vector("puck_reach", backend="jax", num_envs=2)  # jitted, but no scripted expert for TD3+BC
    assert fused_hint(puck, "puck_reach") is None
    assert fused_hint(None, "pick_cube") is None  # offline algorithms build no train envs
