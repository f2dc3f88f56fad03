"""Residual fine-tuning (``--init-from FILE --init-residual-scale S``) and the actor's trust region
(``--sac.trust-region-weight``): the agent the trainer builds flies exactly pi0 at step 0, stores and
learns from executed actions, keeps pi0 frozen, round-trips through checkpoints and actor files, and
refuses bad flags; the trust-region term pulls nothing at mu = mu0."""

import numpy as np
import pytest
import torch

from robot_rl.agents.sac import SACAgent, SACConfig, trust_region_distance
from robot_rl.data.schema import Batch, ObsSpec
from robot_rl.envs import EnvConfig
from robot_rl.train.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.train.config import TrainConfig
from robot_rl.train.residual import ResidualAgent, load_policy
from robot_rl.train.setup import build_agent

OBS_DIM, ACTION_DIM, HIDDEN = 34, 4, (16, 16)  # quad_hover with action_history_steps=4
SPEC = ObsSpec(state_dim=OBS_DIM)
QUAD = EnvConfig(task="quad_hover", env_kwargs=("action_history_steps=4",))


@pytest.fixture
def pi0(tmp_path):
    """A pre-trained actor file (hidden 16 16, an agent of seed 7) and that agent."""
    agent = SACAgent(SPEC, ACTION_DIM, SACConfig(hidden_dims=HIDDEN), seed=7)
    save_checkpoint(tmp_path / "actor.pt", agent.actor_state_dict())
    return tmp_path / "actor.pt", agent


def residual_agent(path, scale=0.2, **sac) -> ResidualAgent:
    cfg = TrainConfig(env=QUAD, sac=SACConfig(hidden_dims=(8,), **sac), init_from=path, init_residual_scale=scale)
    return build_agent(cfg, SPEC, ACTION_DIM)


def observations(n: int, seed: int = 0) -> dict:
    return {"state": np.random.default_rng(seed).normal(size=(n, OBS_DIM)).astype(np.float32)}


def batch_of(agent, n: int = 64, seed: int = 1) -> Batch:
    """Transitions whose actions are what the agent executes (stochastically), as the collector stores them."""
    rng = np.random.default_rng(seed)
    obs, next_obs = observations(n, seed), observations(n, seed + 1)
    return Batch(obs, agent.act_batch(obs), rng.normal(size=n).astype(np.float32), next_obs, np.zeros(n, np.float32))


def test_step_zero_flies_exactly_pi0_and_the_residual_has_its_own_sizes(pi0):
    path, base = pi0
    agent = residual_agent(path)
    obs = observations(50)
    np.testing.assert_array_equal(agent.act_batch(obs, deterministic=True), base.act_batch(obs, deterministic=True))
    np.testing.assert_array_equal(agent.act({"state": obs["state"][0]}, True),
                                  base.act({"state": obs["state"][0]}, True))
    assert [int(w.shape[0]) for k, w in agent.residual.actor_state_dict().items() if k == "actor.trunk.0.weight"] == [8]
    explored = agent.act_batch(obs) - base.act_batch(obs, deterministic=True)
    assert 0 < np.abs(explored).max() <= 0.2 + 1e-6  # exploration is bounded by the scale


def test_executed_actions_are_clipped_and_map_back_to_residuals_that_execute_to_them(pi0):
    agent = residual_agent(pi0[0], scale=0.5)
    base_action = np.array([[0.9, -0.9, 0.0, 0.3]], np.float32)
    np.testing.assert_allclose(agent.executed(base_action, np.ones((1, 4), np.float32)), [[1.0, -0.4, 0.5, 0.8]], atol=1e-6)
    np.testing.assert_allclose(agent.executed(base_action, -np.ones((1, 4), np.float32)), [[0.4, -1.0, -0.5, -0.2]], atol=1e-6)
    batch = batch_of(agent)
    residual = agent.to_residual(batch).action
    assert np.abs(residual).max() <= 1.0
    pi0_action = pi0[1].act_batch(batch.obs, deterministic=True)
    np.testing.assert_allclose(agent.executed(pi0_action, residual), batch.action, atol=1e-5)


