"""Quadrotor tasks (the ``quadrotor`` family): registered here, beside their code, through the
``robot_rl.tasks`` entry point in pyproject.toml. Any backend of the family runs them (the MuJoCo
``sim`` backend one env at a time, the ``jax`` backend natively batched)."""

from robot_rl.registry import TaskEntry

TASKS = (
    TaskEntry(
        name="quad_hover",
        family="quadrotor",
        entry_point="tasks.quad.hover:make_task",
        config="tasks.quad.hover:QuadHoverConfig",
        description="reach and hold a target from random starts tilted up to 90 deg (thrust+rates residual on the "
                    "hover fallback, 500 steps at 100 Hz, position-controller expert)",
    ),
    TaskEntry(
        name="quad_track",
        family="quadrotor",
        entry_point="tasks.quad.track:make_task",
        config="tasks.quad.track:QuadTrackConfig",
        description="follow a figure-eight (Lissajous 1:2) in a horizontal plane from quad_hover's random starts "
                    "(800 steps at 100 Hz, expert: the position controller with velocity/acceleration feed-forward)",
    ),
)
