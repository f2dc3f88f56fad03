"""Puck tasks (the ``puck`` family): registered here, beside their code, through the
``robot_rl.tasks`` entry point in pyproject.toml. Any backend of the puck family runs them (the
MuJoCo ``sim`` backend one env at a time, the ``jax`` backend natively batched)."""

from robot_rl.registry import TaskEntry

TASKS = (
    TaskEntry(
        name="puck_reach",
        family="puck",
        entry_point="tasks.puck.reach:make_task",
        config="tasks.puck.reach:PuckReachConfig",
        description="push a puck onto a random goal and stop there (sparse reward, 100 steps at 20 Hz, PD expert)",
    ),
)
