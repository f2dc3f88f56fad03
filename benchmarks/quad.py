"""Quadrotor simulation speed: our MuJoCo quad, our JAX env and crazyflow 0.4.0, in one run.

    .venv/bin/python benchmarks/quad.py [--seconds 3] [--batches 1 1024 16384] [--no-crazyflow]
                                        [--devices 2] [--device-runs 3]

Rows (each timed for ``--seconds`` after its compile, which is reported apart):

* ``mujoco backend``: one :class:`sim.quad.backend.MujocoQuad` at the motor level, physics steps of
  2 ms (RK4, motor model, drag) through ``command`` + ``sync``;
* ``mujoco RobotEnv``: ``robot_rl.make("quad_hover")`` stepped with the hold action (the hover
  fallback; thrust + rates, the rate PID at 500 Hz), 10 ms env steps;
* ``jax fused``: the JAX env's jitted ``step`` (:attr:`sim.quad.jax_env.QuadVectorEnv.functional`:
  fallback + action mapping, rate PID, mixer, RK4, the task's observation/reward/success/crash,
  SAME_STEP autoreset) scanned 100 steps per call, as a fused training loop calls it; ``hold``
  flies the hover fallback (resets rare), ``random`` takes uniform actions (crashes: resets every
  few steps); ``N devices x 1 core``: the same with the batch split over ``--devices`` single-threaded
  XLA CPU devices in one process (:mod:`robot_rl.host_devices`; child processes, since XLA's flags
  must be set before JAX starts: ``--device-runs`` of them, the row is their median and every
  run's rate is listed under the table);
* ``jax VectorEnv``: the same through ``envs.step`` (numpy in and out, infos built), hold actions;
* ``crazyflow``: ``crazyflow.Sim(n_worlds=N).step(100)`` (0.4.0 from PyPI, batched, CPU), at its
  defaults (attitude control, first-principles dynamics, Euler, 500 Hz) and with body-rate control
  and RK4 (the closest to ours); a pure simulator step (no task, no reset). It runs in its own venv,
  ``build/venv-crazyflow`` (made on first use, ~1 min; never in .venv), with this file as the peer.

Steps differ in length (ours 10 ms per env step, crazyflow 2 ms), so each row gives steps/s and
simulated seconds per wall-clock second. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRAZYFLOW = "crazyflow==0.4.0"
PEER_VENV = ROOT / "build" / "venv-crazyflow"
STAMP = PEER_VENV / ".bench-stamp.json"
SCAN_STEPS = 100


def load() -> str:
    try:
        return pathlib.Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def timed(call, seconds: float) -> tuple[int, float]:
    """Call ``call()`` (returns units done) until ``seconds`` pass: (units, elapsed seconds)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += call()
    return done, time.perf_counter() - start


# ----------------------------------------------------------------------------------------- ours
def time_mujoco_backend(seconds: float) -> dict:
    import numpy as np

    from robot_rl.backends.quadrotor import MotorThrusts
    from sim.quad.backend import MujocoQuad

    with MujocoQuad() as quad:
        quad.set_state(np.array([0.0, 0.0, 1.5]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3))
        command = MotorThrusts(thrust_frac=np.full(4, quad.config.hover_thrust_frac))

        def step() -> int:
            quad.command(command)
            quad.sync(quad.config.timestep_s)
            return 1

        steps, elapsed = timed(step, seconds)
        return {"sim": "ours mujoco backend (motor level)", "batch": 1, "step_ms": 1000 * quad.config.timestep_s,
                "steps_per_s": steps / elapsed, "compile_s": 0.0}


def time_mujoco_env(seconds: float) -> dict:
    import robot_rl

    env = robot_rl.make("quad_hover")
    env.reset(seed=0)
    hold = env.unwrapped.task.hold_action(env.unwrapped.backend.spec)

    def step() -> int:
        _, _, terminated, truncated, _ = env.step(hold)
        if terminated or truncated:
            env.reset()
        return 1

    steps, elapsed = timed(step, seconds)
    env.close()
    return {"sim": "ours mujoco RobotEnv quad_hover", "batch": 1, "step_ms": 10.0, "steps_per_s": steps / elapsed,
            "compile_s": 0.0}


