"""Batched training: ``--num-envs`` (sync and subprocess vector envs, a natively batched JAX
backend), the vector-env contract (SAME_STEP autoreset), and runs written before the change."""

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import pathlib

import gymnasium as gym
import numpy as np
import pytest
import torch

import tiny_envs  # noqa: F401  (registers TinyReach-v0)
from robot_rl.agents.sac import SACConfig
from robot_rl.data import read_episodes
from robot_rl.envs import EnvConfig, make_envs
from robot_rl.train.config import TrainConfig
from robot_rl.train.logs import RecentRate, read_eval_csv
from robot_rl.train.loop import train
from robot_rl.vector import final_observations, lane_infos

TINY = SACConfig(hidden_dims=(32, 32), batch_size=32)
DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "pre_families"


def start_cli(*args, cwd: pathlib.Path, name: str) -> tuple[subprocess.Popen, pathlib.Path]:
    """``robot-rl *args`` started in the background, its stdout and stderr going to ``cwd/name.log``."""
    log = cwd / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, env={**os.environ})
    return proc, log


def wait_cli(started: tuple[subprocess.Popen, pathlib.Path], timeout_s: float = 300) -> tuple[int, str]:
    """The exit status and output of a ``start_cli`` process (``TimeoutExpired`` after ``timeout_s``)."""
    proc, log = started
    code = proc.wait(timeout=timeout_s)
    return code, log.read_text(errors="replace")


# ---------------------------------------------------------------------- the vector-env contract
def test_lane_infos_and_final_observations_give_each_sub_env_its_own_last_step():
    """A vector env of two TinyReach envs against two single envs stepped alike: where an episode
    ended, the terminal observation and the final step's info are the single env's."""
    envs = make_envs(EnvConfig(task="TinyReach-v0"), num_envs=2)
    singles = [gym.make("TinyReach-v0") for _ in range(2)]
    obs, _ = envs.reset(seed=5)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=5 + i)[0], obs[i])
    rng, ended = np.random.default_rng(0), 0
    for _ in range(120):
        actions = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
        obs, _, terminated, truncated, infos = envs.step(actions)
        following, lanes = final_observations(obs, infos), lane_infos(infos, 2)
        for i, env in enumerate(singles):
            single_obs, _, single_term, single_trunc, single_info = env.step(actions[i])
            np.testing.assert_array_equal(following[i], single_obs)
            assert lanes[i].get("success") == single_info.get("success")
            assert (terminated[i], truncated[i]) == (single_term, single_trunc)
            if single_term or single_trunc:
                ended += 1
                np.testing.assert_array_equal(env.reset()[0], obs[i])  # the returned row is the reset one
    assert ended >= 4
    envs.close()


def test_a_vector_env_that_breaks_the_contract_is_refused():
    from robot_rl.vector import check_vector_env

    envs = gym.vector.SyncVectorEnv([lambda: gym.make("TinyReach-v0")])  # NEXT_STEP autoreset: gymnasium's default
    with pytest.raises(ValueError, match="SAME_STEP"):
        check_vector_env(envs, 1)
    with pytest.raises(ValueError, match="asked for 3 envs"):
        check_vector_env(envs, 3)


