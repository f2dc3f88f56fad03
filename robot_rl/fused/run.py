"""The steps of ``robot-rl train-fused`` (:class:`robot_rl.fused.command.TrainFused`): train fused in JAX,
write the torch actor (and its C header), load it back as the torch agent and evaluate that in the
other simulator."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import jax

from robot_rl.agents.sac import SACAgent, SACConfig
from robot_rl.data.schema import ObsSpec
from robot_rl.files import atomic_write
from robot_rl.fused.command import EVAL_SEED, TrainFused, prepare
from robot_rl.fused.convert import actor_state_dict, save_actor
from robot_rl.fused.export_c import write_c_header
from robot_rl.fused.evaluate import HoldResult, evaluate_hold
from robot_rl.fused.loop import FusedEnv, LoopState, fused_env, train
from robot_rl.registry import make, parse_overrides
from robot_rl.train.checkpoint import load_checkpoint
from robot_rl.train.logs import Progress, RunLog
from robot_rl.vector import make_vector
from robot_rl.video import VideoWriter

CURVE_EVERY_S = 10.0


def load_torch_agent(run_dir: pathlib.Path, obs_spec: ObsSpec) -> SACAgent:
    """The torch SAC agent holding ``run_dir/actor.pt`` (widths from ``actor.json``): what actors run."""
    info = json.loads((run_dir / "actor.json").read_text())
    agent = SACAgent(obs_spec, info["action_dim"], SACConfig(hidden_dims=tuple(info["hidden_dims"])))
    agent.load_actor_state_dict(load_checkpoint(run_dir / "actor.pt"))
    return agent


def _reporter(log: RunLog, progress: Progress):
    last_curve = [time.monotonic()]

    def report(steps: int, updates: int, summary: dict[str, float], elapsed_s: float) -> None:
        log.scalars({**summary, "time/elapsed_s": elapsed_s, "train/updates": updates}, steps)
        fields = {"updates": str(updates), "reward/step": f"{summary['env/step_reward']:.3f}",
                  "elapsed": f"{elapsed_s:.1f} s"}
        if "env/final_success_rate" in summary:
            fields["success at end"] = f"{summary['env/final_success_rate']:.0%}"
            fields["crash"] = f"{summary['env/crash_rate']:.0%}"
            if time.monotonic() - last_curve[0] > CURVE_EVERY_S or steps >= progress.total:
                log.evaluation(steps, summary["env/final_success_rate"], summary["env/episode_return"])
                last_curve[0] = time.monotonic()
        progress.update(steps, fields, force=steps >= progress.total)

    return report


def train_jax(cfg: TrainFused, run_dir: pathlib.Path, options: dict[str, Any]) -> tuple[FusedEnv, LoopState, float]:
    """Build the JAX env and run the fused loop; returns the env, the final state and the wall time
    from building the env to the trained actor (compilation included) [s]."""
    start = time.perf_counter()
    vector_env = make_vector(cfg.task, backend=cfg.jax_backend, num_envs=cfg.fused.num_envs, **options)
    env = fused_env(vector_env, reward_terms=cfg.fused.curriculum.enabled)
    log = RunLog(run_dir, f"{cfg.task} fused TD3 (training episodes, with exploration noise)", "env steps")
    progress = Progress(cfg.fused.chunks * cfg.fused.chunk_steps * cfg.fused.num_envs, period_s=2.0)
    print(f"fused TD3 on {cfg.task} ({cfg.jax_backend}): {cfg.fused.num_envs} envs, obs {env.obs_dim}, "
          f"privileged {env.privileged_dim}; compiling...", flush=True)
    try:
        state, _ = train(env, cfg.fused, _reporter(log, progress))
        jax.block_until_ready(state.agent.actor)
        wall_s = time.perf_counter() - start
    finally:
        progress.close()
        log.close()
    return env, state, wall_s


def evaluate_torch(cfg: TrainFused, run_dir: pathlib.Path, task_options: dict[str, Any]) -> HoldResult:
    """The converted torch actor, loaded as the SAC agent, flown in the eval backend."""
    env = make(cfg.task, backend=cfg.eval_backend, render_mode="rgb_array" if cfg.video_episodes else None,
               **task_options)
    video = VideoWriter(run_dir / "eval.mp4", fps=100.0) if cfg.video_episodes else None
    try:
        spec = ObsSpec.from_space(env.observation_space)
        agent = load_torch_agent(run_dir, spec)
        act = lambda obs: agent.act(spec.canonical(obs), deterministic=True)  # noqa: E731
        return evaluate_hold(env, act, cfg.eval_episodes, EVAL_SEED, cfg.tolerance_m, video, cfg.video_episodes)
    finally:
        if video is not None:
            video.close()
        env.close()


def export(run_dir: pathlib.Path, weights: dict[str, Any]) -> None:
    """``policy.h`` always; ``policy.onnx`` when the onnx package is installed (the ``export`` extra)."""
    write_c_header(run_dir / "policy.h", weights)
    try:
        from robot_rl.fused.export_onnx import export_onnx

        export_onnx(run_dir / "policy.onnx", weights)
    except ModuleNotFoundError as err:
        print(f"no policy.onnx: {err}", flush=True)


def train_fused(cfg: TrainFused) -> dict[str, Any]:
    if cfg.compile_cache is not None:
        jax.config.update("jax_compilation_cache_dir", str(cfg.compile_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    task_options, jax_options = parse_overrides(cfg.task_kwargs), parse_overrides(cfg.jax_kwargs)
    run_dir = prepare(cfg)
    _, state, wall_s = train_jax(cfg, run_dir, {**task_options, **jax_options})
    actor = jax.device_get(state.agent.actor)
    save_actor(run_dir, actor, {"task": cfg.task, "task_kwargs": list(cfg.task_kwargs), "jax_kwargs": list(cfg.jax_kwargs)})
    export(run_dir, actor_state_dict(actor))
    result: dict[str, Any] = {"train_wall_s": round(wall_s, 2), "env_steps": cfg.fused.chunks * cfg.fused.chunk_steps
                              * cfg.fused.num_envs, "actor": str(run_dir / "actor.pt")}
    print(f"trained in {wall_s:.1f} s (compilation included); torch actor: {run_dir / 'actor.pt'}", flush=True)
    if cfg.eval_episodes:
        hold = evaluate_torch(cfg, run_dir, task_options)
        print(f"{cfg.eval_backend} evaluation: {hold.line()}", flush=True)
        result.update({k.removeprefix("eval/"): v for k, v in hold.metrics().items()}, episodes=hold.episodes,
                      within_tolerance=hold.within_tolerance, final_rms_m=[round(v, 5) for v in hold.final_rms_m])
        log = RunLog(run_dir)
        log.scalars(hold.metrics(), result["env_steps"])
        log.close()
    text = json.dumps(result, indent=1, default=float) + "\n"
    atomic_write(run_dir / "result.json", lambda file: file.write(text.encode()))
    return result
