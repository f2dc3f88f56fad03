"""Car tasks (the ``car`` family): registered here, beside their code, through the
``robot_rl.tasks`` entry point in pyproject.toml. Any car backend whose scene has a track runs
them (the MuJoCo ``sim`` car one env at a time, the ``jax`` single-track model natively batched)."""

from robot_rl.registry import TaskEntry

TASKS = (
    TaskEntry(
        name="car_lap",
        family="car",
        entry_point="tasks.car.lap:make_task",
        config="tasks.car.lap_arrays:CarLapConfig",
        description="race laps of a walled track: progress reward, crash penalty, recovery after collisions "
                    "(400 steps at 20 Hz, pure-pursuit expert)",
    ),
)
