"""``robot-rl train-fused``: train a policy in a natively batched JAX sim with the fused TD3 loop,
convert it to the torch actor, and evaluate it in the MuJoCo sim (another simulator).

The run directory gets TensorBoard scalars, ``eval.csv`` + ``curve.png`` (training episodes' final
success and return against env steps), ``actor.pt`` + ``actor.json`` (the torch actor's weights,
what ``robot-rl actor ... --init-from`` loads, and how it was trained), ``policy.h`` (the same
actor as a C header, :mod:`robot_rl.fused.export_c`), ``eval.mp4`` (MuJoCo
evaluation episodes) and ``result.json`` (train wall time, the MuJoCo hold metrics).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from robot_rl.fused.config import FusedConfig, TD3Config

EVAL_SEED = 1_000_000  # evaluation starts are disjoint from anything the JAX sim drew


def _quad_defaults() -> FusedConfig:
    """What trains quad_hover (README, "Training in seconds"): TD3+BC toward the position controller."""
    return FusedConfig(num_envs=32, env_steps=64_000, updates_per_step=2, learning_starts=2_000, chunk_steps=200,
                       td3=TD3Config(batch_size=64, bc_weight=10.0, bc_final_weight=10.0))


@dataclasses.dataclass
class TrainFused:
    """Train in the JAX sim with env steps and TD3 updates fused under jax.jit, write the torch
    actor (actor.pt) and evaluate it in MuJoCo; everything goes to <out>/<name>/."""

    task: str = "quad_hover"
    """A robot_rl task whose family has a natively batched JAX backend (`robot-rl envs`)."""
    task_kwargs: tuple[str, ...] = ("action_history_steps=4",)
    """Task options KEY=VALUE, for training and evaluation alike (they shape the observation)."""
    jax_kwargs: tuple[str, ...] = ("physics_hz=100",)
    """Options of the JAX backend only, KEY=VALUE (physics rate, domain randomization)."""
    jax_backend: str = "jax"
    """The natively batched backend to train on."""
    eval_backend: str = "sim"
    """The backend to evaluate on (MuJoCo: a different simulator from the training one)."""
    fused: FusedConfig = dataclasses.field(default_factory=_quad_defaults)
    """The fused loop and TD3 settings."""
    eval_episodes: int = 32
    """Evaluation episodes in the eval backend (0: none)."""
    tolerance_m: float = 0.05
    """An evaluation episode holds when its final-second error RMS is within this [m]."""
    video_episodes: int = 2
    """Evaluation episodes filmed into eval.mp4 (0: none)."""
    compile_cache: pathlib.Path | None = None
    """A directory for JAX's persistent compilation cache: a second run with the same settings
    skips most of the compilation."""
    out: pathlib.Path = pathlib.Path("runs")
    """Parent directory of the run directory."""
    name: str | None = None
    """Run name (default: <task>-fused-td3-s<seed>)."""

    def __post_init__(self) -> None:
        if self.eval_episodes < 0 or self.video_episodes < 0 or not self.tolerance_m > 0:
            raise ValueError("--eval-episodes and --video-episodes must be >= 0 and --tolerance-m > 0")

    @property
    def run_dir(self) -> pathlib.Path:
        return self.out / (self.name or f"{self.task}-fused-td3-s{self.fused.seed}")

    def run(self) -> int:
        from robot_rl.fused.run import train_fused

        result = train_fused(self)
        print(json.dumps(result, indent=1))
        return 0


def prepare(cfg: "TrainFused") -> pathlib.Path:
    """Create the run directory and write the resolved config; refuse to clobber a run."""
    run_dir = cfg.run_dir
    if (run_dir / "config.json").exists():
        raise FileExistsError(f"run directory {run_dir} exists: pass --name to start another")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1, default=str) + "\n")
    return run_dir