# ---------------------------------------------------------------------- training on N envs
def test_three_sync_envs_keep_the_update_to_data_ratio_and_write_every_episode(tmp_path):
    cfg = TrainConfig(env=EnvConfig(task="TinyReach-v0"), num_envs=3, steps=600, out=tmp_path, name="v3", eval_every=200,
                      eval_episodes=2, checkpoint_every=300, learning_starts=90, video_episodes=0, sac=TINY)
    result = train(cfg)
    assert result.steps == 600
    assert [int(r["step"]) for r in read_eval_csv(result.run_dir / "eval.csv")] == [201, 402, 600]
    episodes, errors = read_episodes(result.run_dir / "episodes")
    assert not errors and len(episodes) >= 3 * (600 // 3 // 30)  # TinyReach episodes last at most 30 steps
    assert sum(len(e) for e in episodes) <= 600
    # One update per transition once the buffer holds learning_starts (90) transitions: 3 per vector step.
    checkpoint = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["agent"]["num_updates"] == 600 - 90 + 3


def test_subprocess_envs_train_pick_cube(tmp_path):
    cfg = TrainConfig(env=EnvConfig(task="pick_cube", env_kwargs=("max_episode_steps=20",)), num_envs=2,
                      vectorization="subprocess", steps=80, out=tmp_path, name="sub", eval_every=80, eval_episodes=1,
                      learning_starts=32, video_episodes=0, sac=TINY)
    result = train(cfg)
    episodes, errors = read_episodes(result.run_dir / "episodes", task="pick_cube")
    assert not errors and len(episodes) == 4 and all(len(e) == 20 and e.truncated[-1] for e in episodes)
    assert len({e.observations["state"][0].tobytes() for e in episodes}) == 4  # every sub-env its own resets


def test_a_person_at_one_device_needs_one_env():
    with pytest.raises(ValueError, match="use --num-envs 1"):
        TrainConfig(num_envs=2, hil="keyboard")
    with pytest.raises(ValueError, match="--num-envs must be >= 1"):
        TrainConfig(num_envs=0)


# ---------------------------------------------------------------------- the extra family, only new files
def test_the_puck_family_trains_with_the_cli_on_four_envs_and_the_jax_backend(tmp_path):
    tiny = ["--sac.hidden-dims", "32", "32", "--sac.batch-size", "32", "--learning-starts", "64", "--eval-episodes", "1",
            "--video-episodes", "1"]
    # The two runs are independent (own run directories): they run side by side, one per core.
    runs = [start_cli("train", "--task", "puck_reach", "--num-envs", "4", "--expert-demos", "2", "--steps", "240",
                      "--env-kwargs", "max_episode_steps=20",
                      "--eval-every", "240", "--out", str(tmp_path), "--name", "puck4", *tiny, cwd=tmp_path, name="puck4")]
    if importlib.util.find_spec("jax") is not None:
        runs.append(start_cli("train", "--task", "puck_reach", "--backend", "jax", "--num-envs", "16", "--steps", "160",
                              "--env-kwargs", "max_episode_steps=5", "--eval-every", "160", "--out", str(tmp_path),
                              "--name", "jax", *tiny, cwd=tmp_path, name="jax"))
    try:
        code, text = wait_cli(runs[0])
        assert code == 0, text[-2000:]
        episodes, errors = read_episodes(tmp_path / "puck4" / "episodes", task="puck_reach")
        assert not errors and len(episodes) >= 4 and (tmp_path / "puck4" / "eval.mp4").exists()
        pytest.importorskip("jax")
        code, text = wait_cli(runs[1])
        assert code == 0, text[-2000:]
    finally:
        for proc, _ in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    episodes, _ = read_episodes(tmp_path / "jax" / "episodes", task="puck_reach")
    assert len(episodes) >= 16 * 2 and all(len(e) <= 5 for e in episodes)
    assert episodes[0].metadata["backend"] == "jax"


def test_a_batched_backend_takes_no_per_env_wrappers(tmp_path):
    pytest.importorskip("jax")
    cfg = TrainConfig(env=EnvConfig(task="puck_reach", backend="jax"), num_envs=4, hil="simulated", steps=10, out=tmp_path)
    with pytest.raises(ValueError, match="natively batched"):
        train(cfg)


# ---------------------------------------------------------------------- what was written before stays readable
def test_a_run_written_before_the_families_change_resumes(tmp_path):
    """tests/data/pre_families: checkpoint, episode and demo files written by the code before the
    change (tiny pick_cube run, 250 steps); --resume loads them and training goes on."""
    run = tmp_path / "pre_families"
    shutil.copytree(DATA, run)
    episodes, errors = read_episodes(run / "episodes", task="pick_cube")
    assert not errors and sum(len(e) for e in episodes) == 200
    cfg = TrainConfig(env=EnvConfig(task="pick_cube"), out=tmp_path, name="pre_families", resume=True, steps=230,
                      expert_demos=2, learning_starts=100, eval_every=230, eval_episodes=1, video_episodes=0,
                      sac=dataclasses.replace(TINY, hidden_dims=(16, 16)))
    result = train(cfg)
    assert result.steps == 230
    assert torch.load(run / "checkpoint.pt", weights_only=True)["agent"]["num_updates"] > 150  # carried on from 151


def test_recent_rate_follows_a_change_of_speed(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("robot_rl.train.logs.time.monotonic", lambda: now[0])
    rate = RecentRate(window_s=10.0)
    count = 0
    for _ in range(100):  # 100 events/s for 100 s
        now[0] += 1.0
        count += 100
        rate(count)
    for _ in range(20):  # then 10 events/s
        now[0] += 1.0
        count += 10
        last = rate(count)
    assert last == pytest.approx(10.0, rel=0.15)  # an average since the start would say ~85
