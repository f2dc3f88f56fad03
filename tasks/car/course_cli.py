"""``robot-rl car-course``: record a demonstration lap and build car_lap's course from it
(:mod:`tasks.car.course`; a plugin command through the ``robot_rl.commands`` entry point).

    # on the car: drive one slow lap with the gamepad, ending where you started
    robot-rl car-course record --backend ros_car --env-kwargs rig=car.toml --driver gamepad \\
        --half-width-m 0.6 --out course.npz
    # in sim, the pure-pursuit expert drives it (to try the pipeline)
    robot-rl car-course record --driver expert --expert-speed-m-s 1.5 --out course.npz
    # from poses recorded elsewhere: a (T, 3) .npy of [x_m, y_m, yaw_rad] (rear axle, world frame)
    robot-rl car-course build --poses poses.npy --half-width-m 0.6 --out course.npz

then ``robot-rl train --task car_lap --backend ros_car --env-kwargs course=course.npz ...``. ``record``
also writes the raw poses beside the course (``course.poses.npy``). With a teleop device, while no
stick is moved the car holds still (car_lap's hold action); the lap ends by itself once the path
has closed (or after ``--max-s``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from typing import Any, Callable, Literal, Optional

import numpy as np
import tyro

from robot_rl.backends.car import CarCommand, CarState


def record(backend: str, driver: str, max_s: float, close_tol_m: float, overrides: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Drive one lap on ``backend`` with ``driver`` (``expert``, sim only, or a teleop device name);
    the poses ``(T, 3)`` and the distance car_lap's located point sits ahead of the rear axle."""
    import robot_rl
    from tasks.car.course import record_poses

    with contextlib.ExitStack() as stack:
        env = robot_rl.make("car_lap", backend=backend, **overrides)
        stack.callback(env.close)
        base = env.unwrapped
        task, car = base.task, base.backend
        if driver == "expert":
            env.reset(seed=0)  # a simulator's track: the expert follows its centreline
            drive = _drive_with(lambda state: task.expert(state), task, car.spec)
        else:
            from robot_rl.human.devices import open_device

            device = open_device(driver, env, stack)
            car.connect()
            hold = task.hold_action(car.spec)
            drive = _drive_with(lambda state: _or(device.poll(None).action, hold), task, car.spec)
        poses = record_poses(car, drive, 1.0 / task.control_hz, max_s, close_tol_m)
        return poses, task.arrays.centre_m


def _drive_with(act: Callable[[CarState], np.ndarray], task: Any, spec: Any) -> Callable[[CarState], CarCommand]:
    return lambda state: task.action_to_command(act(state), state, spec)


def _or(action: np.ndarray | None, hold: np.ndarray) -> np.ndarray:
    return hold if action is None else action


def build(poses: np.ndarray, command: "CarCourse", ahead_m: float) -> pathlib.Path:
    from tasks.car.course import course_from_poses, save_course

    course = course_from_poses(poses, command.half_width_m, ahead_m=ahead_m, spacing_m=command.spacing_m,
                               close_tol_m=command.close_tol_m, smooth_m=command.smooth_m)
    path = save_course(course, command.out, poses=len(poses), ahead_m=ahead_m, spacing_m=command.spacing_m,
                       smooth_m=command.smooth_m)
    print(f"course: {course.num_points} checkpoints, {course.length_m:.2f} m, half width {course.half_width_m} m "
          f"-> {path}")
    return path


@dataclasses.dataclass
class CarCourse:
    """Record a demonstration lap and build car_lap's course from it (checkpoints every --spacing-m
    along the driven line, a --half-width-m corridor car_lap treats as walls), or build it from poses
    recorded elsewhere."""

    mode: tyro.conf.Positional[Literal["record", "build"]]
    """record: drive one lap now (the expert in sim, or a teleop device) and build; build: from --poses."""
    out: pathlib.Path
    """The course file (.npz); record also writes the raw poses beside it (<out>.poses.npy)."""
    half_width_m: float = 0.75
    """The corridor car_lap treats as walls (on a real car: a geofence inside the real walls)."""
    spacing_m: float = 0.1
    """Checkpoint spacing along the course."""
    close_tol_m: float = 0.5
    """The lap closes where the path comes back within this of its start."""
    smooth_m: float = 0.5
    """Moving-average window along the path."""
    poses: Optional[pathlib.Path] = None
    """build: a (T, 3) .npy of [x_m, y_m, yaw_rad] (rear axle, world frame)."""
    ahead_m: float = 0.17
    """build: car_lap's located point ahead of the rear axle (the footprint centre; 0.17 m for the default car)."""
    backend: str = "sim"
    """record: the car backend (sim, ros_car, ...)."""
    driver: str = "expert"
    """record: 'expert' (sim) or a teleop device (gamepad, keyboard)."""
    max_s: float = 300.0
    """record: give up after this long."""
    expert_speed_m_s: float = 1.5
    """record: the expert's speed cap."""
    env_kwargs: tuple[str, ...] = ()
    """record: more car_lap/backend options, key=value (e.g. rig=car.toml)."""

    def run(self) -> int:
        if self.mode == "build":
            if self.poses is None:
                raise ValueError("car-course build needs --poses (a (T, 3) .npy of [x_m, y_m, yaw_rad])")
            build(np.load(self.poses, allow_pickle=False), self, self.ahead_m)
            return 0
        from robot_rl.registry import parse_overrides

        overrides = {"expert_max_speed_m_s": self.expert_speed_m_s, **parse_overrides(list(self.env_kwargs))}
        poses, ahead_m = record(self.backend, self.driver, self.max_s, self.close_tol_m, overrides)
        np.save(self.out.with_suffix(".poses.npy"), poses)
        build(poses, self, ahead_m)
        return 0
