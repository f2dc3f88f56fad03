"""The quadrotor family's simulators: a MuJoCo backend (``sim``) and a natively batched JAX vector
env (``jax``) of the contract in :mod:`robot_rl.backends.quadrotor`, registered through the
``robot_rl.backends`` entry point in pyproject.toml. Importing this package is cheap: MuJoCo and
JAX are imported by the factories, when an env is made."""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="sim",
        family="quadrotor",
        entry_point="sim.quad.backend:make_backend",
        config="sim.quad.backend:MujocoQuadConfig",
        description="MuJoCo Crazyflie-class quadrotor (Förster 2015 parameters, first-order motors, RK4 at "
                    "500 Hz, every command level, onboard camera)",
    ),
    BackendEntry(
        name="jax",
        family="quadrotor",
        entry_point="sim.quad.jax_env:make_vector_env",
        config="sim.quad.jax_core:JaxQuadConfig",
        description="the same quadrotor dynamics in JAX (RK4, motor model, drag), N envs in one jitted step "
                    "(state obs only; domain randomization)",
        batched=True,
    ),
)