def time_jax_fused(num_envs: int, seconds: float, policy: str, devices: int = 1) -> dict:
    """The fused rollout; with ``devices`` > 1 the batch is split over that many single-threaded XLA
    CPU devices (:mod:`robot_rl.host_devices`; the process must have called ``use_host_devices``)."""
    import jax
    import jax.numpy as jnp

    import robot_rl
    from robot_rl.host_devices import over_devices

    share = num_envs // devices
    envs = robot_rl.make_vector("quad_hover", backend="jax", num_envs=share)
    reset, step = envs.functional

    def body(carry, _):
        batch, key = carry
        if policy == "random":
            actions = jax.random.uniform(jax.random.fold_in(key, 7), (share, 4), jnp.float32, -1.0, 1.0)
        else:
            actions = jnp.zeros((share, 4), jnp.float32)
        batch, key, out = step(batch, key, actions)
        return (batch, key), out[1].sum()

    def scanned(carry):
        return jax.lax.scan(body, carry, None, length=SCAN_STEPS)

    start = time.perf_counter()
    if devices == 1:
        rollout = jax.jit(scanned)
        batch, key, _ = reset(jax.random.key(0))
    else:
        rollout = over_devices(scanned, devices)
        batch, key, _ = over_devices(reset, devices)(jax.random.split(jax.random.key(0), devices))
    carry = jax.block_until_ready(rollout((batch, key))[0])
    compile_s = time.perf_counter() - start
    state = {"carry": carry}

    def call() -> int:
        state["carry"], rewards = rollout(state["carry"])
        jax.block_until_ready(rewards)
        return SCAN_STEPS * share * devices

    steps, elapsed = timed(call, seconds)
    where = "" if devices == 1 else f", {devices} devices x 1 core"
    return {"sim": f"ours jax fused ({policy}{where})", "batch": share * devices, "step_ms": 1000.0 / envs.control_hz,
            "steps_per_s": steps / elapsed, "compile_s": compile_s}


