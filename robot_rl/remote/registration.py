"""Registers the ``remote`` backend (a robot served by ``robot-rl serve-robot``) for each family
whose dataclasses :mod:`robot_rl.remote.codec` encodes (entry point in pyproject.toml). Light on
purpose: nothing here imports ZeroMQ."""

from robot_rl.registry import BackendEntry

BACKENDS = tuple(
    BackendEntry(
        name="remote",
        family=family,
        entry_point="robot_rl.remote.client:make_backend",
        config="robot_rl.remote.client:RemoteConfig",
        description="a robot on another machine, served by `robot-rl serve-robot` over ZeroMQ (CURVE keys, "
                    "deadlines); rig file [remote] or options server=..., keys=...",
    )
    for family in ("arm", "car", "quadrotor")
)
