"""make(), the gymnasium registration and their errors."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import robot_rl
from robot_rl import registry
from robot_rl.registry import BackendEntry, TaskEntry, lookup, split_overrides


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'pick_sphere'; known tasks: \[.*'pick_cube'"):
        robot_rl.make("pick_sphere")


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"\(arm family\) has no backend 'franka'; known backends: \['fr3', 'panda', 'remote', 'ros_arm', 'sim', 'ur'\]"):
        robot_rl.make("pick_cube", backend="franka")


def test_unknown_obs_mode_and_option_are_named():
    with pytest.raises(ValueError, match="unknown obs mode 'depth'"):
        robot_rl.make("pick_cube", obs="depth")
    with pytest.raises(ValueError, match="unknown option 'dense_rewards'.*dense_reward"):
        robot_rl.make("pick_cube", dense_rewards=True)


def test_overrides_reach_task_backend_and_env():
    env = robot_rl.make("pick_cube", obs="pixels", max_episode_steps=7, physics_hz=250.0, image_height=24, control_hz=5.0)
    try:
        u = env.unwrapped
        assert u.task.max_episode_steps == 7 and u.control_hz == 5.0
        assert u.backend.config.physics_hz == 250.0
        assert env.observation_space["front"].shape == (24, 128, 3)
    finally:
        env.close()


def test_spaces_are_known_before_the_backend_connects():
    env = robot_rl.make("pick_cube", obs="pixels")
    assert not env.unwrapped.backend.connected
    assert env.action_space.shape == (4,)
    assert set(env.observation_space.spaces) == {"state", "front", "wrist"}
    assert env.unwrapped.observation_spec()["state"]["parts"]["tcp_pos_m"] == [0, 3]


def test_step_before_reset_and_wrong_actions_raise_clearly():
    env = robot_rl.make("pick_cube")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="float array"):
        env.step("up")
    env.close()


def test_register_a_third_party_task():
    robot_rl.register(TaskEntry("pick_cube_dense", "arm", "tasks.arm.pick_cube:make_task", "pick_cube, dense reward",
                                config="tasks.arm.pick_cube:PickCubeConfig"))
    assert lookup("pick_cube_dense").gym_id == "robot_rl/PickCubeDense-v0"
    env = robot_rl.make("pick_cube_dense", dense_reward=True)
    assert env.unwrapped.task.config.dense_reward
    env.close()


def test_the_installed_entry_points_register_the_arm_family():
    assert robot_rl.tasks()["pick_cube"].family == "arm"
    assert ("arm", "sim") in registry.backends("arm")
    assert "arm" in registry.families()
    assert registry.plugin_errors() == []


def test_a_backend_of_another_family_is_refused():
    robot_rl.register_backend(BackendEntry("sim", "boat", "sim.arm.backend:make_backend", "a boat"))
    with pytest.raises(ValueError, match=r"\(arm family\) has no backend 'sim2'"):
        robot_rl.make("pick_cube", backend="sim2")
    # the arm's own "sim" backend is still the one pick_cube gets
    env = robot_rl.make("pick_cube")
    assert type(env.unwrapped.backend).__module__ == "sim.arm.backend"
    env.close()


def test_an_outside_package_adds_a_family_through_entry_points(tmp_path):
    """A package installed beside robot_rl (here: a dist-info with entry points on sys.path) adds a
    task and a backend of its own family; robot_rl's code is not edited. A broken one is reported."""
    pkg = tmp_path / "boatpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from robot_rl.registry import BackendEntry, TaskEntry
        TASKS = TaskEntry("row_boat", "boat", "boatpkg:make_task", "row a boat across a pond")
        BACKENDS = [BackendEntry("pond", "boat", "boatpkg:make_backend", "a simulated pond")]
    '''))
    dist = tmp_path / "boatpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: boatpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[robot_rl.tasks]\nboat = boatpkg:TASKS\nbroken = boatpkg.missing:TASKS\n\n[robot_rl.backends]\npond = boatpkg:BACKENDS\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "robot_rl.cli", "envs"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "boat family" in out.stdout and "backend pond" in out.stdout and "task    row_boat" in out.stdout
    assert "arm family" in out.stdout  # ours are still there
    assert "entry point 'broken' (boatpkg.missing:TASKS) of boatpkg failed to load: ModuleNotFoundError" in out.stdout


def test_plugins_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv(registry.PLUGINS_ENV, "tasks.arm:TASKS, nowhere.at_all:TASKS")
    try:
        errors = registry.load_plugins(reload=True)
        assert any("nowhere.at_all:TASKS" in e and "ModuleNotFoundError" in e for e in errors)
        with pytest.raises(ValueError, match="plugin\\(s\\) failed to load"):
            robot_rl.make("no_such_task")
    finally:
        monkeypatch.delenv(registry.PLUGINS_ENV)
        registry.load_plugins(reload=True)


def test_split_overrides_routes_by_field_name():
    routed = split_overrides({"a": 1, "b": 2}, first=("a",), second=("b", "c"))
    assert routed == {"first": {"a": 1}, "second": {"b": 2}}


def test_finding_the_plugins_imports_no_simulator_driver_or_learner():
    """Registration modules (tasks/*/__init__.py, sim/*/__init__.py, drivers/*/__init__.py) stay
    light: `import robot_rl` discovers every family without importing what makes or drives one."""
    heavy = ("torch", "mujoco", "jax", "numba", "cflib", "serial", "franky", "onnx", "pygame", "hid", "cv2", "zmq")
    code = f"import sys, robot_rl; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_cli_starts_without_jax_numba_or_a_driver_library():
    """Every actor, learner and train process starts through robot_rl.cli: commands whose work
    needs JAX (train-fused) or a compiled kernel import it when they run, not when the CLI loads."""
    heavy = ("jax", "numba", "cflib", "serial", "franky", "onnx")
    code = f"import sys, robot_rl.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
