"""The single-process trainer: it learns, it writes what it promises, it resumes, it fails clearly."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

import tiny_envs  # noqa: F401  (registers TinyReach-v0)
from robot_rl.agents.sac import SACConfig
from robot_rl.data import read_episodes
from robot_rl.envs import EnvConfig
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train

SMALL = SACConfig(hidden_dims=(64, 64), batch_size=64, init_temperature=0.1, actor_lr=1e-3, critic_lr=1e-3)


def config(**options) -> TrainConfig:
    """A TrainConfig from flat options, the env's (task, obs, backend, env_kwargs, seed) included."""
    env_fields = {f.name for f in dataclasses.fields(EnvConfig)}
    env = EnvConfig(**{k: options.pop(k) for k in list(options) if k in env_fields})
    return TrainConfig(env=env, **options)


def reach_config(tmp_path, **overrides):
    options = dict(
        task="TinyReach-v0", steps=1500, out=tmp_path, name="reach", eval_every=500, eval_episodes=10,
        checkpoint_every=500, log_every=100, learning_starts=200, random_steps=200, video_episodes=1, sac=SMALL,
    )
    options.update(overrides)
    return config(**options)


def test_smoke_training_solves_a_tiny_reach_task_in_under_a_minute(tmp_path):
    # CPU seconds of this process, not wall time: CI machines are shared and wall time varies 3x.
    start = time.process_time()
    result = train(reach_config(tmp_path))
    assert time.process_time() - start < 60
    assert result.final_success_rate >= 0.8, f"success {result.final_success_rate}"
    run = result.run_dir
    for name in ("config.json", "eval.csv", "curve.png", "eval.mp4", "checkpoint.pt", "actor.pt"):
        assert (run / name).stat().st_size > 0, name
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    with open(run / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "success_rate", "mean_return"]
    assert [int(r["step"]) for r in rows] == [500, 1000, 1500]
    assert json.loads((run / "config.json").read_text())["sac"]["batch_size"] == 64
    episodes, errors = read_episodes(run / "episodes")
    assert not errors and sum(len(e) for e in episodes) <= 1500


def test_resume_continues_from_checkpoint_and_episode_files(tmp_path):
    train(reach_config(tmp_path, steps=400, eval_every=200, checkpoint_every=200))
    episodes_before, _ = read_episodes(tmp_path / "reach" / "episodes")
    with pytest.raises(FileExistsError, match="--resume"):
        train(reach_config(tmp_path, steps=400))
    result = train(reach_config(tmp_path, steps=700, eval_every=200, checkpoint_every=200, resume=True))
    episodes_after, _ = read_episodes(tmp_path / "reach" / "episodes")
    assert len(episodes_after) > len(episodes_before)
    # Nothing written before the resume was lost or rewritten.
    assert all(np.array_equal(a.actions, b.actions) for a, b in zip(episodes_before, episodes_after))
    assert result.steps == 700


def test_nan_observation_fails_with_the_key_named(tmp_path):
    import gymnasium as gym

    gym.register("TinyReachNaN-v0", entry_point="tiny_envs:TinyReach", kwargs={"nan_at_step": 3})
    with pytest.raises(ValueError, match="state"):
        train(reach_config(tmp_path, task="TinyReachNaN-v0", steps=50))


def test_pick_cube_with_expert_demos_writes_a_full_run(tmp_path):
    cfg = config(
        task="pick_cube", expert_demos=2, steps=120, out=tmp_path, name="pc", eval_every=120, eval_episodes=1,
        checkpoint_every=120, learning_starts=64, video_episodes=1, sac=SMALL,
    )
    result = train(cfg)
    run = result.run_dir
    demos, _ = read_episodes(run / "demos", task="pick_cube")
    assert len(demos) == 2 and all(d.success for d in demos)
    assert (run / "curve.png").exists() and (run / "eval.mp4").exists()


def test_bc_needs_demos_and_trains_on_them(tmp_path):
    with pytest.raises(ValueError, match="needs demonstrations"):
        config(algo="bc")
    cfg = config(task="pick_cube", algo="bc", expert_demos=2, steps=50, out=tmp_path, name="bc", eval_every=50, eval_episodes=1, video_episodes=0)
    assert train(cfg).steps == 50


def test_train_cli_help_and_bad_task(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "robot_rl.cli", "train", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ})

    out = cli("--help")
    assert out.returncode == 0 and "--sac.utd-ratio" in out.stdout and "--expert-demos" in out.stdout
    out = cli("--task", "NoSuchEnv-v9", "--steps", "10")
    assert out.returncode == 2 and "neither a robot_rl task" in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for a bad name


def test_env_kwargs_are_parsed_as_json_and_malformed_ones_named():
    cfg = config(env_kwargs=("dense_reward=true", "image_height=64", "render_camera=wrist"))
    assert cfg.env.options() == {"dense_reward": True, "image_height": 64, "render_camera": "wrist"}
    with pytest.raises(ValueError, match="'dense_reward'"):
        config(env_kwargs=("dense_reward",)).env.options()


def test_an_env_that_cannot_render_still_finishes_without_a_video(tmp_path, capsys):
    import gymnasium as gym

    gym.register("TinyReachBlind-v0", entry_point="tiny_envs:TinyReach", kwargs={"can_render": False})
    result = train(reach_config(tmp_path, task="TinyReachBlind-v0", steps=100, eval_every=100, eval_episodes=1))
    assert "no eval video: the env cannot render" in capsys.readouterr().out
    assert (result.run_dir / "curve.png").exists() and not (result.run_dir / "eval.mp4").exists()


