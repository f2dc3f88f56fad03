"""Single-process training: env steps and agent updates interleaved, logs, evals, checkpoints.

``train(config)`` reads top to bottom: set up the run, the envs, the agent and the buffers; then
alternate one step of the ``--num-envs`` envs (N transitions) with N (UTD-sized) updates;
evaluate, log and checkpoint on schedule; finish with a filmed evaluation and the learning curve.
The pieces are library functions (:mod:`robot_rl.train.setup`, :mod:`robot_rl.data.sampling`)
that the distributed learner and the actors use too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from robot_rl.agents.registry import agent_entry
from robot_rl.data.episode_metadata import episode_metadata
from robot_rl.data.sampling import sample_batch
from robot_rl.envs import control_hz
from robot_rl.train.collect import Collector
from robot_rl.train.config import TrainConfig
from robot_rl.train.evaluate import evaluate, evaluate_batched
from robot_rl.train.init_from import CriticWarmup, updates_start_at, warmup_demos
from robot_rl.train.logs import EpisodeWindow, Progress, RecentRate, RunLog, read_eval_csv
from robot_rl.train.setup import (EVAL_SEED, build_agent, checkpoint, demo_directory, episode_task, fused_hint,
                                  make_demo_buffer, make_eval_env, make_train_envs, new_replay, prepare_run_dir, pretrain,
                                  restore, set_threads, spaces_of)
from robot_rl.video import VideoWriter


@dataclasses.dataclass
class TrainResult:
    run_dir: pathlib.Path
    steps: int
    final_success_rate: float
    final_mean_return: float


def train(cfg: TrainConfig) -> TrainResult:
    with contextlib.ExitStack() as stack:
        online = agent_entry(cfg.algo).online
        envs = make_train_envs(cfg, stack) if online else None  # bad names fail before anything is written
        if (hint := fused_hint(envs, cfg.env.task)) is not None:
            print(hint, flush=True)
        eval_env = make_eval_env(cfg)
        stack.callback(eval_env.close)
        run_dir = prepare_run_dir(cfg)
        spec, action_dim = spaces_of(envs if envs is not None else eval_env)
        set_threads(cfg.threads, spec, cfg.agent_config)
        agent = build_agent(cfg, spec, action_dim)
        demos = make_demo_buffer(cfg, demo_directory(cfg, run_dir), spec, action_dim)
        if not online:
            return _train_offline(cfg, run_dir, agent, demos, eval_env, spec)
        return _train_online(cfg, run_dir, agent, demos, envs, eval_env, spec)


def _train_online(cfg: TrainConfig, run_dir, agent, demos, envs, eval_env, spec) -> TrainResult:
    online = new_replay(cfg.agent_config, spec, agent.action_dim, cfg.replay_capacity, "online", cfg.env.seed)
    human = cfg.hil != "none"
    step = restore(run_dir, agent, online, episode_task(cfg), demos if human else None) if cfg.resume else 0
    if step == 0:
        pretrain(agent, demos, cfg.pretrain_updates, cfg.agent_config)
    metadata = episode_metadata(cfg.env.task, cfg.env.obs, spec, envs.single_action_space, control_hz(envs), "online",
                                backend=cfg.env.backend if cfg.env.is_robot_rl_task else None,
                                state_parts=getattr(getattr(eval_env, "unwrapped", None), "state_layout", None))
    collector = Collector(envs, spec, online, run_dir / "episodes", metadata, seed=cfg.env.seed + step,
                          intervention_buffer=demos if human else None)
    run_log = RunLog(run_dir, _title(cfg), "env steps")
    progress, stats, rates = Progress(cfg.steps), EpisodeWindow(hil=human), (RecentRate(), RecentRate())
    rng, n = np.random.default_rng(cfg.env.seed), envs.num_envs
    updates, warmup = 0, CriticWarmup(cfg.critic_warmup_updates)
    while step < cfg.steps:
        explore = step < cfg.random_steps
        finished = collector.step(lambda obs: rng.uniform(-1, 1, (n, agent.action_dim)) if explore else agent.act_batch(obs))
        step += n
        for episode in finished:
            stats.add(episode)
            run_log.scalars(stats.metrics(episode), step)
        if cfg.warmup_as_demos and demos is None and len(online) >= cfg.warmup_steps:
            demos = warmup_demos(cfg, run_dir, spec, agent.action_dim)
        if len(online) >= updates_start_at(cfg.learning_starts, cfg.warmup_steps):
            for _ in range(n):  # one update per transition: --num-envs keeps the update-to-data ratio
                metrics = warmup.update(agent, sample_batch(online, demos, cfg.agent_config, cfg.demo_ratio))
                updates += 1
            if _crossed(step, n, cfg.log_every):
                run_log.scalars({**metrics, "env/steps_per_s": rates[0](collector.steps), "train/updates_per_s": rates[1](updates)}, step)
        evaluated = _crossed(step, n, cfg.eval_every) or step >= cfg.steps
        if evaluated:
            stats.last_eval = _evaluate(cfg, eval_env, agent, spec)
            run_log.evaluation(step, *stats.last_eval)
        if _crossed(step, n, cfg.checkpoint_every) or step >= cfg.steps:
            checkpoint(run_dir, agent, step)
        progress.update(step, stats.fields(rates[0](collector.steps), rates[1](updates)), force=evaluated)
    progress.close()
    return _finish(cfg, run_dir, agent, eval_env, spec, run_log, step)


def _train_offline(cfg: TrainConfig, run_dir, agent, demos, eval_env, spec) -> TrainResult:
    """Learning from the demonstrations alone (``--algo bc``): ``--steps`` gradient updates."""
    run_log = RunLog(run_dir, _title(cfg), "gradient updates")
    progress, stats, rate = Progress(cfg.steps), EpisodeWindow(), RecentRate()
    for step in range(1, cfg.steps + 1):
        metrics = agent.update(demos.sample(cfg.agent_config.batch_size))
        if step % cfg.log_every == 0:
            run_log.scalars({**metrics, "train/updates_per_s": rate(step)}, step)
        evaluated = step % cfg.eval_every == 0 or step == cfg.steps
        if evaluated:
            stats.last_eval = _evaluate(cfg, eval_env, agent, spec)
            run_log.evaluation(step, *stats.last_eval)
        progress.update(step, stats.fields(0.0, rate(step)), force=evaluated)
    progress.close()
    checkpoint(run_dir, agent, cfg.steps)
    return _finish(cfg, run_dir, agent, eval_env, spec, run_log, cfg.steps)


def _evaluate(cfg: TrainConfig, eval_env, agent, spec) -> tuple[float, float]:
    if isinstance(eval_env, VectorEnv):
        return evaluate_batched(eval_env, agent, spec, EVAL_SEED)
    return evaluate(eval_env, agent, spec, cfg.eval_episodes, EVAL_SEED)


def _crossed(step: int, stride: int, every: int) -> bool:
    """Whether the last ``stride`` steps, ending at ``step``, passed a multiple of ``every``."""
    return step // every > (step - stride) // every


def _title(cfg: TrainConfig) -> str:
    return f"{cfg.env.task} {cfg.algo} ({cfg.env.obs}), seed {cfg.env.seed}"


def _finish(cfg: TrainConfig, run_dir, agent, eval_env, spec, run_log: RunLog, step: int) -> TrainResult:
    """Filmed final evaluation, summary line (the curve is up to date since the last evaluation)."""
    video = _video_writer(cfg, run_dir, eval_env)
    if video is not None:
        evaluate(eval_env, agent, spec, max(cfg.video_episodes, 1), EVAL_SEED, video, cfg.video_episodes)
        video.close()
    run_log.close()
    rows = read_eval_csv(run_log.eval_csv)
    last = (rows[-1]["success_rate"], rows[-1]["mean_return"]) if rows else (float("nan"), float("nan"))
    success_text = "n/a" if np.isnan(last[0]) else f"{last[0]:.0%}"
    png = run_log.curve_png if run_log.curve_png.exists() else None
    print(f"done: {step} steps; last eval success {success_text}, return {last[1]:.2f}; run: {run_dir} "
          f"(curve: {png}, video: {video and video.path})", flush=True)
    return TrainResult(run_dir, step, *last)


def _video_writer(cfg: TrainConfig, run_dir: pathlib.Path, eval_env: gym.Env) -> VideoWriter | None:
    """A writer for eval.mp4, or None (with the reason printed) when the env cannot render."""
    if not cfg.video_episodes:
        return None
    if isinstance(eval_env, VectorEnv):
        print(f"no eval video: the natively batched backend {cfg.env.backend!r} renders nothing", flush=True)
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
