"""The simulated arm (the ``arm`` family's ``sim`` backend), registered through the
``robot_rl.backends`` entry point in pyproject.toml."""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="sim",
        family="arm",
        entry_point="sim.arm.backend:make_backend",
        config="sim.arm.backend:MujocoArmConfig",
        description="MuJoCo 7-DoF torque-controlled arm (Panda limits) under Cartesian impedance control, 500 Hz physics",
    ),
)