def test_updates_train_the_residual_and_leave_pi0_frozen(pi0):
    path, base = pi0
    agent = residual_agent(path)
    before = agent.residual.actor_state_dict()
    for seed in range(3):
        metrics = agent.update(batch_of(agent, seed=seed))
    assert np.isfinite(metrics["train/actor_loss"]) and agent.num_updates == 3
    weights = agent.actor_state_dict()
    for key, value in base.actor_state_dict().items():
        torch.testing.assert_close(weights[f"base.{key}"], value, rtol=0, atol=0)
    assert any(not torch.equal(weights[f"residual.{k}"], v) for k, v in before.items())


def test_checkpoint_and_actor_file_rebuild_the_same_policy(pi0, tmp_path):
    path, _ = pi0
    agent = residual_agent(path)
    for seed in range(2):
        agent.update(batch_of(agent, seed=seed))
    save_checkpoint(tmp_path / "checkpoint.pt", agent.state_dict())
    save_checkpoint(tmp_path / "run-actor.pt", agent.actor_state_dict())
    resumed = residual_agent(path)
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    assert resumed.num_updates == 2
    reloaded = load_policy(tmp_path / "run-actor.pt", SPEC, "quad_hover", {"action_history_steps": 4})
    obs = observations(20, seed=5)
    expected = agent.act_batch(obs, deterministic=True)
    np.testing.assert_array_equal(resumed.act_batch(obs, deterministic=True), expected)
    np.testing.assert_array_equal(reloaded.act_batch(obs, deterministic=True), expected)
    assert isinstance(load_policy(path, SPEC, "quad_hover", {}), SACAgent)  # a plain file stays a plain actor


def test_residual_weights_are_refused_where_they_do_not_fit(pi0, tmp_path):
    path, base = pi0
    agent = residual_agent(path)
    with pytest.raises(KeyError, match="unexpected actor weight 'base"):
        base.load_actor_state_dict(agent.actor_state_dict())  # a plain actor cannot fly them as if they were pi0
    with pytest.raises(KeyError, match="plain actor weights"):
        agent.load_actor_state_dict(base.actor_state_dict())
    with pytest.raises(ValueError, match="--init-residual-scale 0.2"):
        residual_agent(path, scale=0.3).load_actor_state_dict(agent.actor_state_dict())
    with pytest.raises(ValueError, match="checkpoint of a plain agent"):
        agent.load_state_dict(base.state_dict())
    save_checkpoint(tmp_path / "residual.pt", agent.actor_state_dict())
    with pytest.raises(ValueError, match="already pi0 \\+ residual"):
        residual_agent(tmp_path / "residual.pt")


