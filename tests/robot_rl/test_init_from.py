"""``--init-from``: a pre-trained actor file (made here, the way `robot-rl train-fused` writes one:
actor.pt + actor.json) is checked against the run, loaded into the agent the trainer, the learner
and the actors build, published by a real learner as its first weights, and kept unchanged by the
critic-only warm-up updates."""

import contextlib
import json
import socket

import gymnasium as gym
import numpy as np
import pytest
import torch
import zmq

from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.episodes import EpisodeRecorder, write_episode
from robot_rl.data.schema import Batch, ObsSpec
from robot_rl.distributed.config import ActorConfig, LearnerConfig
from robot_rl.distributed.learner import build_learner
from robot_rl.envs import EnvConfig
from robot_rl.train.checkpoint import save_checkpoint
from robot_rl.train.config import TrainConfig
from robot_rl.train.init_from import CriticWarmup, updates_start_at, warmup_demos
from robot_rl.train.setup import build_agent
from robot_rl.transport import Weights, messages

OBS_DIM, ACTION_DIM, HIDDEN = 34, 4, (16, 16)  # quad_hover with action_history_steps=4
SPEC = ObsSpec(state_dim=OBS_DIM)
QUAD = EnvConfig(task="quad_hover", env_kwargs=("action_history_steps=4",))


@pytest.fixture
def actor_file(tmp_path):
    """A pre-trained actor: an agent's (seed 7) actor weights and the side file train-fused writes."""
    weights = SACAgent(SPEC, ACTION_DIM, SACConfig(hidden_dims=HIDDEN), seed=7).actor_state_dict()
    save_checkpoint(tmp_path / "actor.pt", weights)
    info = {"hidden_dims": list(HIDDEN), "obs_dim": OBS_DIM, "action_dim": ACTION_DIM, "task": "quad_hover",
            "task_kwargs": ["action_history_steps=4"]}
    (tmp_path / "actor.json").write_text(json.dumps(info))
    return tmp_path / "actor.pt", weights


def train_config(path, env=QUAD, hidden=HIDDEN) -> TrainConfig:
    return TrainConfig(env=env, sac=SACConfig(hidden_dims=hidden), init_from=path)


def assert_same(weights, expected) -> None:
    assert set(weights) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0)


def test_the_trainers_agent_starts_from_the_file_and_only_the_actor_carries_over(actor_file):
    path, weights = actor_file
    agent = build_agent(train_config(path.parent), SPEC, ACTION_DIM)  # a run directory works too
    assert_same(agent.actor_state_dict(), weights)
    fresh = SACAgent(SPEC, ACTION_DIM, SACConfig(hidden_dims=HIDDEN), seed=0)
    assert_same(agent.state_dict()["modules"]["critic"], fresh.state_dict()["modules"]["critic"])
    assert not torch.equal(agent.actor_state_dict()["actor.head.weight"], fresh.actor_state_dict()["actor.head.weight"])


def test_an_actor_process_builds_the_same_pre_trained_agent(actor_file):
    path, weights = actor_file
    cfg = ActorConfig(id="a0", env=QUAD, sac=SACConfig(hidden_dims=HIDDEN), init_from=path)
    assert_same(build_agent(cfg.train_config(), SPEC, ACTION_DIM).actor_state_dict(), weights)


