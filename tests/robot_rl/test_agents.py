"""SAC and BC agents: targets, REDQ subsets, learning signals, bit-identical resume, frozen backbones."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from robot_rl.agents import BCAgent, BCConfig, SACAgent, SACConfig, critic_subset, save_backbone, td_target
from robot_rl.agents.distributions import sample_tanh_gaussian
from robot_rl.agents.networks import random_shift
from robot_rl.data.schema import Batch, ObsSpec

STATE_SPEC = ObsSpec(state_dim=5)
PIXEL_SPEC = ObsSpec(state_dim=3, images={"front": (32, 32, 3), "wrist": (32, 32, 3)})
TINY = dict(hidden_dims=(32, 32), encoder_features=8)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small nets on a shared 2-core machine: one thread avoids OpenMP spin contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_obs(spec: ObsSpec, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    obs = {"state": rng.standard_normal((size, spec.state_dim)).astype(np.float32)}
    for name, shape in spec.images.items():
        obs[name] = rng.integers(0, 256, (size, *shape), dtype=np.uint8)
    return obs


def random_batch(spec: ObsSpec, action_dim: int, size: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    return Batch(
        obs=random_obs(spec, size, rng),
        action=rng.uniform(-1, 1, (size, action_dim)).astype(np.float32),
        reward=rng.standard_normal(size).astype(np.float32),
        next_obs=random_obs(spec, size, rng),
        terminated=(rng.random(size) < 0.3).astype(np.float32),
    )


def single_obs(spec: ObsSpec, seed: int = 0) -> dict[str, np.ndarray]:
    return {k: v[0] for k, v in random_obs(spec, 1, np.random.default_rng(seed)).items()}


def params(agent) -> dict[str, torch.Tensor]:
    return {f"{name}/{k}": v for name, sd in agent.state_dict()["modules"].items() for k, v in sd.items()}


# ------------------------------------------------------------ targets and helpers


def test_td_target_bootstraps_on_truncation_only():
    reward = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0])  # first ended in the MDP, second was truncated
    next_qs = torch.tensor([[5.0, 5.0], [3.0, 4.0]])  # (M=2, B=2): min is [3, 4]
    log_prob = torch.tensor([-1.0, -1.0])
    y = td_target(reward, terminated, next_qs, 0.9, log_prob, alpha=0.5)
    assert torch.allclose(y, torch.tensor([1.0, 1.0 + 0.9 * (4.0 + 0.5)]))
    assert torch.allclose(td_target(reward, terminated, next_qs, 0.9), torch.tensor([1.0, 1.0 + 0.9 * 4.0]))


def test_redq_subset_has_exactly_m_distinct_critics():
    generator = torch.Generator().manual_seed(0)
    draws = [critic_subset(10, 2, generator) for _ in range(50)]
    assert all(len(d) == 2 and len(set(d.tolist())) == 2 and 0 <= d.min() and d.max() < 10 for d in draws)
    assert len({tuple(sorted(d.tolist())) for d in draws}) > 5  # it really is random
    assert critic_subset(3, 3, generator).tolist() == [0, 1, 2]


def test_redq_target_evaluates_only_the_subset():
    agent = SACAgent(STATE_SPEC, 2, SACConfig(num_critics=10, num_min_critics=2, **TINY))
    shapes = []
    agent._target_critic.net.out.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape)))
    agent.update(random_batch(STATE_SPEC, 2, 16))
    assert shapes == [(2, 16, 1)]


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    mean, log_std = torch.randn(64, 3), torch.randn(64, 3).clamp(-2, 1)
    action, log_prob = sample_tanh_gaussian(mean, log_std, torch.Generator().manual_seed(1))
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1),
        [torch.distributions.TanhTransform(cache_size=1)],
    )
    inside = action.abs() < 0.999  # atanh of values next to +-1 is ill-conditioned in float32
    expected = reference.log_prob(action.clamp(-0.999, 0.999))
    assert torch.allclose(log_prob[inside.all(-1)], expected[inside.all(-1)], atol=1e-3)


def test_random_shift_is_a_replicate_padded_shift_per_sample():
    images = torch.randint(0, 256, (16, 8, 8, 3), dtype=torch.uint8)
    assert random_shift(images, 0, torch.Generator()) is images
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    index = torch.arange(8)
    for i in range(16):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(shifted[i], images[i][(index + dy).clamp(0, 7)][:, (index + dx).clamp(0, 7)])
        ]
        assert matches, f"sample {i} is not a shift of its input"


# ------------------------------------------------------------ learning signals


def test_critic_and_bc_losses_fall_on_a_fixed_batch():
    batch = random_batch(STATE_SPEC, 2, 64)
    agent = SACAgent(STATE_SPEC, 2, SACConfig(hidden_dims=(64, 64), critic_lr=1e-3))
    losses = [agent.update(batch)["train/critic_loss"] for _ in range(200)]
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:5])
    bc = BCAgent(STATE_SPEC, 2, BCConfig(hidden_dims=(64, 64), lr=1e-3))
    bc_losses = [bc.update(batch)["train/bc_loss"] for _ in range(200)]
    assert np.mean(bc_losses[-10:]) < 0.2 * np.mean(bc_losses[:5])


@pytest.mark.parametrize("target_entropy, init_temperature, goes", [(-5.0, 10.0, "down"), (10.0, 0.1, "up")])
def test_temperature_moves_toward_the_target_entropy(target_entropy, init_temperature, goes):
    config = SACConfig(init_temperature=init_temperature, target_entropy=target_entropy, temperature_lr=1e-2, **TINY)
    agent = SACAgent(STATE_SPEC, 2, config)
    batch = random_batch(STATE_SPEC, 2, 32)
    temperatures = [agent.update(batch)["train/temperature"] for _ in range(30)]
    # A fresh policy's entropy (~2 nats for 2 dims) is above -5 and below 10.
    if goes == "down":
        assert temperatures[-1] < 0.8 * init_temperature
    else:
        assert temperatures[-1] > 1.2 * init_temperature


def test_sac_solves_a_one_step_bandit():
    target = np.array([0.5, -0.3], np.float32)
    rng = np.random.default_rng(0)
    agent = SACAgent(ObsSpec(3), 2, SACConfig(hidden_dims=(64, 64), actor_lr=1e-3, critic_lr=1e-3, temperature_lr=1e-3))
    for _ in range(1500):
        obs = {"state": rng.standard_normal((64, 3)).astype(np.float32)}
        action = rng.uniform(-1, 1, (64, 2)).astype(np.float32)
        reward = -np.sum((action - target) ** 2, axis=1).astype(np.float32)
        agent.update(Batch(obs, action, reward, obs, np.ones(64, np.float32)))
    errors = [np.abs(agent.act({"state": rng.standard_normal(3).astype(np.float32)}, True) - target).max() for _ in range(10)]
    assert max(errors) < 0.1, errors


def test_utd_runs_that_many_critic_updates_and_one_actor_update():
    agent = SACAgent(STATE_SPEC, 2, SACConfig(utd_ratio=3, batch_size=8, **TINY))
    metrics = agent.update(random_batch(STATE_SPEC, 2, 24))
    steps = {name: opt["state"][0]["step"].item() for name, opt in agent.state_dict()["optimizers"].items()}
    assert steps == {"critic": 3, "actor": 1, "temperature": 1}
    assert set(metrics) == {f"train/{k}" for k in ("critic_loss", "actor_loss", "temperature", "entropy", "q_mean",
                                                    "target_q_mean", "critic_grad_norm", "actor_grad_norm")}
    with pytest.raises(ValueError, match="utd_ratio"):
        agent.update(random_batch(STATE_SPEC, 2, 25))
    with pytest.raises(ValueError, match="expects"):
        agent.update(random_batch(STATE_SPEC, 3, 24))


# ------------------------------------------------------------ checks, acting, resuming


@pytest.mark.parametrize("key", ["obs/state", "reward"])
def test_non_finite_batch_raises_naming_the_key(key):
    batch = random_batch(STATE_SPEC, 2, 8)
    if key == "reward":
        batch.reward[3] = np.nan
    else:
        batch.obs["state"][2, 1] = np.nan
    for agent in (SACAgent(STATE_SPEC, 2, SACConfig(**TINY)), BCAgent(STATE_SPEC, 2, BCConfig(**TINY))):
        with pytest.raises(ValueError, match=key):
            agent.update(batch)


@pytest.mark.parametrize(
    "spec, pooling", [(STATE_SPEC, "spatial_embedding"), (PIXEL_SPEC, "spatial_embedding"), (PIXEL_SPEC, "spatial_softmax")]
)
def test_act_shape_range_and_determinism(spec, pooling):
    for agent in (SACAgent(spec, 3, SACConfig(pooling=pooling, **TINY)), BCAgent(spec, 3, BCConfig(pooling=pooling, **TINY))):
        obs = single_obs(spec)
        action = agent.act(obs)
        assert action.shape == (3,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
        np.testing.assert_array_equal(agent.act(obs, deterministic=True), agent.act(obs, deterministic=True))
    stochastic = [agent.act(obs) for agent in [SACAgent(spec, 3, SACConfig(**TINY))] for _ in range(2)]
    assert not np.array_equal(*stochastic)


@pytest.mark.parametrize("spec, config", [
    (STATE_SPEC, SACConfig(utd_ratio=2, **TINY)),
    (PIXEL_SPEC, SACConfig(**TINY)),
    (STATE_SPEC, SACConfig(hybrid_gripper=True, num_critics=4, num_min_critics=2, **TINY)),
])
def test_checkpoint_round_trip_resumes_bit_identically(spec, config):
    size = 8 * config.utd_ratio
    agent = SACAgent(spec, 2, config, seed=0)
    for step in range(3):
        agent.update(random_batch(spec, 2, size, seed=step))
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    resumed = SACAgent(spec, 2, config, seed=123)  # different init and noise: all of it must be restored
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.num_updates == 3
    batch = random_batch(spec, 2, size, seed=99)
    assert agent.update(batch) == resumed.update(batch)
    a, b = params(agent), params(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    obs = single_obs(spec)
    np.testing.assert_array_equal(agent.act(obs), resumed.act(obs))


def test_bc_checkpoint_and_actor_weights_round_trip():
    config = BCConfig(**TINY)
    agent = BCAgent(PIXEL_SPEC, 2, config)
    agent.update(random_batch(PIXEL_SPEC, 2, 8))
    resumed = BCAgent(PIXEL_SPEC, 2, config, seed=5)
    resumed.load_state_dict(agent.state_dict())
    batch = random_batch(PIXEL_SPEC, 2, 8, seed=1)
    assert agent.update(batch) == resumed.update(batch)
    actor = BCAgent(PIXEL_SPEC, 2, config, seed=7)
    actor.load_actor_state_dict({k: v.numpy() for k, v in agent.actor_state_dict().items()})
    obs = single_obs(PIXEL_SPEC)
    np.testing.assert_array_equal(agent.act(obs), actor.act(obs))


def test_sac_actor_weights_drive_a_separate_actor():
    learner = SACAgent(PIXEL_SPEC, 2, SACConfig(**TINY))
    learner.update(random_batch(PIXEL_SPEC, 2, 8))
    weights = learner.actor_state_dict()
    assert all(k.split(".")[0] in ("encoder", "actor") for k in weights)
    actor = SACAgent(PIXEL_SPEC, 2, SACConfig(**TINY), seed=3)
    actor.load_actor_state_dict(weights)
    obs = single_obs(PIXEL_SPEC)
    np.testing.assert_array_equal(learner.act(obs, deterministic=True), actor.act(obs, deterministic=True))
    with pytest.raises(KeyError):
        actor.load_actor_state_dict({**weights, "critic.x": torch.zeros(1)})


# ------------------------------------------------------------ pretrained backbone


def test_pretrained_backbone_is_frozen_and_run_once_per_batch(tmp_path):
    path = save_backbone(tmp_path / "backbone.pt", widths=(8, 16), seed=0)
    config = SACConfig(image_encoder="pretrained", pretrained_path=str(path), utd_ratio=2, **TINY)
    agent = SACAgent(PIXEL_SPEC, 2, config)
    backbone = agent.encoder.backbone
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    heads_before = {k: v.clone() for k, v in agent.encoder.heads.state_dict().items()}
    calls = []
    backbone.register_forward_hook(lambda module, inputs, output: calls.append(output.requires_grad))
    agent.update(random_batch(PIXEL_SPEC, 2, 16))
    # obs and next_obs, per camera, per minibatch: computed once and shared by critics and actor
    assert calls == [False] * (2 * 2 * 2)
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert any(not torch.equal(heads_before[k], v) for k, v in agent.encoder.heads.state_dict().items())
    assert not any(k.startswith("encoder.backbone.") for k in agent.actor_state_dict())
    bc = BCAgent(PIXEL_SPEC, 2, BCConfig(image_encoder="pretrained", pretrained_path=str(path), **TINY))
    assert np.all(np.abs(bc.act(single_obs(PIXEL_SPEC))) <= 1)


def test_missing_pretrained_weights_raise_file_not_found(tmp_path):
    config = SACConfig(image_encoder="pretrained", pretrained_path=str(tmp_path / "nope.pt"), **TINY)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        SACAgent(PIXEL_SPEC, 2, config)
    with pytest.raises(ValueError, match="pretrained_path"):
        SACConfig(image_encoder="pretrained")


# ------------------------------------------------------------ hybrid gripper


@pytest.mark.parametrize("rewarded, penalty, expected", [(1.0, 0.0, 1.0), (-1.0, 0.0, -1.0), (None, 0.5, 0.0)])
def test_hybrid_gripper_critic_learns_the_rewarded_command(rewarded, penalty, expected):
    """One-step bandit on the gripper: +1 reward for one command, or only the penalty (then: stay)."""
    rng = np.random.default_rng(0)
    agent = SACAgent(STATE_SPEC, 3, SACConfig(hybrid_gripper=True, gripper_penalty=penalty, critic_lr=3e-3, **TINY))
    for _ in range(150):
        batch = random_batch(STATE_SPEC, 3, 32, seed=int(rng.integers(1 << 30)))
        batch.action[:, -1] = rng.choice([-1.0, 0.0, 1.0], 32)
        batch.reward[:] = 0.0 if rewarded is None else (batch.action[:, -1] == rewarded).astype(np.float32)
        batch.terminated[:] = 1.0
        metrics = agent.update(batch)
    assert "train/gripper_loss" in metrics
    actions = np.stack([agent.act(single_obs(STATE_SPEC, seed)) for seed in range(5)])
    assert actions.shape == (5, 3) and np.all(actions[:, -1] == expected)
