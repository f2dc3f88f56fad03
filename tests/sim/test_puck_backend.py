"""The MuJoCo puck backend: lifecycle, spec before connect, command clipping, stop(), cameras,
its dynamics against the closed-form model, and agreement with the JAX puck."""

import subprocess
import sys

import numpy as np
import pytest

from robot_rl.backends.base import Backend
from sim.puck.backend import MujocoPuck, MujocoPuckConfig, make_backend
from sim.puck.contract import PuckBackend, PuckCommand, PuckSceneControl, PuckState
from sim.puck.model import euler_step_arrays


def test_spec_is_known_before_connect_and_nothing_runs_in_init():
    puck = MujocoPuck(MujocoPuckConfig(max_force_n=2.0, image_height=32, image_width=40))
    assert not puck.connected and puck.model is None
    spec = puck.spec
    assert spec.max_force_n == 2.0 and spec.reach_m == pytest.approx(0.47)
    assert spec.cameras["top"].shape == (32, 40, 3) and spec.render_cameras == ("top",)
    assert isinstance(puck, Backend) and isinstance(puck, PuckBackend) and isinstance(puck, PuckSceneControl)
    with pytest.raises(RuntimeError, match="not connected"):
        puck.read_state()
    with puck:
        assert puck.connected
    assert not puck.connected


def test_state_obs_backend_observes_no_camera_but_renders():
    puck = make_backend(None, "state")
    assert dict(puck.spec.cameras) == {} and puck.spec.render_cameras == ("top",)
    with puck:
        puck.reset(np.zeros(2), np.zeros(2))
        assert puck.render("top", 24, 32).shape == (24, 32, 3)


def test_command_is_clipped_per_axis_and_returns_what_was_applied():
    with MujocoPuck() as puck:
        puck.reset(np.zeros(2), np.zeros(2))
        sent = puck.command(PuckCommand(np.array([3.0, -0.4])))
        np.testing.assert_array_equal(sent.force_n, [1.0, -0.4])
        np.testing.assert_array_equal(puck.data.ctrl, sent.force_n)  # what the motors apply
        np.testing.assert_array_equal(puck.command(PuckCommand([-7.0, 7.0])).force_n, [-1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        PuckCommand([np.nan, 0.0])
    with pytest.raises(ValueError, match=r"\(2,\)"):
        PuckState(time_s=0.0, pos_m=np.zeros(3), vel_m_s=np.zeros(2))


def test_stop_zeroes_the_force_and_damping_brings_the_puck_to_rest():
    with MujocoPuck() as puck:
        puck.reset(np.array([-0.2, 0.0]), np.array([0.5, -0.3]))
        puck.command(PuckCommand([0.5, 0.5]))
        puck.sync(0.1)
        puck.stop()
        np.testing.assert_array_equal(puck.data.ctrl, [0.0, 0.0])
        puck.sync(2.0)  # 8 time constants (mass / damping = 0.25 s)
        state = puck.read_state()
        assert np.linalg.norm(state.vel_m_s) < 1e-3 and np.all(np.abs(state.pos_m) < 0.47)
        before = state.pos_m.copy()
        puck.sync(0.5)
        assert np.linalg.norm(puck.read_state().pos_m - before) < 1e-3


def test_reset_outside_the_walls_is_refused():
    with MujocoPuck() as puck, pytest.raises(ValueError, match="outside the walls"):
        puck.reset(np.array([0.49, 0.0]), np.zeros(2))


def test_render_shape_dtype_and_unknown_camera():
    with MujocoPuck(MujocoPuckConfig(image_height=48, image_width=64)) as puck:
        puck.reset(np.zeros(2), np.zeros(2))
        image = puck.render("top")
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and image.std() > 5
        assert puck.render("top", 16, 16).shape == (16, 16, 3)
        with pytest.raises(KeyError, match="top"):
            puck.render("front")


def test_mujoco_steps_are_the_documented_euler_step_exactly():
    """MuJoCo's Euler with implicit damping is what sim/puck/model.py writes down (float64)."""
    config = MujocoPuckConfig()
    with MujocoPuck(config) as puck:
        pos, vel = np.array([0.1, -0.2]), np.array([0.3, 0.1])
        puck.reset(pos, vel)
        force = puck.command(PuckCommand([0.7, -1.0])).force_n
        puck.sync(0.05)
        for _ in range(config.substeps(0.05)):
            pos, vel = euler_step_arrays(pos, vel, force, config.mass_kg, config.damping_n_s_m, config.timestep_s, np)
        state = puck.read_state()
        np.testing.assert_allclose(state.pos_m, pos, rtol=0, atol=1e-12)
        np.testing.assert_allclose(state.vel_m_s, vel, rtol=0, atol=1e-12)


def test_mujoco_and_jax_trajectories_agree_without_wall_contact():
    """Same start, same 60 forces (3 s at 20 Hz, 600 physics steps) on both simulators.

    Same integrator and timestep, so the only difference is JAX's float32 against MuJoCo's
    float64: a rounding of ~6e-8 relative per operation, accumulated over 600 steps of a stable
    (damped) system, stays below 1e-6 (measured: 2e-7 m, 2e-7 m/s). 1e-5 m and 1e-5 m/s leave a
    50x margin, while a modelling difference fails by far: explicit instead of MuJoCo's implicit
    damping alone moves this trajectory by 3e-3 m.
    """
    pytest.importorskip("jax")
    from sim.puck.jax_env import make_vector_env
    from tasks.puck.reach import make_task

    env = make_vector_env(make_task(goal_tolerance_m=1e-4), "state", num_envs=1)  # no success: no autoreset
    obs, _ = env.reset(seed=5)
    with MujocoPuck() as puck:
        state = puck.reset(obs[0, :2].astype(np.float64), np.zeros(2))
        for t in range(60):
            # Any force sequence works; this one wanders about the centre so that no wall is hit.
            wander = 0.5 * np.array([np.sin(t / 4.0), np.cos(t / 5.0)])
            action = np.clip(wander - 1.5 * state.pos_m - 0.3 * state.vel_m_s, -1, 1).astype(np.float32)
            obs, _, terminated, truncated, _ = env.step(action[None])
            assert not (terminated[0] or truncated[0])
            puck.command(PuckCommand(action.astype(np.float64) * puck.spec.max_force_n))
            puck.sync(0.05)
            state = puck.read_state()
            assert np.all(np.abs(state.pos_m) < puck.spec.reach_m - 0.01), "the test must not touch a wall"
            np.testing.assert_allclose(obs[0, :2], state.pos_m, rtol=0, atol=1e-5)
            np.testing.assert_allclose(obs[0, 2:4], state.vel_m_s, rtol=0, atol=1e-5)


def test_importing_the_family_is_cheap():
    """Registration imports neither MuJoCo nor JAX; a MuJoCo env never imports JAX."""
    code = ("import sys, sim.puck, tasks.puck, tasks.puck.reach; "
            "assert not {'jax', 'mujoco'} & set(sys.modules), 'heavy import'; "
            "import robot_rl; robot_rl.make('puck_reach').reset(seed=0); assert 'jax' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