@pytest.mark.parametrize("cfg, spec, message", [
    (dict(hidden=(256, 256)), SPEC, "--sac.hidden-dims 16 16"),
    (dict(env=EnvConfig(task="quad_hover")), SPEC, "--env-kwargs action_history_steps=4"),
    (dict(), ObsSpec(state_dim=18), "observation features 34"),
    (dict(env=EnvConfig(task="car_lap", env_kwargs=("action_history_steps=4",))), SPEC, "an actor for task 'quad_hover', not 'car_lap'"),
])
def test_a_file_that_does_not_fit_the_run_is_refused_with_what_differs(actor_file, cfg, spec, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        build_agent(train_config(actor_file[0], **cfg), spec, ACTION_DIM)


def test_a_missing_or_foreign_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such actor file"):
        build_agent(train_config(tmp_path / "nope.pt"), SPEC, ACTION_DIM)
    save_checkpoint(tmp_path / "critic.pt", {"critic.weight": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="not actor weights"):
        build_agent(train_config(tmp_path / "critic.pt"), SPEC, ACTION_DIM)
    save_checkpoint(tmp_path / "nan.pt", {"actor.head.weight": torch.full((8, 4), float("nan"))})
    with pytest.raises(ValueError, match="non-finite"):
        build_agent(train_config(tmp_path / "nan.pt"), SPEC, ACTION_DIM)


def batch(rng: np.random.Generator, n: int = 32) -> Batch:
    obs = {"state": rng.normal(size=(n, OBS_DIM)).astype(np.float32)}
    nxt = {"state": rng.normal(size=(n, OBS_DIM)).astype(np.float32)}
    return Batch(obs=obs, action=rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32),
                 reward=rng.uniform(0, 1, n).astype(np.float32), next_obs=nxt, terminated=np.zeros(n, np.float32))


def test_critic_warmup_updates_train_the_critic_alone_then_the_actor_learns(actor_file):
    path, weights = actor_file
    agent = build_agent(train_config(path), SPEC, ACTION_DIM)
    critic_before = agent.state_dict()["modules"]["critic"]
    warmup, rng = CriticWarmup(2), np.random.default_rng(0)
    for _ in range(2):
        metrics = warmup.update(agent, batch(rng))
        assert "train/critic_loss" in metrics and "train/actor_loss" not in metrics
    assert_same(agent.actor_state_dict(), weights)  # the actor is untouched by the warm-up
    assert agent.num_updates == 0
    assert not torch.equal(agent.state_dict()["modules"]["critic"]["net.linears.0.weight"],
                         critic_before["net.linears.0.weight"])
    assert "train/actor_loss" in warmup.update(agent, batch(rng))
    assert agent.num_updates == 1
    assert not torch.equal(agent.actor_state_dict()["actor.head.weight"], weights["actor.head.weight"])
    assert updates_start_at(256, 1000) == 1000 and updates_start_at(0, 0) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_learner_publishes_the_pre_trained_actor_as_its_first_weights(actor_file, tmp_path):
    path, weights = actor_file
    ports = free_port(), free_port()
    cfg = LearnerConfig(env=QUAD, sac=SACConfig(hidden_dims=HIDDEN), init_from=path, out=tmp_path, name="run", eval=False,
                        threads=1, bind=f"tcp://127.0.0.1:{ports[0]}", weights_bind=f"tcp://127.0.0.1:{ports[1]}")
    context = zmq.Context()
    with contextlib.ExitStack() as stack:
        stack.callback(context.destroy, linger=0)
        learner = build_learner(cfg, stack)
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{ports[1]}")
        learner.publish(new=True)  # what serve() does first
        received = None
        for _ in range(50):  # a SUB socket gets what is published after it joined: resend until then (5 s at most)
            if sub.poll(100):
                received = messages.unpack(sub.recv())
                break
            learner.publish(new=False)
        assert isinstance(received, Weights) and received.version == 0 and received.learner_step == 0
        assert_same({k: torch.as_tensor(np.array(v)) for k, v in received.params.items()}, weights)


def test_warmup_episodes_become_the_demo_buffer_of_the_actor_anchor(tmp_path):
    box = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    metadata = episode_metadata("quad_hover", "state", SPEC, box, 100.0, "online")
    cfg = TrainConfig(env=QUAD, sac=SACConfig(hidden_dims=HIDDEN), warmup_steps=7, warmup_as_demos=True)
    (tmp_path / "episodes").mkdir()
    assert warmup_demos(cfg, tmp_path, SPEC, ACTION_DIM) is None  # no episode has ended yet
    rng = np.random.default_rng(0)
    for _ in range(3):
        recorder = EpisodeRecorder(metadata)
        recorder.start({"state": rng.normal(size=OBS_DIM).astype(np.float32)})
        for step in range(5):
            recorder.add(rng.uniform(-1, 1, ACTION_DIM).astype(np.float32), 0.5, False, step == 4,
                         {"state": rng.normal(size=OBS_DIM).astype(np.float32)})
        write_episode(recorder.finish(), tmp_path / "episodes")
    demos = warmup_demos(cfg, tmp_path, SPEC, ACTION_DIM)
    assert len(demos) == 10  # the first two episodes hold the 7 warm-up steps; the third is fine-tuning data
    with pytest.raises(ValueError, match="not of the learner"):
        LearnerConfig(env=QUAD, warmup_steps=7, warmup_as_demos=True)
    with pytest.raises(ValueError, match="needs --warmup-steps > 0"):
        TrainConfig(env=QUAD, warmup_as_demos=True)
