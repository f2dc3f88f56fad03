"""The fused JAX learner: the JAX actor converts to the torch agents' actor (equal outputs, and
the C header export computes the same action), a
TD3 update lowers its losses on a fixed batch, and a few hundred fused steps on the JAX quadrotor
fill the replay buffer and report finite metrics; ``robot-rl train-fused`` end to end on a tiny run."""

import importlib.util
import json
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import robot_rl
from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.cli import main
from robot_rl.data.schema import ObsSpec
from robot_rl.fused.convert import actor_state_dict, save_actor, torch_actor
from robot_rl.fused.export_c import write_c_header
from robot_rl.fused.config import RewardCurriculum
from robot_rl.fused.loop import FusedConfig, fused_env, train
from robot_rl.fused.networks import LOG_STD_MAX, LOG_STD_MIN, actor_mean, apply_mlp, init_actor
from robot_rl.fused.run import load_torch_agent
from robot_rl.fused.td3 import TD3Config, Transitions, init_td3, update
from robot_rl.train.checkpoint import load_checkpoint

OBS, PRIV, ACT = 10, 3, 4


def _random_actor(seed=0, hidden=(16, 8)):
    """An actor whose every parameter (LayerNorm's too) is random, so conversion errors show."""
    layers = init_actor(np.random.default_rng(seed), OBS, hidden, ACT, -1.0)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda leaf: np.asarray(leaf) + rng.normal(0.0, 0.3, np.shape(leaf)).astype(np.float32), layers)


def test_converted_actor_matches_the_jax_actor_on_random_inputs():
    actor = _random_actor()
    obs = np.random.default_rng(0).normal(size=(64, OBS)).astype(np.float32) * 3
    policy = torch_actor(actor)
    with torch.no_grad():
        mean, log_std = policy(torch.as_tensor(obs))
        mode = policy.mode(torch.as_tensor(obs)).numpy()
    out = np.asarray(apply_mlp(actor, obs))
    np.testing.assert_allclose(mean.numpy(), out[:, :ACT], atol=1e-5)
    np.testing.assert_allclose(log_std.numpy(), np.clip(out[:, ACT:], LOG_STD_MIN, LOG_STD_MAX), atol=1e-5)
    np.testing.assert_allclose(mode, np.asarray(actor_mean(actor, obs)), atol=1e-5)


def test_actor_pt_loads_into_the_sac_agent_and_acts_as_the_jax_actor(tmp_path):
    actor = _random_actor(3, hidden=(32, 32))
    save_actor(tmp_path, actor, {"task": "test"})
    weights = load_checkpoint(tmp_path / "actor.pt")
    assert set(weights) == set(actor_state_dict(actor)) and all(k.startswith("actor.") for k in weights)
    assert json.loads((tmp_path / "actor.json").read_text())["hidden_dims"] == [32, 32]
    spec = ObsSpec(state_dim=OBS)
    agent = load_torch_agent(tmp_path, spec)
    obs = np.random.default_rng(1).normal(size=(16, OBS)).astype(np.float32)
    np.testing.assert_allclose(agent.act_batch({"state": obs}, deterministic=True), np.asarray(actor_mean(actor, obs)),
                               atol=1e-5)
    with pytest.raises(RuntimeError):  # other widths: the shapes disagree
        SACAgent(spec, ACT, SACConfig(hidden_dims=(64, 64))).load_actor_state_dict(weights)


def test_a_td3_update_lowers_critic_and_expert_losses_on_a_fixed_batch():
    config = TD3Config(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32), batch_size=64, bc_weight=5.0,
                       bc_final_weight=5.0, actor_lr=3e-3, critic_lr=3e-3)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, OBS)).astype(np.float32)
    expert = np.tanh(obs[:, :ACT] * 0.7).astype(np.float32)
    batch = Transitions(obs, rng.normal(size=(64, PRIV)).astype(np.float32), rng.uniform(-1, 1, (64, ACT)).astype(np.float32),
                        rng.uniform(0, 1, 64).astype(np.float32), obs[::-1].copy(), np.zeros((64, PRIV), np.float32),
                        (rng.uniform(size=64) < 0.1).astype(np.float32), expert)
    batches = jax.tree.map(lambda x: jnp.stack([x] * config.policy_delay), batch)
    step = jax.jit(lambda s, k: update(s, batches, k, config))
    state, key, history = init_td3(np.random.default_rng(0), OBS, PRIV, ACT, config), jax.random.key(1), []
    for _ in range(300):  # the expert's MSE falls to 0.05-0.13 of its start by then over init seeds 0-5 (0.06-0.26 at 150)
        key, sub = jax.random.split(key)
        state, metrics = step(state, sub)
        history.append({k: float(v) for k, v in metrics.items()})
    assert history[-1]["train/critic_loss"] < 0.5 * history[0]["train/critic_loss"]
    assert history[-1]["train/expert_mse"] < 0.25 * history[0]["train/expert_mse"]


