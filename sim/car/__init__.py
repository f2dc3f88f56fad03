"""The car family's simulators: a MuJoCo car on a generated walled track (``sim``) and the same
car as a JAX single-track model, natively batched (``jax``), registered through the
``robot_rl.backends`` entry point in pyproject.toml. The family's contract is
:mod:`robot_rl.backends.car`.

Both build their track from their config's ``track_seed`` (:mod:`sim.car.track`) and show it
as ``track``: that is where a task gets its centreline. Importing this package is cheap: MuJoCo
and JAX are imported by the factories, when an env is made.
"""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="sim",
        family="car",
        entry_point="sim.car.backend:make_backend",
        config="sim.car.backend:MujocoCarConfig",
        description="MuJoCo 1/10 Ackermann car (F1TENTH parameters) on a generated walled track, 500 Hz physics, "
                    "front/chase/top cameras with visual randomization",
    ),
    BackendEntry(
        name="jax",
        family="car",
        entry_point="sim.car.jax_env:make_vector_env",
        config="sim.car.jax_env:JaxCarConfig",
        description="the same car as a JAX single-track model (tanh tyres), N envs in one jitted step "
                    "(state obs only; domain randomization)",
        batched=True,
    ),
)