def run_devices(num_envs: int, seconds: float, devices: int, runs: int) -> list[dict]:
    """:func:`time_jax_fused` over ``devices`` CPU devices, hold and random, each in ``runs`` child processes
    (XLA's device flags must be set before JAX starts); the median run's row per policy, all runs' rates in
    ``runs_steps_per_s``."""
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), "--devices-child", str(num_envs),
                               str(seconds), str(devices)], capture_output=True, text=True, timeout=900, check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"the {devices}-device child failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
        results.append(json.loads(lines[-1]))
    rows = []
    for per_policy in zip(*results):
        ranked = sorted(per_policy, key=lambda row: row["steps_per_s"])
        rows.append({**ranked[(len(ranked) - 1) // 2], "runs_steps_per_s": [row["steps_per_s"] for row in per_policy]})
    return rows


def time_jax_vector_env(num_envs: int, seconds: float) -> dict:
    import numpy as np

    import robot_rl

    envs = robot_rl.make_vector("quad_hover", backend="jax", num_envs=num_envs)
    actions = np.zeros((num_envs, 4), np.float32)
    start = time.perf_counter()
    envs.reset(seed=0)
    envs.step(actions)
    compile_s = time.perf_counter() - start
    steps, elapsed = timed(lambda: envs.step(actions) and num_envs, seconds)
    return {"sim": "ours jax VectorEnv.step (hold)", "batch": num_envs, "step_ms": 1000.0 / envs.control_hz,
            "steps_per_s": steps / elapsed, "compile_s": compile_s}


# ----------------------------------------------------------------------------------------- crazyflow
def ensure_peer_venv() -> pathlib.Path:
    """``build/venv-crazyflow`` with crazyflow 0.4.0 (made once; a stamp records the pin)."""
    python = PEER_VENV / "bin" / "python"
    wanted = {"crazyflow": CRAZYFLOW}
    if python.exists() and STAMP.exists() and json.loads(STAMP.read_text()) == wanted:
        return python
    print(f"[quad bench] installing {CRAZYFLOW} into {PEER_VENV} (one time, ~1 min)", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    guard = PEER_VENV / "constraints.txt"
    guard.write_text("torch==2.13.0\n")  # nothing may pull a CUDA torch
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(guard),
                    CRAZYFLOW], check=True, capture_output=True, text=True)
    subprocess.run([str(python), "-c", "import crazyflow"], check=True)
    STAMP.write_text(json.dumps(wanted) + "\n")
    return python


def crazyflow_peer(num_envs: int, seconds: float, config: str) -> dict:
    """Runs inside the crazyflow venv (``--peer``): time ``Sim.step(100)`` over ``num_envs`` worlds."""
    import jax
    import numpy as np
    from crazyflow import Sim
    from crazyflow.control import Control
    from crazyflow.sim.integration import Integrator

    if config == "default":
        sim = Sim(n_worlds=num_envs, n_drones=1, device="cpu")
        command = np.zeros((num_envs, 1, 4), np.float32)
        command[..., 3] = 0.0434 * 9.81 * 1.05  # roll, pitch, yaw, collective thrust [N]: climbs
        sim.attitude_control(command)
    else:
        sim = Sim(n_worlds=num_envs, n_drones=1, control=Control.body_rate, integrator=Integrator.rk4, device="cpu")
        command = np.zeros((num_envs, 1, 4), np.float32)
        command[..., 3] = 0.0434 * 9.81 * 1.05  # wx, wy, wz, collective thrust [N]
        sim.body_rate_control(command)
    sim.reset()
    start = time.perf_counter()
    for _ in range(2):  # the first call compiles, the second recompiles (the data's mjx flag flips)
        sim.step(SCAN_STEPS)
        jax.block_until_ready(sim.data)
    compile_s = time.perf_counter() - start

    def call() -> int:
        sim.step(SCAN_STEPS)
        jax.block_until_ready(sim.data)
        return SCAN_STEPS * num_envs

    steps, elapsed = timed(call, seconds)
    label = "attitude, Euler" if config == "default" else "body rates, RK4"
    return {"sim": f"crazyflow 0.4.0 Sim.step ({label})", "batch": num_envs, "step_ms": 1000.0 / sim.freq,
            "steps_per_s": steps / elapsed, "compile_s": compile_s}


def run_peer(python: pathlib.Path, num_envs: int, seconds: float, config: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run([str(python), str(pathlib.Path(__file__).resolve()), "--peer", str(num_envs), str(seconds),
                           config], capture_output=True, text=True, timeout=900, env=env, check=False,
                          cwd=PEER_VENV)  # crazyflow's MuJoCo writes MUJOCO_LOG.TXT into the working directory
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"crazyflow peer failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    lines = ["| simulator | batch | step | steps/s | simulated s per wall s | compile + first call |",
             "|---|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        sim_rate = r["steps_per_s"] * r["step_ms"] / 1000.0
        median = " (median)" if len(r.get("runs_steps_per_s", ())) > 1 else ""
        lines.append(f"| {r['sim']} | {r['batch']:,} | {r['step_ms']:g} ms | {r['steps_per_s']:,.0f}{median} | "
                     f"{sim_rate:,.0f} | {r['compile_s']:.1f} s |")
        if median:
            runs = ", ".join(f"{rate / 1e6:.2f}" for rate in r["runs_steps_per_s"])
            notes.append(f"{r['sim']} at {r['batch']:,}: {len(r['runs_steps_per_s'])} runs, {runs} million steps/s")
    return "\n".join(lines + ([""] + notes if notes else []))


def devices_child(num_envs: str, seconds: str, devices: str) -> int:
    """``--devices-child``: a fresh process whose JAX starts with ``devices`` one-core CPU devices."""
    from robot_rl.host_devices import use_host_devices

    use_host_devices(int(devices))
    print(json.dumps([time_jax_fused(int(num_envs), float(seconds), policy, int(devices)) for policy in ("hold", "random")]))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 1024, 16384])
    parser.add_argument("--no-crazyflow", action="store_true", help="skip the crazyflow rows (no side venv)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the rows here")
    parser.add_argument("--devices", type=int, default=2,
                        help="also time the fused rollout split over this many one-core CPU devices (1: not)")
    parser.add_argument("--device-runs", type=int, default=3,
                        help="processes per multi-device row (its median is the row; all are listed under the table)")
    parser.add_argument("--peer", nargs=3, metavar=("NUM_ENVS", "SECONDS", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--devices-child", nargs=3, metavar=("NUM_ENVS", "SECONDS", "DEVICES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.devices < 1 or args.device_runs < 1:
        parser.error("--devices and --device-runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peer:  # inside the crazyflow venv: nothing of ours is importable there
        print(json.dumps(crazyflow_peer(int(args.peer[0]), float(args.peer[1]), args.peer[2])))
        return 0
    sys.path.insert(0, str(ROOT))
    if args.devices_child:
        return devices_child(*args.devices_child)
    os.environ.setdefault("MUJOCO_GL", "egl")
    python = None if args.no_crazyflow else ensure_peer_venv()
    before = load()
    rows = [time_mujoco_backend(args.seconds), time_mujoco_env(args.seconds)]
    for n in args.batches:
        rows += [time_jax_fused(n, args.seconds, "hold"), time_jax_fused(n, args.seconds, "random")]
        if args.devices > 1 and n >= args.devices:
            rows += run_devices(n, args.seconds, args.devices, args.device_runs)
        rows.append(time_jax_vector_env(n, args.seconds))
        if python is not None:
            rows += [run_peer(python, n, args.seconds, config) for config in ("default", "rk4")]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {before} before, {load()} after; {args.seconds:g} s per row.\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"load_before": before, "load_after": load(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
