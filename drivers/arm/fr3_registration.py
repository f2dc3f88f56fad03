"""Registers the Franka FR3 as the ``fr3`` backend of the ``arm`` family (entry point in
pyproject.toml). Light on purpose: nothing here imports franky; ``drivers.arm.fr3`` is imported
only when an env is made (``robot_rl.make("pick_cube", backend="fr3", rig="arm.toml")``)."""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="fr3",
        family="arm",
        entry_point="drivers.arm.fr3:make_backend",
        config="drivers.arm.fr3_config:Fr3Config",
        description="Franka Research 3 (+ Franka Hand) through franky/libfranka 0.21: Cartesian impedance in the "
                    "1 kHz loop, reference-limited; rig file [arm.fr3]",
    ),
)