def test_the_critic_warmup_holds_the_actor_still_then_lets_it_learn():
    config = TD3Config(actor_hidden_dims=(8,), critic_hidden_dims=(8,), batch_size=16, critic_warmup_updates=2)
    rng = np.random.default_rng(1)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    batch = Transitions(f32(16, OBS), f32(16, PRIV), np.tanh(f32(16, ACT)), f32(16), f32(16, OBS), f32(16, PRIV),
                        np.zeros(16, np.float32), np.zeros((16, ACT), np.float32))
    batches = jax.tree.map(lambda x: jnp.stack([x] * config.policy_delay), batch)
    step = jax.jit(lambda s, k: update(s, batches, k, config)[0])
    state = first = init_td3(np.random.default_rng(0), OBS, PRIV, ACT, config)
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
    for i in range(3):
        state = step(state, jax.random.key(i))
        assert same(state.actor, first.actor) == (i < 2) and not same(state.critics, first.critics)
    assert int(state.actor_opt.count) == 1
    with pytest.raises(ValueError, match="critic_warmup_updates"):
        TD3Config(critic_warmup_updates=-1)


@pytest.fixture(scope="module")
def quad_env():
    envs = robot_rl.make_vector("quad_hover", backend="jax", num_envs=8, action_history_steps=2)
    return fused_env(envs, reward_terms=True)  # its step returns the reward's terms (the loop pays the reward)


def test_fused_steps_fill_the_replay_buffer_with_privileged_state_expert_actions_and_scheduled_rewards(quad_env):
    assert (quad_env.obs_dim, quad_env.privileged_dim, quad_env.action_dim) == (18 + 2 * 4, 15, 4)
    curriculum = RewardCurriculum(start_weights=(0.0, 0.0, 0.0, 0.0), action_weight_start=5.0, steps=400)
    config = FusedConfig(num_envs=8, env_steps=8 * 150, chunk_steps=50, learning_starts=200, replay_capacity=4096,
                         td3=TD3Config(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), batch_size=32, bc_weight=1.0),
                         curriculum=curriculum)
    reports = []
    state, wall_s = train(quad_env, config, lambda steps, updates, summary, t: reports.append((steps, updates, summary)))
    assert [r[0] for r in reports] == [400, 800, 1200] and wall_s > 0
    assert reports[0][1] == 26 and reports[-1][1] == 126  # one update per iteration from 200 transitions on
    assert int(state.size) == 1200 and int(state.ptr) == 1200
    replay = jax.device_get(state.replay)
    filled = slice(0, 1200)
    assert replay.obs.shape == (4096, 26) and replay.privileged.shape == (4096, 15)
    assert np.all(np.isfinite(replay.obs[filled])) and np.all(np.abs(replay.action[filled]) <= 1.0)
    assert np.all(np.abs(replay.expert_action[filled]) <= 1.0) and np.any(replay.expert_action[filled] != 0)
    hover = replay.privileged[filled, :4]  # motor thrust over its maximum: ~ hover, within [0, 1]
    assert np.all((hover >= 0) & (hover <= 1)) and 0.2 < np.median(hover) < 0.7
    for name in ("train/critic_loss", "train/actor_loss", "train/expert_mse", "env/step_reward"):
        assert np.isfinite(reports[-1][2][name])
    # The curriculum: weights from 0 to the task's over the first chunk (its mean: 0.49), then the task's.
    assert reports[0][2]["train/cost_weight_0"] == pytest.approx(0.49, abs=1e-6)
    assert reports[0][2]["train/action_weight"] == pytest.approx(5.0 * 0.51, abs=1e-5)
    assert reports[1][2]["train/cost_weight_0"] == 1.0 and reports[1][2]["train/action_weight"] == 0.0
    paid = np.exp(-5.0 * np.sum(np.square(replay.action[:8]), axis=-1))  # step 0: the action penalty alone
    np.testing.assert_allclose(replay.reward[:8], paid, rtol=1e-5)
    assert np.all(replay.reward[filled] <= 1.0)
    with pytest.raises(ValueError, match="reward's terms"):
        train(quad_env._replace(reward_from_terms=None), config)


