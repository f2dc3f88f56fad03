"""Single-process training: env steps and agent updates interleaved, logs, evals, checkpoints.

``train(config)`` reads top to bottom: set up the run, the envs, the agent and the buffers; then
alternate one env step with one (UTD-sized) update; evaluate, log and checkpoint on schedule;
finish with a filmed evaluation and the learning curve.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import pathlib
import time

import gymnasium as gym
import numpy as np
import torch

import robot_rl
from robot_rl.data import read_episodes
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.schema import Batch, ObsSpec, concat_batches
from robot_rl.train.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.train.collect import Collector, add_intervention_segments, episode_metadata
from robot_rl.train.config import TrainConfig
from robot_rl.train.evaluate import evaluate
from robot_rl.train.human import with_human
from robot_rl.train.logs import Progress, RunLog, plot_curve
from robot_rl.video import VideoWriter

log = logging.getLogger(__name__)
EVAL_SEED = 1_000_000  # evaluation starts are disjoint from training resets


@dataclasses.dataclass
class TrainResult:
    run_dir: pathlib.Path
    steps: int
    final_success_rate: float
    final_mean_return: float


# ------------------------------------------------------------------------------ set-up
def is_robot_rl_task(name: str) -> bool:
    return name in robot_rl.tasks()


def make_env(cfg: TrainConfig, render: bool = False) -> gym.Env:
    """A robot_rl task, or any gymnasium env with its actions rescaled to [-1, 1]."""
    mode = "rgb_array" if render else None
    if is_robot_rl_task(cfg.task):
        return robot_rl.make(cfg.task, backend=cfg.backend, obs=cfg.obs, render_mode=mode, **cfg.env_options())
    try:
        env = gym.make(cfg.task, render_mode=mode, **cfg.env_options())
    except gym.error.Error as err:
        raise ValueError(f"{cfg.task!r} is neither a robot_rl task {sorted(robot_rl.tasks())} nor a gymnasium id: {err}") from err
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{cfg.task}: only Box action spaces are supported, got {env.action_space}")
    if np.any(env.action_space.low != -1.0) or np.any(env.action_space.high != 1.0):
        env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
    return env


def make_train_env(cfg: TrainConfig) -> gym.Env:
    """The training env; with ``--reward-classifier`` its reward and success termination come from
    the classifier (with ``--obs state`` the backend also renders the classifier's cameras)."""
    if cfg.reward_classifier is None:
        return make_env(cfg)
    from robot_rl.reward.model import load_classifier
    from robot_rl.wrappers.cameras import AddCameraImages, KeepState
    from robot_rl.wrappers.reward import RewardFromClassifier

    classifier, metadata = load_classifier(cfg.reward_classifier, cfg.device)
    options = {"threshold": metadata.get("threshold"), "device": cfg.device}
    if cfg.obs == "pixels":
        return RewardFromClassifier(make_env(cfg), classifier, **options)
    if not is_robot_rl_task(cfg.task):
        raise ValueError("--reward-classifier with --obs state needs a robot_rl task (its backend renders the cameras)")
    cameras = list(classifier.spec.cameras)
    env = make_env(dataclasses.replace(cfg, env_kwargs=(*cfg.env_kwargs, f"cameras={json.dumps(cameras)}")))
    return KeepState(RewardFromClassifier(AddCameraImages(env, cameras), classifier, **options))


def control_hz(env: gym.Env) -> float:
    return float(getattr(env.unwrapped, "control_hz", env.metadata.get("render_fps") or 0.0))


def make_agent(cfg: TrainConfig, spec: ObsSpec, action_dim: int):
    if cfg.algo == "bc":
        from robot_rl.agents.bc import BCAgent

        return BCAgent(spec, action_dim, cfg.bc, device=cfg.device, seed=cfg.seed)
    from robot_rl.agents.sac import SACAgent

    return SACAgent(spec, action_dim, cfg.sac, device=cfg.device, seed=cfg.seed)


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
    if not is_robot_rl_task(cfg.task):
        raise ValueError(f"--expert-demos needs a robot_rl task with a scripted expert; {cfg.task!r} is not one")
    demo_dir = run_dir / "demos"
    if not any(demo_dir.glob("*.npz")):
        from robot_rl.record import expert_policy, record

        print(f"recording {cfg.expert_demos} expert demos into {demo_dir}", flush=True)
        env = make_train_env(cfg)  # demos get the training reward (a learned one too)
        try:
            record(env, expert_policy, demo_dir, cfg.expert_demos, cfg.seed + 500_000, cfg.backend, "expert")
        finally:
            env.close()
    return demo_dir


def episodes_buffer(directory: pathlib.Path, task: str | None, spec: ObsSpec, action_dim: int, name: str, seed: int,
                    extra_capacity: int = 0) -> ReplayBuffer:
    """A replay buffer holding every readable episode file of ``directory`` (plus ``extra_capacity`` slots)."""
    episodes, errors = read_episodes(directory, task=task)
    for err in errors:
        print(f"skipping {err}", flush=True)
    needed = sum(len(e) + 1 for e in episodes) + 1
    buffer = ReplayBuffer(spec, action_dim, max(needed + extra_capacity, 2), name=name, seed=seed)
    for episode in episodes:
        buffer.add_episode(episode)
    return buffer


# ------------------------------------------------------------------------------ learning
def sample_batch(online: ReplayBuffer, demos: ReplayBuffer | None, sac, demo_ratio: float) -> Batch:
    """``sac.utd_ratio`` minibatches, each ``demo_ratio`` from demos and the rest online (RLPD)."""
    batch_size, n = sac.batch_size, sac.n_step
    n_demo = int(round(batch_size * demo_ratio)) if demos is not None and len(demos) else 0
    parts = []
    for _ in range(sac.utd_ratio):
        parts.append(online.sample(batch_size - n_demo, n_step=n, discount=sac.discount))
        if n_demo:
            part = demos.sample(n_demo, n_step=n, discount=sac.discount)
            parts.append(dataclasses.replace(part, demo=np.ones(n_demo, np.float32)))
    return concat_batches(parts)


def pretrain(agent, demos: ReplayBuffer | None, updates: int, sac) -> None:
    """``updates`` agent updates on demo-only batches before the first env step (offline warm start)."""
    if updates <= 0:
        return
    if demos is None or not len(demos):
        raise ValueError("--pretrain-updates needs demonstrations: --demos DIR or --expert-demos N")
    print(f"pretraining on {len(demos)} demo transitions for {updates} updates", flush=True)
    for _ in range(updates):
        part = demos.sample(sac.batch_size * sac.utd_ratio, n_step=sac.n_step, discount=sac.discount)
        agent.update(dataclasses.replace(part, demo=np.ones(len(part), np.float32)))


def restore(cfg: TrainConfig, run_dir: pathlib.Path, agent, online: ReplayBuffer, task: str | None,
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
    steps = sum(len(e) for e in episodes)  # every env step the store kept (an episode in flight is lost)
    where = f"checkpoint at step {checkpoint['step']}" if checkpoint else "no checkpoint yet (fresh agent)"
    print(f"resumed {run_dir}: {where}, {len(episodes)} episodes / {steps} steps on disk", flush=True)
    return steps


def checkpoint(run_dir: pathlib.Path, agent, step: int) -> None:
    save_checkpoint(run_dir / "checkpoint.pt", {"agent": agent.state_dict(), "step": step})
    torch.save(agent.actor_state_dict(), run_dir / "actor.pt.tmp")
    (run_dir / "actor.pt.tmp").replace(run_dir / "actor.pt")


# ------------------------------------------------------------------------------ the loops
def train(cfg: TrainConfig) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = cfg.task if is_robot_rl_task(cfg.task) else None
    env, eval_env = make_train_env(cfg), make_env(cfg, render=True)  # bad names fail before anything is written
    run_dir = prepare_run_dir(cfg)
    spec = ObsSpec.from_space(env.observation_space)
    action_dim = int(np.prod(env.action_space.shape))
    agent = make_agent(cfg, spec, action_dim)
    demo_dir = demo_directory(cfg, run_dir)
    demos = make_demo_buffer(cfg, demo_dir, task, spec, action_dim)
    with contextlib.ExitStack() as stack:
        stack.callback(env.close)
        stack.callback(eval_env.close)
        if cfg.algo == "bc":
            return _train_bc(cfg, run_dir, agent, demos, eval_env, spec)
        env = with_human(env, cfg.hil, stack, cfg.sim_human)
        return _train_online(cfg, run_dir, agent, demos, env, eval_env, spec, task)


def make_demo_buffer(cfg: TrainConfig, demo_dir, task, spec: ObsSpec, action_dim: int) -> ReplayBuffer | None:
    """Demos from ``demo_dir`` plus room for interventions when a human is in the loop."""
    room = cfg.intervention_capacity if cfg.hil != "none" and cfg.algo != "bc" else 0
    if demo_dir is None and not room:
        return None
    if demo_dir is None:
        return ReplayBuffer(spec, action_dim, room, name="demos", seed=cfg.seed + 1)
    return episodes_buffer(demo_dir, task, spec, action_dim, "demos", cfg.seed + 1, extra_capacity=room)


def _train_online(cfg, run_dir, agent, demos, env, eval_env, spec, task) -> TrainResult:
    online = ReplayBuffer(spec, agent.action_dim, cfg.replay_capacity, name="online", seed=cfg.seed)
    step = restore(cfg, run_dir, agent, online, task, demos if cfg.hil != "none" else None) if cfg.resume else 0
    if step == 0:
        pretrain(agent, demos, cfg.pretrain_updates, cfg.sac)
    metadata = episode_metadata(cfg.task, cfg.obs, spec, env.action_space, control_hz(env), "online")
    collector = Collector(env, spec, online, run_dir / "episodes", metadata, seed=cfg.seed + step,
                          intervention_buffer=demos if cfg.hil != "none" else None)
    run_log, progress, stats = RunLog(run_dir), Progress(cfg.steps), _Rolling(hil=cfg.hil != "none")
    rng = np.random.default_rng(cfg.seed)
    updates, t0 = 0, time.monotonic()
    while step < cfg.steps:
        explore = step < cfg.random_steps
        episode = collector.step(lambda obs: rng.uniform(-1, 1, agent.action_dim) if explore else agent.act(obs))
        step += 1
        if episode is not None:
            stats.add(episode)
            run_log.scalars(stats.metrics(episode), step)
        if len(online) >= cfg.learning_starts:
            metrics = agent.update(sample_batch(online, demos, cfg.sac, cfg.demo_ratio))
            updates += 1
            if step % cfg.log_every == 0:
                rates = {"env/steps_per_s": collector.steps / (time.monotonic() - t0), "train/updates_per_s": updates / (time.monotonic() - t0)}
                run_log.scalars({**metrics, **rates}, step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            stats.last_eval = evaluate(eval_env, agent, spec, cfg.eval_episodes, EVAL_SEED)
            run_log.evaluation(step, *stats.last_eval)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint(run_dir, agent, step)
        progress.update(step, stats.fields(collector.steps / (time.monotonic() - t0), updates / (time.monotonic() - t0)))
    progress.close()
    return _finish(cfg, run_dir, agent, eval_env, spec, run_log, step)


def _train_bc(cfg, run_dir, agent, demos, eval_env, spec) -> TrainResult:
    run_log, progress, stats = RunLog(run_dir), Progress(cfg.steps), _Rolling()
    t0 = time.monotonic()
    for step in range(1, cfg.steps + 1):
        metrics = agent.update(demos.sample(cfg.bc.batch_size))
        if step % cfg.log_every == 0:
            run_log.scalars({**metrics, "train/updates_per_s": step / (time.monotonic() - t0)}, step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            stats.last_eval = evaluate(eval_env, agent, spec, cfg.eval_episodes, EVAL_SEED)
            run_log.evaluation(step, *stats.last_eval)
        progress.update(step, stats.fields(0.0, step / (time.monotonic() - t0)))
    progress.close()
    checkpoint(run_dir, agent, cfg.steps)
    return _finish(cfg, run_dir, agent, eval_env, spec, run_log, cfg.steps)


def _finish(cfg, run_dir, agent, eval_env, spec, run_log: RunLog, step: int) -> TrainResult:
    """Filmed final evaluation, learning-curve PNG, summary line."""
    video = _video_writer(cfg, run_dir, eval_env)
    success, mean_return = evaluate(eval_env, agent, spec, max(cfg.video_episodes, 1), EVAL_SEED, video, cfg.video_episodes)
    if video is not None:
        video.close()
    run_log.close()
    xlabel = "gradient updates" if cfg.algo == "bc" else "env steps"
    png = plot_curve(run_log.eval_csv, run_dir / "curve.png", f"{cfg.task} {cfg.algo} ({cfg.obs}), seed {cfg.seed}", xlabel)
    last = _last_eval(run_log.eval_csv)
    success_text = "n/a" if np.isnan(last[0]) else f"{last[0]:.0%}"
    print(f"done: {step} steps; last eval success {success_text}, return {last[1]:.2f}; run: {run_dir} "
          f"(curve: {png}, video: {video and video.path})", flush=True)
    return TrainResult(run_dir, step, *last)


def _video_writer(cfg: TrainConfig, run_dir: pathlib.Path, eval_env: gym.Env) -> VideoWriter | None:
    """A writer for eval.mp4, or None (with the reason printed) when the env cannot render."""
    if not cfg.video_episodes:
        return None
    try:
        eval_env.reset(seed=EVAL_SEED)
        frame = eval_env.render()
    except Exception as err:  # e.g. gymnasium's DependencyNotInstalled (pygame) for classic control
        print(f"no eval video: the env cannot render ({err})", flush=True)
        return None
    if frame is None:
        print("no eval video: the env returned no frame from render()", flush=True)
        return None
    return VideoWriter(run_dir / "eval.mp4", fps=control_hz(eval_env) or 10.0)


def _last_eval(eval_csv: pathlib.Path) -> tuple[float, float]:
    from robot_rl.train.logs import read_eval_csv

    rows = read_eval_csv(eval_csv)
    return (rows[-1]["success_rate"], rows[-1]["mean_return"]) if rows else (float("nan"), float("nan"))


class _Rolling:
    """Rolling episode statistics for the status line and env/* scalars."""

    def __init__(self, window: int = 20, hil: bool = False) -> None:
        self.window, self.hil = window, hil
        self.intervention_rates: list[float] = []
        self.returns: list[float] = []
        self.successes: list[float] = []
        self.episodes = 0
        self.last_eval: tuple[float, float] | None = None

    def add(self, episode) -> None:
        self.episodes += 1
        self.returns = (self.returns + [episode.ret])[-self.window :]
        self.successes = (self.successes + [episode.success])[-self.window :]
        self.intervention_rates = (self.intervention_rates + [episode.intervention_rate])[-self.window :]

    def metrics(self, episode) -> dict[str, float]:
        out = {"env/episode_return": episode.ret, "env/episode_length": float(episode.length)}
        if not np.isnan(episode.success):
            out["env/success_rate"] = float(np.nanmean(self.successes))
        if self.hil:
            out["actor/intervention_rate"] = episode.intervention_rate
        return out

    def fields(self, steps_per_s: float, updates_per_s: float) -> dict[str, str]:
        fields = {"episodes": str(self.episodes)}
        if self.successes and not np.isnan(self.successes).all():
            fields[f"success(last {len(self.successes)})"] = f"{np.nanmean(self.successes):.0%}"
        elif self.returns:
            fields["return"] = f"{np.mean(self.returns):.1f}"
        if self.hil and self.intervention_rates:
            fields["human"] = f"{np.mean(self.intervention_rates):.0%}"
        if self.last_eval is not None:
            fields["eval"] = f"{self.last_eval[0]:.0%}" if not np.isnan(self.last_eval[0]) else f"{self.last_eval[1]:.1f}"
        fields["steps/s"] = f"{steps_per_s:.0f}"
        fields["updates/s"] = f"{updates_per_s:.0f}"
        return fields
