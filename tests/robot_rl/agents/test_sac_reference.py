"""SACAgent's fast update (stacked ensemble, fused Adam, device-side skips) equals the slow reference."""

from __future__ import annotations

import pathlib
from typing import Callable

import numpy as np
import pytest
import torch

from robot_rl.agents import SACAgent, SACConfig
from robot_rl.agents.networks import batch_to_tensors, split_batch
from robot_rl.data.schema import Batch, ObsSpec
from sac_reference import ReferenceSAC

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "data" / "pre_families"
ATOL, RTOL = 2e-5, 1e-4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_batch(state_dim: int, action_dim: int, size: int, seed: int = 0, reward_scale: float = 1.0) -> Batch:
    rng = np.random.default_rng(seed)

    def obs() -> dict[str, np.ndarray]:
        return {"state": rng.standard_normal((size, state_dim)).astype(np.float32)}

    return Batch(obs(), rng.uniform(-1, 1, (size, action_dim)).astype(np.float32),
                 (reward_scale * rng.standard_normal(size)).astype(np.float32), obs(),
                 (rng.random(size) < 0.3).astype(np.float32), demo=(rng.random(size) < 0.5).astype(np.float32),
                 discount=rng.choice([0.97, 0.97**2, 0.97**3], size).astype(np.float32))


def assert_same_update(agent: SACAgent, batch: Batch, update: Callable[[Batch], dict[str, float]] | None = None) -> None:
    """One agent.update(batch) (or ``update(batch)``, which must update the agent's state) gives the
    reference's losses, weights, targets and temperature."""
    cfg = agent.config
    reference = ReferenceSAC(agent.state_dict(), cfg, agent.action_dim)
    metrics = (update or agent.update)(batch)
    expected = reference.update(split_batch(batch_to_tensors(batch, torch.device("cpu")), cfg.utd_ratio))
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=RTOL, abs=ATOL), key
    modules = agent.state_dict()["modules"]
    for name, ours, theirs in [("critic", modules["critic"], reference.critic), ("actor", modules["actor"], reference.actor),
                               ("target_critic", modules["target_critic"], reference.target)]:
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value.detach(), atol=ATOL, rtol=RTOL, msg=f"{name}.{key}")
    torch.testing.assert_close(agent.state_dict()["log_alpha"], reference.log_alpha.detach(), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("num_critics, num_min, utd", [(2, 2, 1), (5, 2, 3)])
def test_update_matches_the_reference_computation(num_critics, num_min, utd):
    config = SACConfig(hidden_dims=(32, 32), num_critics=num_critics, num_min_critics=num_min, utd_ratio=utd,
                       batch_size=16, init_temperature=0.1)
    agent = SACAgent(ObsSpec(5), 3, config, seed=3)
    for seed in range(3):  # several updates: Adam's moments and the generator carry over
        assert_same_update(agent, random_batch(5, 3, 16 * utd, seed))


def test_a_checkpoint_from_before_fused_adam_loads_and_continues_like_the_reference():
    """tests/data/pre_families/checkpoint.pt was written by foreach Adam (2026-12-06)."""
    checkpoint = torch.load(FIXTURE / "checkpoint.pt", map_location="cpu", weights_only=False)
    config = SACConfig(hidden_dims=(16, 16), batch_size=32)
    agent = SACAgent(ObsSpec(13), 4, config)
    agent.load_state_dict(checkpoint["agent"])
    assert agent.num_updates == checkpoint["agent"]["num_updates"]
    groups = [g for opt in agent.state_dict()["optimizers"].values() for g in opt["param_groups"]]
    assert all(g["fused"] and not g["foreach"] for g in groups), "the loaded flags must not switch back to foreach"
    assert_same_update(agent, random_batch(13, 4, 32, seed=1))


def test_a_non_finite_gradient_skips_the_step_on_the_device_and_is_counted():
    agent = SACAgent(ObsSpec(5), 3, SACConfig(hidden_dims=(32, 32), batch_size=16, utd_ratio=2))
    before = agent.state_dict()
    # Finite rewards whose squared TD error overflows float32: the critic gradient is inf/NaN.
    metrics = agent.update(random_batch(5, 3, 32, reward_scale=1e30))
    assert not np.isfinite(metrics["train/critic_grad_norm"])
    after = agent.state_dict()
    for key, value in before["modules"]["critic"].items():
        torch.testing.assert_close(after["modules"]["critic"][key], value, atol=0, rtol=0)
    assert after["optimizers"]["critic"]["state"] == {} or all(
        float(s["step"]) == 0 for s in after["optimizers"]["critic"]["state"].values())
    assert agent.skipped_steps >= 2  # both critic steps (the actor's may be finite)
    finite = agent.update(random_batch(5, 3, 32, seed=1))
    assert np.isfinite(finite["train/critic_loss"]) and agent.skipped_steps >= 2


@pytest.mark.slow
def test_compiled_update_matches_the_reference_computation():
    """``SACConfig(compile=True)``: each step one compiled graph (sac_compiled.py), same numbers (tens of
    seconds to compile)."""
    config = SACConfig(hidden_dims=(32, 32), num_critics=5, num_min_critics=2, utd_ratio=2, batch_size=16, compile=True)
    agent = SACAgent(ObsSpec(5), 3, config, seed=1)
    for seed in range(2):
        assert_same_update(agent, random_batch(5, 3, 32, seed))