@pytest.mark.parametrize("options, message", [
    ({"init_residual_scale": 0.1}, "needs --init-from"),
    ({"init_residual_scale": 0.0, "init_from": "x.pt"}, "must be in \\(0, 2\\]"),
    ({"init_residual_scale": 3.0, "init_from": "x.pt"}, "must be in \\(0, 2\\]"),
    ({"sac": SACConfig(trust_region_weight=1.0)}, "trust-region-weight needs --init-from"),
])
def test_bad_flags_are_refused_with_the_flag_named(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(env=QUAD, **options)
    with pytest.raises(ValueError, match="trust_region_weight must be >= 0"):
        SACConfig(trust_region_weight=-1.0)


def test_the_trust_region_pulls_nothing_at_mu0_and_keeps_the_actor_near_it(pi0):
    path, base = pi0
    mu = torch.tanh(torch.randn(8, ACTION_DIM)).requires_grad_(True)
    trust_region_distance(mu, mu.detach().clone()).backward()
    assert torch.count_nonzero(mu.grad) == 0
    drifts = {}
    for weight in (0.0, 1e4):
        cfg = TrainConfig(env=QUAD, sac=SACConfig(hidden_dims=HIDDEN, trust_region_weight=weight, actor_lr=1e-2), init_from=path)
        agent = build_agent(cfg, SPEC, ACTION_DIM)
        metrics = agent.update(batch_of(agent))
        for seed in range(1, 8):
            agent.update(batch_of(agent, seed=seed))
        obs = observations(100, seed=9)
        drifts[weight] = np.abs(agent.act_batch(obs, True) - base.act_batch(obs, True)).mean()
    assert metrics["train/actor_trust_region"] == 0.0  # the first update starts at mu0
    assert drifts[1e4] < drifts[0.0] / 3


def test_the_learner_builds_the_same_residual_agent(pi0, tmp_path):
    from robot_rl.distributed.config import LearnerConfig

    path, base = pi0
    cfg = LearnerConfig(env=QUAD, sac=SACConfig(hidden_dims=(8,)), init_from=path, init_residual_scale=0.2, out=tmp_path,
                        name="run", eval=False)
    agent = build_agent(cfg, SPEC, ACTION_DIM)
    assert isinstance(agent, ResidualAgent) and agent.scale == 0.2
    obs = observations(10)
    np.testing.assert_array_equal(agent.act_batch(obs, deterministic=True), base.act_batch(obs, deterministic=True))


def test_launch_gives_its_actors_the_residual_so_they_build_the_learners_policy(pi0, tmp_path):
    from robot_rl.distributed.config import ActorConfig, LaunchConfig
    from robot_rl.distributed.launch import actor_command

    path, base = pi0
    launch = LaunchConfig(env=QUAD, sac=SACConfig(hidden_dims=(8,)), init_from=path, init_residual_scale=0.2, out=tmp_path,
                          name="run", eval=False)
    command = actor_command(launch, tmp_path / "keys", 0)
    assert command[command.index("--init-residual-scale") + 1] == "0.2"
    actor = ActorConfig(id="actor-0", env=QUAD, sac=SACConfig(hidden_dims=(8,)), init_from=path, init_residual_scale=0.2)
    agent = build_agent(actor.train_config(), SPEC, ACTION_DIM)
    learner = build_agent(launch, SPEC, ACTION_DIM)
    assert isinstance(agent, ResidualAgent) and agent.scale == learner.scale
    agent.load_actor_state_dict(learner.actor_state_dict())  # the published weights fit the actor's policy
    obs = observations(10)
    np.testing.assert_array_equal(agent.act_batch(obs, deterministic=True), base.act_batch(obs, deterministic=True))


def test_the_actor_learning_rate_warm_up_scales_adams_first_steps_and_survives_a_checkpoint(pi0):
    """Adam's first step moves every weight by ~lr (sign of the gradient): with a warm-up of N actor
    steps the k-th step uses k/N of the rate, counted on across a resume."""
    path, base = pi0
    moved = {}
    for warmup in (0, 100):
        cfg = TrainConfig(env=QUAD, sac=SACConfig(hidden_dims=HIDDEN, actor_lr=1e-2, actor_lr_warmup_updates=warmup),
                          init_from=path)
        agent = build_agent(cfg, SPEC, ACTION_DIM)
        agent.update(batch_of(agent))
        after, before = agent.actor_state_dict(), base.actor_state_dict()
        moved[warmup] = max(float((after[k] - before[k]).abs().max()) for k in before)
    assert moved[0] == pytest.approx(1e-2, rel=1e-3)
    assert moved[100] == pytest.approx(1e-4, rel=1e-3)
    state = agent.state_dict()
    assert state["optimizers"]["actor"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    resumed = build_agent(cfg, SPEC, ACTION_DIM)
    resumed.load_state_dict(state)
    resumed.update(batch_of(resumed, seed=2))
    assert resumed.state_dict()["optimizers"]["actor"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="actor_lr_warmup_updates must be >= 0"):
        SACConfig(actor_lr_warmup_updates=-1)
