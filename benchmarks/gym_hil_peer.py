"""Time gym-hil's pick-cube env as a baseline peer for ``sim_speed.py``.

Run with the bench venv's python (see ``bench_venv.py``), never ours: gym-hil
pins ``mujoco<3.9``, which conflicts with our own dependencies.

    .venv-bench/bin/python benchmarks/gym_hil_peer.py --obs state --steps 2000 --seconds 30

Env: ``gym_hil/PandaPickCubeBase-v0`` (no wrappers beyond gymnasium's
defaults; the registration adds ``max_episode_steps=100``).

* ``--obs state``  -> ``image_obs=False``: ``agent_pos`` (18,) + ``environment_state`` (3,).
* ``--obs pixels`` -> ``image_obs=True``: ``pixels.front`` and ``pixels.wrist``
  (MJCF cameras ``front`` and ``handcam_rgb``) plus ``agent_pos``. Both cameras
  share one size, set through ``render_spec=GymRenderingSpec(height, width)``.

Note that gym-hil builds a ``mujoco.Renderer`` in the constructor even for state
obs, so an OpenGL backend is needed either way (we default ``MUJOCO_GL=egl``).

Random actions from the env's seeded action space; reset on termination or
truncation. Only the ``step``/``reset`` calls after a short warm-up are timed.
Stops after ``--steps`` timed steps or ``--seconds`` wall time, whichever first.
Prints exactly one JSON line on stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported anywhere

WARMUP_STEPS = {"state": 20, "pixels": 3}
ENV_ID = "gym_hil/PandaPickCubeBase-v0"


def _log(msg: str) -> None:
    print(f"[gym_hil_peer] {msg}", file=sys.stderr, flush=True)


def _gl_renderer() -> str | None:
    """Best effort: the GL_RENDERER string of the current context (e.g. llvmpipe)."""
    try:
        from OpenGL.GL import GL_RENDERER, glGetString

        value = glGetString(GL_RENDERER)
        return value.decode() if isinstance(value, bytes) else None
    except Exception:  # noqa: BLE001 - purely informational
        return None


def _shapes(obs: dict, prefix: str = "") -> dict[str, list[int]]:
    """Flatten a nested obs dict into ``{"a.b": shape}``."""
    out: dict[str, list[int]] = {}
    for key, value in obs.items():
        if isinstance(value, dict):
            out.update(_shapes(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(getattr(value, "shape", ()))
    return out


def run(obs_type: str, steps: int, seconds: float, size: int, seed: int) -> dict:
    """Create the env, warm it up, time ``steps`` random steps, return the result dict."""
    import gymnasium as gym
    import mujoco

    import gym_hil  # noqa: F401 - registers the gym_hil/* ids
    from gym_hil import GymRenderingSpec

    try:
        from importlib.metadata import version

        hil_version = version("gym-hil")
    except Exception:  # noqa: BLE001
        hil_version = "unknown"

    env = gym.make(
        ENV_ID,
        image_obs=(obs_type == "pixels"),
        render_spec=GymRenderingSpec(height=size, width=size),
        seed=seed,
    )
    env.action_space.seed(seed)
    gl_renderer = _gl_renderer()  # the constructor already rendered once

    obs, _ = env.reset(seed=seed)
    for _ in range(WARMUP_STEPS[obs_type]):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()

    timed = 0.0
    n = resets = 0
    start = time.perf_counter()
    while n < steps and time.perf_counter() - start < seconds:
        action = env.action_space.sample()
        t0 = time.perf_counter()
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            obs, _ = env.reset()
            resets += 1
        timed += time.perf_counter() - t0
        n += 1
    env.close()

    shapes = _shapes(obs)
    return {
        "env": ENV_ID,
        "obs": obs_type,
        "steps": n,
        "seconds": round(timed, 4),
        "steps_per_s": round(n / timed, 2) if timed > 0 else 0.0,
        "image_shapes": {k.split(".", 1)[1]: v for k, v in shapes.items() if k.startswith("pixels.")},
        "state_shapes": {k: v for k, v in shapes.items() if not k.startswith("pixels.")},
        "resets": resets,
        "gym_hil_version": hil_version,
        "mujoco_version": mujoco.__version__,
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "gl_renderer": gl_renderer,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obs", choices=("state", "pixels"), default="state")
    parser.add_argument("--steps", type=int, default=2000, help="max timed steps")
    parser.add_argument("--seconds", type=float, default=30.0, help="max wall time of the timed loop")
    parser.add_argument("--size", type=int, default=128, help="camera height = width (pixels obs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # Keep stdout clean for the JSON line: anything libraries print goes to stderr.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        _log(f"{ENV_ID} obs={args.obs} steps<={args.steps} seconds<={args.seconds} MUJOCO_GL={os.environ['MUJOCO_GL']}")
        result = run(args.obs, args.steps, args.seconds, args.size, args.seed)
    finally:
        sys.stdout = real_stdout
    _log(f"{result['steps']} steps in {result['seconds']:.2f}s -> {result['steps_per_s']} steps/s")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
