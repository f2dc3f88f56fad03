"""What a training run is built from: envs, agent, run directory, demos, buffers, resume, checkpoints.

Library functions shared by the single-process trainer (:mod:`robot_rl.train.loop`), the
distributed learner and the actors; each takes the typed :class:`~robot_rl.train.config.TrainConfig`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import pathlib

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from robot_rl.agents.base import Agent
from robot_rl.agents.registry import make_agent
from robot_rl.data import read_episodes
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.sampling import demo_batch
from robot_rl.data.schema import ObsSpec
from robot_rl.envs import make_env, make_envs
from robot_rl.human.devices import with_human
from robot_rl.registry import lookup, lookup_backend
from robot_rl.train.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.train.collect import add_intervention_segments
from robot_rl.train.config import TrainConfig
from robot_rl.train.init_from import load_pretrained_actor

EVAL_SEED = 1_000_000  # evaluation starts are disjoint from training resets


# ------------------------------------------------------------------------------ envs and agent
def make_train_env(cfg: TrainConfig) -> gym.Env:
    """One training env; with ``--reward-classifier`` its reward and success termination come from
    the classifier (with ``--obs state`` the backend also renders the classifier's cameras)."""
    if cfg.reward_classifier is None:
        return make_env(cfg.env)
    from robot_rl.reward.model import load_classifier
    from robot_rl.wrappers.cameras import AddCameraImages, KeepState
    from robot_rl.wrappers.reward import RewardFromClassifier

    classifier, metadata = load_classifier(cfg.reward_classifier, cfg.device)
    options = {"threshold": metadata.get("threshold"), "device": cfg.device}
    if cfg.env.obs == "pixels":
        return RewardFromClassifier(make_env(cfg.env), classifier, **options)
    if not cfg.env.is_robot_rl_task:
        raise ValueError("--reward-classifier with --obs state needs a robot_rl task (its backend renders the cameras)")
    cameras = list(classifier.spec.cameras)
    env = make_env(cfg.env.with_options(cameras=cameras))
    return KeepState(RewardFromClassifier(AddCameraImages(env, cameras), classifier, **options))


def make_train_envs(cfg: TrainConfig, stack: contextlib.ExitStack) -> VectorEnv:
    """The ``--num-envs`` training envs as one vector env, each with the human of ``--hil`` (the
    simulated one is built inside each sub-env; a device is opened here and closed with ``stack``)."""
    if cfg.hil == "none":
        make_one = None if cfg.reward_classifier is None else functools.partial(make_train_env, cfg)
    elif cfg.hil == "simulated":
        make_one = functools.partial(_with_simulated_human, cfg)
    else:
        wrapped = with_human(make_train_env(cfg), cfg.hil, stack)  # closed with the vector env
        make_one = lambda: wrapped  # noqa: E731  (one device, one env: the config allows only --num-envs 1)
    envs = make_envs(cfg.env, cfg.num_envs, "sync" if cfg.hil not in ("none", "simulated") else cfg.vectorization, make_one)
    stack.callback(envs.close)
    return envs


def is_batched(cfg: TrainConfig) -> bool:
    """The backend is a natively batched simulator (its factory makes a whole vector env)."""
    return cfg.env.is_robot_rl_task and lookup_backend(lookup(cfg.env.task), cfg.env.backend).batched


def fused_hint(envs: object, task: str) -> str | None:
    """A pointer to ``robot-rl train-fused`` when the training envs could run fused instead: a JAX
    vector env with jitted reset/step (``functional``) and a scripted expert (what train-fused's
    default TD3+BC needs). None otherwise."""
    if not (hasattr(envs, "functional") and getattr(envs, "expert", None) is not None):
        return None
    return (f"note: `robot-rl train-fused --task {task}` trains on this JAX backend with env steps and TD3+BC updates "
            f"fused under jax.jit, in seconds (README, \"Training in seconds\"); this command runs the torch SAC "
            f"learner and steps the batched env from Python")


def make_eval_env(cfg: TrainConfig) -> gym.Env | VectorEnv:
    """The evaluation env: one rendering env, or for a natively batched backend ``--eval-episodes``
    sub-envs of it evaluated at once (:func:`robot_rl.train.evaluate.evaluate_batched`)."""
    return make_envs(cfg.env, cfg.eval_episodes) if is_batched(cfg) else make_env(cfg.env, render=True)


def _with_simulated_human(cfg: TrainConfig) -> gym.Env:
    """A training env the task's scripted expert takes over when the policy strays (module-level,
    so subprocess workers can build it; the simulated human holds nothing to close)."""
    return with_human(make_train_env(cfg), "simulated", contextlib.ExitStack(), cfg.sim_human)


def spaces_of(env: gym.Env | VectorEnv) -> tuple[ObsSpec, int]:
    """The canonical observation spec and the action size of an env or a vector env's sub-env."""
    observation = getattr(env, "single_observation_space", env.observation_space)
    action = getattr(env, "single_action_space", env.action_space)
    return ObsSpec.from_space(observation), int(np.prod(action.shape))


def build_agent(cfg: TrainConfig, spec: ObsSpec, action_dim: int) -> Agent:
    """The ``--algo`` agent; with ``--init-from`` its actor holds the pre-trained weights (checked), or
    with ``--init-residual-scale`` it is the frozen pre-trained actor plus a residual (:mod:`robot_rl.train.residual`)."""
    make = functools.partial(make_agent, cfg.algo, spec, action_dim, device=cfg.device, seed=cfg.env.seed)
    if cfg.init_residual_scale is not None:
        from robot_rl.train.residual import build_residual_agent

        return build_residual_agent(make, cfg.init_from, cfg.env.task, cfg.env.options(), cfg.init_residual_scale, cfg.agent_config)
    agent = make(cfg.agent_config)
    if cfg.init_from is not None:
        load_pretrained_actor(agent, cfg.init_from, cfg.env.task, cfg.env.options())
        if getattr(cfg.agent_config, "trust_region_weight", 0) > 0:
            agent.set_trust_region_reference()  # the pre-trained actor, also when a checkpoint is resumed over it
    return agent


# ------------------------------------------------------------------------------ run directory and data
def prepare_run_dir(cfg: TrainConfig) -> pathlib.Path:
    """Create the run directory and save the resolved config; refuse to clobber a run."""
    run_dir = cfg.run_dir
    if run_dir.exists() and (run_dir / "config.json").exists() and not cfg.resume:
        raise FileExistsError(f"run directory {run_dir} exists: pass --resume to continue it or --name to start another")
    (run_dir / "episodes").mkdir(parents=True, exist_ok=True)
    config = json.dumps(dataclasses.asdict(cfg), indent=1, default=str)
    (run_dir / "config.json").write_text(config + "\n")
    return run_dir


def demo_directory(cfg: TrainConfig, run_dir: pathlib.Path) -> pathlib.Path | None:
    """``--demos``, or freshly recorded expert demos under the run directory."""
    if cfg.demos is not None:
        return cfg.demos
    if cfg.expert_demos <= 0:
        return None
    if not cfg.env.is_robot_rl_task:
        raise ValueError(f"--expert-demos needs a robot_rl task with a scripted expert; {cfg.env.task!r} is not one")
    demo_dir = run_dir / "demos"
    if not any(demo_dir.glob("*.npz")):
        from robot_rl.human.recording import expert_policy, record

        print(f"recording {cfg.expert_demos} expert demos into {demo_dir}", flush=True)
        env = make_train_env(cfg)  # demos get the training reward (a learned one too)
        try:
            record(env, expert_policy, demo_dir, cfg.expert_demos, cfg.env.seed + 500_000, cfg.env.backend, "expert")
        finally:
            env.close()
    return demo_dir


def episodes_buffer(directory: pathlib.Path, task: str | None, spec: ObsSpec, action_dim: int, name: str, seed: int,
                    extra_capacity: int = 0, agent_config=None) -> ReplayBuffer:
    """A replay buffer holding every readable episode file of ``directory`` (plus ``extra_capacity`` slots);
    ``agent_config`` picks its kind (:func:`new_replay`)."""
    episodes, errors = read_episodes(directory, task=task)
    for err in errors:
        print(f"skipping {err}", flush=True)
    needed = sum(len(e) + 1 for e in episodes) + 1
    buffer = new_replay(agent_config, spec, action_dim, max(needed + extra_capacity, 2), name, seed)
    for episode in episodes:
        buffer.add_episode(episode)
    return buffer


def make_demo_buffer(cfg: TrainConfig, demo_dir: pathlib.Path | None, spec: ObsSpec, action_dim: int) -> ReplayBuffer | None:
    """Demos from ``demo_dir`` plus room for interventions when a human is in the loop."""
    room = cfg.intervention_capacity if cfg.hil != "none" and cfg.algo != "bc" else 0
    if demo_dir is None and not room:
        return None
    if demo_dir is None:
        return new_replay(cfg.agent_config, spec, action_dim, room, "demos", cfg.env.seed + 1)
    return episodes_buffer(demo_dir, episode_task(cfg), spec, action_dim, "demos", cfg.env.seed + 1, extra_capacity=room,
                           agent_config=cfg.agent_config)


def new_replay(agent_config, spec: ObsSpec, action_dim: int, capacity: int, name: str, seed: int) -> ReplayBuffer:
    """A :class:`ReplayBuffer`, or with ``--sac.image-encoder frozen`` a feature cache of the frozen encoder
    (features computed once per stored frame: :func:`robot_rl.encoders.cached.replay_buffer`)."""
    from robot_rl.encoders.cached import replay_buffer

    return replay_buffer(agent_config, spec, action_dim, capacity, name, seed)


def episode_task(cfg: TrainConfig) -> str | None:
    """The task name episode files must carry to be read (None: any, for gymnasium envs)."""
    return cfg.env.task if cfg.env.is_robot_rl_task else None


def pretrain(agent: Agent, demos: ReplayBuffer | None, updates: int, agent_config) -> None:
    """``updates`` agent updates on demo-only batches before the first env step (offline warm start)."""
    if updates <= 0:
        return
    if demos is None or not len(demos):
        raise ValueError("--pretrain-updates needs demonstrations: --demos DIR or --expert-demos N")
    print(f"pretraining on {len(demos)} demo transitions for {updates} updates", flush=True)
    for _ in range(updates):
        agent.update(demo_batch(demos, agent_config))


def restore(run_dir: pathlib.Path, agent: Agent, online: ReplayBuffer, task: str | None,
            interventions: ReplayBuffer | None = None) -> int:
    """Agent state from the checkpoint (if one was written), online data (and intervened segments,
    into ``interventions``) from the episode files; returns the env step."""
    path = run_dir / "checkpoint.pt"
    checkpoint = load_checkpoint(path) if path.exists() else None
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
    episodes, errors = read_episodes(run_dir / "episodes", task=task)
    for err in errors:
        print(f"skipping {err}", flush=True)
    for episode in episodes:
        online.add_episode(episode)
        if interventions is not None:
            add_intervention_segments(interventions, episode)
    steps = sum(len(e) for e in episodes)  # every env step the store kept (episodes in flight are lost)
    where = f"checkpoint at step {checkpoint['step']}" if checkpoint else "no checkpoint yet (fresh agent)"
    print(f"resumed {run_dir}: {where}, {len(episodes)} episodes / {steps} steps on disk", flush=True)
    return steps


def checkpoint(run_dir: pathlib.Path, agent: Agent, step: int) -> None:
    """The agent's full state (atomically) and the actor's weights alone (``actor.pt``)."""
    save_checkpoint(run_dir / "checkpoint.pt", {"agent": agent.state_dict(), "step": step})
    save_checkpoint(run_dir / "actor.pt", agent.actor_state_dict())


CONV_ENCODERS = ("conv", "pretrained")  # image encoders that run convolutions in every update
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anything here sets it (one per core, or OMP_NUM_THREADS)


def choose_threads(threads: int, spec: ObsSpec, agent_config: object) -> int:
    """torch's intra-op threads for a learner: ``threads``, or for 0 one thread unless every update runs
    convolutions over images (``--sac.image-encoder conv`` or ``pretrained``), which get torch's default.

    An update of 256-wide MLPs is hundreds of small ops; with ``OMP_WAIT_POLICY=PASSIVE`` (which
    ``robot_rl`` sets so a learner does not spin on the cores an actor's control loop needs) every op
    that goes parallel wakes a sleeping thread. Measured on the idle 2-core VM (learner_speed.py,
    frozen_encoder_speed.py): state SAC N=2 64.7 updates/s on 1 thread against 31.6 on 2, frozen
    encoder pixels 43.3 against 26.0; end-to-end DrQ at 2 x 128x128 0.09 against 0.14 (big convs do split).
    """
    if threads:
        return threads
    if spec.images and getattr(agent_config, "image_encoder", None) in CONV_ENCODERS:
        return TORCH_DEFAULT_THREADS
    return 1


def set_threads(threads: int, spec: ObsSpec, agent_config: object) -> int:
    """Set (and return) :func:`choose_threads`'s count."""
    count = choose_threads(threads, spec, agent_config)
    torch.set_num_threads(count)
    return count
