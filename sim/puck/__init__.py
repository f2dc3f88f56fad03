"""The puck family's simulators: a MuJoCo backend (``sim``) and a natively batched JAX vector env
(``jax``), registered through the ``robot_rl.backends`` entry point in pyproject.toml.

The family's contract is :mod:`sim.puck.contract` (it lives here, not in robot_rl: a new robot
family is only new files). Importing this package is cheap: MuJoCo and JAX are imported by the
factories, when an env is made.
"""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="sim",
        family="puck",
        entry_point="sim.puck.backend:make_backend",
        config="sim.puck.backend:MujocoPuckConfig",
        description="MuJoCo point-mass puck on a walled table (damped slide joints, 200 Hz physics, top camera)",
    ),
    BackendEntry(
        name="jax",
        family="puck",
        entry_point="sim.puck.jax_env:make_vector_env",
        config="sim.puck.jax_env:JaxPuckConfig",
        description="the same puck dynamics in JAX, N envs in one jitted step (state obs only; domain randomization)",
        batched=True,
    ),
)