def test_pixel_pick_cube_runs_end_to_end(tmp_path):
    tiny = SACConfig(hidden_dims=(32, 32), batch_size=16, encoder_features=16)
    cfg = config(
        task="pick_cube", obs="pixels", env_kwargs=("image_height=32", "image_width=32"), expert_demos=1, steps=110,
        out=tmp_path, name="px", eval_every=110, eval_episodes=1, checkpoint_every=110, learning_starts=20, video_episodes=0, sac=tiny,
    )
    run = train(cfg).run_dir
    episodes, errors = read_episodes(run / "episodes", task="pick_cube")
    assert not errors and episodes[0].observations["front"].shape[1:] == (32, 32, 3)
    assert (run / "checkpoint.pt").exists()


def test_ctrl_c_stops_cleanly_and_the_run_resumes(tmp_path):
    import signal

    args = [sys.executable, "-m", "robot_rl.cli", "train", "--task", "pick_cube", "--expert-demos", "1", "--steps", "100000",
            "--out", str(tmp_path), "--name", "int", "--checkpoint-every", "150", "--eval-every", "100000", "--learning-starts", "64",
            "--sac.hidden-dims", "32", "32", "--sac.batch-size", "32"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (tmp_path / "int" / "checkpoint.pt").exists():
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in err
    episodes, errors = read_episodes(tmp_path / "int" / "episodes", task="pick_cube")
    assert episodes and not errors  # every finished episode is on disk and readable
    resumed = train(config(task="pick_cube", out=tmp_path, name="int", resume=True, steps=sum(len(e) for e in episodes) + 5,
                                eval_every=100000, eval_episodes=1, video_episodes=0, learning_starts=64,
                                sac=SACConfig(hidden_dims=(32, 32), batch_size=32)))
    assert resumed.steps == sum(len(e) for e in episodes) + 5


def test_simulated_human_interventions_are_flagged_stored_as_demos_and_logged(tmp_path):
    from robot_rl.human.simulated import SimulatedHumanConfig

    human = SimulatedHumanConfig(triggers=("random",), random_prob=0.2, hold_steps=5)
    cfg = config(task="pick_cube", expert_demos=1, steps=220, out=tmp_path, name="hil", hil="simulated", sim_human=human,
                      eval_every=220, eval_episodes=1, checkpoint_every=220, learning_starts=64, video_episodes=0,
                      intervention_capacity=500, sac=dataclasses.replace(SMALL, bc_weight=1.0))
    train(cfg)
    episodes, errors = read_episodes(tmp_path / "hil" / "episodes", task="pick_cube")
    assert episodes and not errors
    flagged = sum(int(e.intervention.sum()) for e in episodes)
    assert 0 < flagged < sum(len(e) for e in episodes)
    assert all(e.metadata["intervention_steps"] == int(e.intervention.sum()) for e in episodes)
    # The demo buffer receives the same steps on resume as it did live.
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.data.schema import ObsSpec
    from robot_rl.train.collect import add_intervention_segments

    buffer = ReplayBuffer(ObsSpec(13, {}, ()), 4, 1000, name="demos")
    assert sum(add_intervention_segments(buffer, e) for e in episodes) == flagged == len(buffer)


def test_unknown_or_unsuitable_hil_device_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="scripted expert"):
        train(reach_config(tmp_path, hil="simulated", steps=10))


def test_training_on_a_learned_reward_with_state_observations(tmp_path):
    from robot_rl.reward.model import ClassifierSpec, RewardClassifier, save_classifier

    spec = ClassifierSpec({"front": (16, 16, 3)}, channels=4, layers=2, features=8, hidden=(8,))
    path = save_classifier(tmp_path / "clf.pt", RewardClassifier(spec), {"threshold": 0.999999})
    cfg = config(task="pick_cube", expert_demos=1, steps=150, out=tmp_path, name="learned", reward_classifier=path,
                      env_kwargs=("image_height=16", "image_width=16", "terminate_on_success=false"),
                      eval_every=150, eval_episodes=1, learning_starts=64, video_episodes=0, sac=SMALL)
    result = train(cfg)
    demos, _ = read_episodes(result.run_dir / "demos", task="pick_cube")
    episodes, _ = read_episodes(result.run_dir / "episodes", task="pick_cube")
    # A classifier that (almost) never fires: no reward anywhere, episodes run to the time limit,
    # while the agent still observes the 13-float state and the demo's true success is recorded.
    assert demos[0].observations["state"].shape[1] == 13 and demos[0].metadata["success"]
    assert all(e.rewards.sum() == 0 and e.truncated[-1] and len(e) == 100 for e in episodes + demos)
    with pytest.raises(ValueError, match="trained on 'front' 16x16; the env gives 'front' 128x128"):
        train(dataclasses.replace(cfg, name="bad", env=dataclasses.replace(cfg.env, env_kwargs=("terminate_on_success=false",)),
                                  expert_demos=0))


def test_evaluation_runs_the_between_steps_hook_after_every_step():
    from robot_rl.agents.sac import SACAgent
    from robot_rl.data.schema import ObsSpec
    from robot_rl.train.evaluate import evaluate

    env = gym.make("TinyReach-v0")
    spec = ObsSpec.from_space(env.observation_space)
    calls, steps = [], []
    counting = gym.wrappers.TransformReward(env, lambda r: steps.append(1) or r)
    evaluate(counting, SACAgent(spec, 2, SMALL), spec, episodes=2, seed=0, between_steps=lambda: calls.append(1))
    assert len(calls) == len(steps) > 2
