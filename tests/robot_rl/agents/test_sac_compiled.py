"""The compiled update's step functions (robot_rl/agents/sac_compiled.py) compute the eager update's numbers.

They run here without compiling (``CompiledUpdate(agent, compiled=False)``: the same Python, traced by
nothing), which checks their logic in seconds; the compiled graphs themselves are checked by the slow
tests (tens of seconds of compilation each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.agents import SACAgent, SACConfig
from robot_rl.agents.networks import batch_to_tensors, split_batch
from robot_rl.agents.sac_functions import to_floats
from robot_rl.agents.sac_compiled import CompiledUpdate
from robot_rl.data.schema import Batch, ObsSpec
from test_sac_reference import assert_same_update, one_thread, random_batch  # noqa: F401 - one_thread: autouse fixture

PIXELS = ObsSpec(3, {"front": (32, 32, 3)})


def run_graphs(graphs: CompiledUpdate, agent: SACAgent, batch: Batch) -> dict[str, float]:
    return to_floats(graphs.update(split_batch(batch_to_tensors(batch, torch.device("cpu")), agent.config.utd_ratio)))


def pixel_batch(size: int, seed: int) -> Batch:
    rng = np.random.default_rng(seed)

    def obs() -> dict[str, np.ndarray]:
        return {"state": rng.standard_normal((size, 3)).astype(np.float32),
                "front": rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)}

    action = np.concatenate([rng.uniform(-1, 1, (size, 2)), rng.choice([-1.0, 0.0, 1.0], (size, 1))], axis=1)
    return Batch(obs(), action.astype(np.float32), rng.standard_normal(size).astype(np.float32), obs(),
                 (rng.random(size) < 0.3).astype(np.float32), demo=(rng.random(size) < 0.5).astype(np.float32))


def assert_same_state(ours: SACAgent, theirs: SACAgent, atol: float = 2e-5, rtol: float = 1e-4) -> None:
    """Weights, targets, Adam moments and step counts, temperature and generators all agree."""
    a, b = ours.state_dict(), theirs.state_dict()
    for name, module in b["modules"].items():
        for key, value in module.items():
            torch.testing.assert_close(a["modules"][name][key], value, atol=atol, rtol=rtol, msg=f"{name}.{key}")
    for name, optimizer in b["optimizers"].items():
        for index, state in optimizer["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(a["optimizers"][name]["state"][index][key], value, atol=atol, rtol=rtol,
                                           msg=f"{name}[{index}].{key}")
    torch.testing.assert_close(a["log_alpha"], b["log_alpha"], atol=atol, rtol=rtol)
    assert all(torch.equal(a["generators"][k], b["generators"][k]) for k in b["generators"]), "draws out of order"


@pytest.mark.parametrize("num_critics, num_min, utd", [(2, 2, 1), (5, 2, 3)])
def test_the_step_functions_match_the_reference_computation(num_critics, num_min, utd):
    config = SACConfig(hidden_dims=(32, 32), num_critics=num_critics, num_min_critics=num_min, utd_ratio=utd,
                       batch_size=16, init_temperature=0.1)
    agent = SACAgent(ObsSpec(5), 3, config, seed=3)
    graphs = CompiledUpdate(agent, compiled=False)
    for seed in range(3):  # Adam's state (created by the graphs' first step) and the generator carry over
        assert_same_update(agent, random_batch(5, 3, 16 * utd, seed), lambda batch: run_graphs(graphs, agent, batch))


def test_pixels_gripper_trust_region_and_warm_up_match_the_eager_update_and_checkpoints_cross_over():
    config = SACConfig(hidden_dims=(32, 32), num_critics=3, num_min_critics=2, utd_ratio=2, batch_size=8,
                       hybrid_gripper=True, gripper_penalty=0.1, trust_region_weight=0.5, actor_lr_warmup_updates=4,
                       encoder_features=8)
    eager, ours = SACAgent(PIXELS, 3, config, seed=5), SACAgent(PIXELS, 3, config, seed=5)
    for agent in (eager, ours):
        agent.set_trust_region_reference()
    graphs = CompiledUpdate(ours, compiled=False)
    for seed in range(3):
        expected, metrics = eager.update(pixel_batch(16, seed)), run_graphs(graphs, ours, pixel_batch(16, seed))
        assert metrics.keys() == expected.keys()
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, rel=1e-4, abs=2e-5), key
    assert {"train/gripper_loss", "train/actor_trust_region", "train/actor_bc_loss"} <= metrics.keys()
    assert_same_state(ours, eager)
    # A checkpoint written by either path continues in the other (same Adam state tensors), with the
    # checkpoint's learning rates, as torch's optimizers load them (not the new config's).
    resumed = SACAgent(PIXELS, 3, SACConfig(**{**vars(config), "critic_lr": 5e-4}), seed=99)
    resumed.load_state_dict(ours.state_dict())
    resumed.set_trust_region_reference()
    eager.set_trust_region_reference()
    resumed_graphs = CompiledUpdate(resumed, compiled=False)
    eager.update(pixel_batch(16, 7))
    run_graphs(resumed_graphs, resumed, pixel_batch(16, 7))
    assert_same_state(resumed, eager)


def test_a_non_finite_gradient_skips_the_graph_step_and_is_counted():
    agent = SACAgent(ObsSpec(5), 3, SACConfig(hidden_dims=(32, 32), batch_size=16, utd_ratio=2))
    graphs = CompiledUpdate(agent, compiled=False)
    run_graphs(graphs, agent, random_batch(5, 3, 32, seed=2))
    before = agent.state_dict()
    metrics = run_graphs(graphs, agent, random_batch(5, 3, 32, reward_scale=1e30))
    assert not np.isfinite(metrics["train/critic_grad_norm"])
    after = agent.state_dict()
    for key, value in before["modules"]["critic"].items():
        torch.testing.assert_close(after["modules"]["critic"][key], value, atol=0, rtol=0)
    for index, state in before["optimizers"]["critic"]["state"].items():
        assert float(after["optimizers"]["critic"]["state"][index]["step"]) == float(state["step"]) == 2.0
    assert agent.skipped_steps >= 2
    assert np.isfinite(run_graphs(graphs, agent, random_batch(5, 3, 32, seed=1))["train/critic_loss"])


@pytest.mark.slow
def test_the_compiled_graphs_match_the_eager_update_with_pixels_and_gripper(capsys):
    """``SACConfig(compile=True)`` end to end through ``agent.update`` (about a minute of compilation)."""
    config = SACConfig(hidden_dims=(32, 32), num_critics=3, num_min_critics=2, utd_ratio=2, batch_size=8,
                       hybrid_gripper=True, encoder_features=8)
    eager = SACAgent(PIXELS, 3, config, seed=5)
    compiled = SACAgent(PIXELS, 3, SACConfig(**{**vars(config), "compile": True}), seed=5)
    for seed in range(2):
        expected, metrics = eager.update(pixel_batch(16, seed)), compiled.update(pixel_batch(16, seed))
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, rel=1e-4, abs=2e-5), key
    assert_same_state(compiled, eager, atol=1e-4, rtol=1e-3)
    out = capsys.readouterr().out  # the compilation minute is announced, once per graph
    assert out.count("compiling the SAC critic step") == out.count("compiling the SAC full step") == 1
    assert "the full step compiled in" in out


@pytest.mark.slow
def test_compiled_agents_in_one_process_share_the_graphs_but_each_updates_its_own_state():
    """The graphs read every agent's tensors as inputs (no agent's object is baked in), so a second agent
    reuses the first one's compilation (a ninth used to hit dynamo's recompile limit) and must still
    update only its own weights."""
    config = SACConfig(hidden_dims=(16, 16), num_critics=3, num_min_critics=2, utd_ratio=2, batch_size=8)
    compiled_config = SACConfig(**{**vars(config), "compile": True})
    pairs = [(SACAgent(ObsSpec(5), 3, compiled_config, seed=s), SACAgent(ObsSpec(5), 3, config, seed=s)) for s in (1, 2, 3)]
    for seed in range(2):
        for compiled, eager in pairs:
            batch = random_batch(5, 3, 16, seed=10 * seed + len(pairs))
            compiled.update(batch), eager.update(batch)
    for compiled, eager in pairs:
        assert_same_state(compiled, eager, atol=1e-4, rtol=1e-3)