def test_the_expert_term_needs_an_expert(quad_env):
    blind = quad_env._replace(has_expert=False)
    with pytest.raises(ValueError, match="scripted expert"):
        train(blind, FusedConfig(num_envs=8, env_steps=8, td3=TD3Config(bc_weight=1.0)))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="replay_capacity"):
        FusedConfig(num_envs=64, replay_capacity=32)
    with pytest.raises(ValueError, match="discount"):
        TD3Config(discount=1.0)
    with pytest.raises(ValueError, match="hidden_dims"):
        TD3Config(actor_hidden_dims=())


@pytest.mark.slow  # compiles the fused loop again (~20 s idle, minutes on a loaded 2-core machine)
def test_train_fused_command_writes_a_loadable_actor_and_evaluates_it_in_mujoco(tmp_path, capsys):
    args = ["train-fused", "--out", str(tmp_path), "--name", "r", "--eval-episodes", "1", "--video-episodes", "0",
            "--task-kwargs", "action_history_steps=2", "max_episode_steps=20", "--fused.num-envs", "4",
            "--fused.env-steps", "80", "--fused.chunk-steps", "10", "--fused.learning-starts", "40",
            "--fused.td3.actor-hidden-dims", "8", "8", "--fused.td3.critic-hidden-dims", "8", "8"]
    assert main(args) == 0
    run = tmp_path / "r"
    result = json.loads((run / "result.json").read_text())
    assert result["episodes"] == 1 and result["env_steps"] == 80 and result["train_wall_s"] > 0
    assert (run / "actor.pt").exists() and (run / "curve.png").exists() and list(run.glob("events.out.tfevents*"))
    assert "#define POLICY_OBS_DIM 26" in (run / "policy.h").read_text()
    assert (run / "policy.onnx").exists() == (importlib.util.find_spec("onnx") is not None)
    assert "torch actor" in capsys.readouterr().out
    assert main(args) == 2  # the run directory exists: refused, not overwritten


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed: the C header cannot be compiled here")
def test_c_header_computes_the_torch_actors_action(tmp_path):
    actor = _random_actor(5, hidden=(16, 8))
    weights = actor_state_dict(actor)
    write_c_header(tmp_path / "policy.h", weights, prefix="hover")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "policy.h"\nint main(void) {\n float obs[HOVER_OBS_DIM], act[HOVER_ACTION_DIM];\n'
        ' while (1) {\n  for (int i = 0; i < HOVER_OBS_DIM; ++i) if (scanf("%f", &obs[i]) != 1) return 0;\n'
        '  hover_act(obs, act);\n  for (int i = 0; i < HOVER_ACTION_DIM; ++i) printf("%.9g ", act[i]);\n'
        '  printf("\\n");\n }\n}\n')
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "act"), str(tmp_path / "main.c"), "-lm"],
                   check=True, timeout=60)
    obs = np.random.default_rng(2).normal(size=(32, OBS)).astype(np.float32) * 2
    text = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in obs) + "\n"
    out = subprocess.run([str(tmp_path / "act")], input=text, capture_output=True, text=True, check=True, timeout=30).stdout
    with torch.no_grad():
        expected = torch_actor(actor).mode(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(np.loadtxt(out.splitlines()).reshape(32, ACT), expected, atol=1e-5)
    with pytest.raises(ValueError, match="C identifier"):
        write_c_header(tmp_path / "x.h", weights, prefix="1bad")


@pytest.mark.slow  # trains the default configuration (~1-4 min on 2 cores, load dependent)
def test_default_training_hovers_within_5_cm_in_mujoco(tmp_path):
    assert main(["train-fused", "--out", str(tmp_path), "--name", "hover", "--eval-episodes", "8",
                 "--video-episodes", "0"]) == 0
    result = json.loads((tmp_path / "hover" / "result.json").read_text())
    assert result["crash_rate"] == 0.0 and result["within_tolerance"] == 8 and result["final_rms_max_m"] <= 0.05


def test_onnx_export_computes_the_torch_actors_action(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[export]')")
    from robot_rl.fused.export_onnx import export_onnx

    actor = _random_actor(7, hidden=(16, 8))
    path = export_onnx(tmp_path / "policy.onnx", actor_state_dict(actor))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    obs = np.random.default_rng(3).normal(size=(32, OBS)).astype(np.float32) * 2
    (action,) = session.run(["action"], {"obs": obs})
    with torch.no_grad():
        expected = torch_actor(actor).mode(torch.as_tensor(obs)).numpy()
    assert action.shape == (32, ACT)
    np.testing.assert_allclose(action, expected, atol=1e-5)
