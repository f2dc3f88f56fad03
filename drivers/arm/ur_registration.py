"""Registers Universal Robots arms as the ``ur`` backend of the ``arm`` family (entry point in
pyproject.toml). Light on purpose: nothing here imports ur_rtde; ``drivers.arm.ur`` is imported only
when an env is made (``robot_rl.make("pick_cube", backend="ur", rig="arm.toml")``)."""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="ur",
        family="arm",
        entry_point="drivers.arm.ur:make_backend",
        config="drivers.arm.ur_config:UrConfig",
        description="Universal Robots e-Series/CB3 through ur_rtde: servoL streamed at the RTDE rate, "
                    "reference-limited; rig file [arm.ur]",
    ),
)
