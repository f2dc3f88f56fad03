"""The car in JAX: ``num_envs`` single-track cars on one track, stepped by one jitted function, as a
gymnasium VectorEnv (state observations only).

Dynamics: :func:`sim.car.dynamics.bicycle_step_arrays` (tanh tyres, semi-implicit) at
``low_level_hz``, driven by the very ESC and servo functions the MuJoCo car runs (speed
controller, DC motor, slewing servo, steering delay), after the very safety clip every car
backend applies (:func:`robot_rl.backends.car.clip_steering_arrays` and friends). The task is the
task's own array functions (``task.arrays``, :mod:`tasks.car.lap_arrays`) with ``jax.numpy``; the
track is built from this config's ``track_seed`` (the same one the MuJoCo car builds). Domain
randomization (off by default), drawn per sub-env at every reset: mass (yaw inertia scales with
it), tyre friction, steering delay, motor gain.

Episodes: a collision, a flip or being stuck truncates the episode (as in
:class:`tasks.car.lap.CarLap`); the sub-env then starts afresh at a random point of the track
(this sim represents the recovery manoeuvre by that respawn: pre-training wants varied starts,
and it takes no simulated time). The walls are the task's collision rule; the planar model never
touches one physically nor flips.

Vector API (gymnasium 1.4, ``AutoresetMode.SAME_STEP``), the layout of :mod:`sim.puck.jax_env`:
``reset(seed=s)`` -> ``obs (N, D) float32``, ``{"success": False, "_success": True}``;
``step(actions (N, 2))`` -> ``obs``, ``reward (N,) float64``, ``terminated`` (always False),
``truncated``, ``info`` with ``success``, ``executed_action (N, 2) float32``, ``action_clipped``
and car_lap's metrics ``laps_completed`` (int64), ``lap_time_s`` (float64, inf before a lap) and
``collided`` -- each with its mask ``_<key>``, masked out (zeros) for sub-envs reset in this step
(their reset info) -- and, when some sub-env ended, ``final_obs (N, D)`` (dense; zeros elsewhere)
with ``_final_obs`` and ``final_info`` (the ending step's info, masks = ended) with
``_final_info``. car_lap's ``info(state)`` puts the same metric keys into a
RobotEnv's info, so ``SyncVectorEnv`` over MuJoCo envs has this very layout.

jax is imported here only, so ``import sim.car`` stays cheap.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from robot_rl.vector import TaskVectorEnv, require_state_obs
from sim.car.jax_step import build_step, placeholder_batch
from sim.car.params import CarPhysics
from sim.car.track import TrackSettings

Range = tuple[float, float]
METRICS = {"laps_completed": np.int64, "lap_time_s": np.float64, "collided": np.bool_}


@dataclasses.dataclass(frozen=True)
class JaxCarConfig(CarPhysics, TrackSettings):
    """The JAX car: physics (:class:`~sim.car.params.CarPhysics`), track
    (:class:`~sim.car.track.TrackSettings`), and

    Attributes:
        control_hz: control rate (default: the task's).
        mass_range_kg: per-episode car mass drawn uniformly from this range (None: ``mass_kg``).
        friction_range: per-episode tyre friction coefficient range (None: ``friction``).
        steering_delay_range_s: per-episode steering delay range, at most one control period
            (None: ``steering_delay_s``).
        motor_gain_range: per-episode factor on the motor force (None: 1).
    """

    control_hz: float | None = None
    mass_range_kg: Range | None = None
    friction_range: Range | None = None
    steering_delay_range_s: Range | None = None
    motor_gain_range: Range | None = None

    def __post_init__(self) -> None:
        CarPhysics.__post_init__(self)
        TrackSettings.__post_init__(self)
        if self.control_hz is not None and not 1.0 <= self.control_hz <= self.low_level_hz:
            raise ValueError(f"control_hz must be in [1, low_level_hz={self.low_level_hz}], got {self.control_hz}")
        for name, low_ok in (("mass_range_kg", 1e-3), ("friction_range", 1e-3), ("steering_delay_range_s", 0.0),
                             ("motor_gain_range", 0.0)):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and low_ok <= value[0] <= value[1] < np.inf):
                raise ValueError(f"{name} must be None or (low, high) with {low_ok} <= low <= high, got {value!r}")
            if value is not None:  # a JSON list from --env-kwargs becomes a (hashable) tuple
                object.__setattr__(self, name, (float(value[0]), float(value[1])))


class CarVectorEnv(TaskVectorEnv):
    """``num_envs`` car_lap envs stepped together in JAX (module docstring for the info layout).

    ``dynamics_params`` shows each sub-env's (randomized) mass, friction, steering delay and motor
    gain; ``track`` is the scene's track; ``expert_actions()`` the task's expert for the current
    states; ``functional()`` gives the pure jitted ``reset``/``step``
    for fused pre-training loops (``jax.lax.scan`` without leaving the device).
    """

    info_dtypes: ClassVar[dict[str, Any]] = METRICS

    def __init__(self, task: Any, num_envs: int, config: JaxCarConfig | None = None) -> None:
        config = config or JaxCarConfig()
        super().__init__(task, "car", num_envs, config.spec(), config.control_hz)
        self.config = config
        self.track = self.config.track()
        task.config.check_track(self.track.half_width_m)
        self._reset_fn, self._step_fn, self._env_step_fn, self._expert_fn = build_step(
            task.arrays, task.config.max_episode_steps, self.config, self.num_envs, self.control_hz)
        self._batch, self._key, self._placeholder = None, None, None

    def functional(self) -> tuple[Any, Any]:
        """The jitted ``reset(key) -> (batch, key, obs)`` and ``step(batch, key, actions) -> (batch, key,
        (obs, reward, terminated, truncated, infos, terminal_obs))`` (unmasked ``infos``), for loops
        that stay on the device."""
        return self._reset_fn, self._step_fn

    def _reset_batch(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self._key = jax.random.key(seed)
        if self._placeholder is None:
            self._placeholder = placeholder_batch(self._reset_fn, self._key)
        idle = jnp.zeros(self.action_space.shape, jnp.float32)
        self._batch, self._key, out = self._env_step_fn(self._placeholder, self._key, idle, True)
        return out[0]

    def _step_batch(self, actions: np.ndarray) -> tuple:
        self._batch, self._key, out = self._env_step_fn(self._batch, self._key, actions, False)
        return jax.device_get(out)

    def expert_actions(self) -> np.ndarray:
        """The task's scripted expert for every sub-env's current state, ``(N, 2)`` float32 (demos)."""
        if self._batch is None:
            raise RuntimeError("call reset() first")
        return np.array(self._expert_fn(self._batch), dtype=np.float32)

    @property
    def dynamics_params(self) -> dict[str, np.ndarray]:
        """This episode's ``mass_kg``, ``friction``, ``steering_delay_s``, ``motor_gain`` per sub-env, ``(N,)``."""
        if self._batch is None:
            raise RuntimeError("call reset() first")
        return {name: np.asarray(getattr(self._batch, name))
                for name in ("mass_kg", "friction", "steering_delay_s", "motor_gain")}


def make_vector_env(task: Any, obs: str, num_envs: int, **options: Any) -> CarVectorEnv:
    """Registry entry point of the batched ``jax`` backend. Options are :class:`JaxCarConfig` fields;
    ``obs`` must be ``"state"`` (this simulator renders nothing)."""
    require_state_obs(obs, "car")
    return CarVectorEnv(task, num_envs, JaxCarConfig(**options))
