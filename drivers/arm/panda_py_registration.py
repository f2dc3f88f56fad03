"""Registers the Franka Panda (FER, older firmware) as the ``panda`` backend of the ``arm`` family
(entry point in pyproject.toml). Light on purpose: nothing here imports panda-python;
``drivers.arm.panda_py_backend`` is imported only when an env is made
(``robot_rl.make("pick_cube", backend="panda", rig="arm.toml")``)."""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="panda",
        family="arm",
        entry_point="drivers.arm.panda_py_backend:make_backend",
        config="drivers.arm.panda_py_config:PandaConfig",
        description="Franka Panda/FER (system image < 5) + Franka Hand through panda-python/libfranka 0.9: "
                    "Cartesian impedance in its 1 kHz loop, reference-limited; rig file [arm.panda]",
    ),
)
