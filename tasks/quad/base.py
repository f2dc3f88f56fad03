"""What every quadrotor task shares: the family, the control rate and the action mapping.

**The action is thrust + body rates (the contract's ``ThrustRates`` level), 4 numbers in [-1, 1].**
The body-rate PID and the mixer run below the policy at physics rate (in the simulators, as in a
flight controller's rate mode), so a policy at 100 Hz never has to stabilise the rates itself,
and what it outputs is a command a real flight controller accepts.

By default (``fallback_residual=True``) the action is a *residual on the safe fallback*: the
fallback (:meth:`drivers.quad.control.QuadController.hover_in_place`: level out, stop, stop
turning) gives a base command from the measured state, and::

    collective_thrust_frac = clip(base_collective + a[0], 0, 1)
    body_rates_rad_s       = clip(base_rates + a[1:4] * max_body_rate_rad_s, -max, +max)

Every command stays reachable (the thrust residual spans the whole [0, 1] range), but the zero
action is a hover in place: a fresh policy is safe near zero, and the task's hold action (the
conformance suite's "no progress" action) holds the vehicle where it is instead of dropping it.
With ``fallback_residual=False`` the action is absolute (``collective = (a[0] + 1) / 2``,
``rates = a[1:4] * max``), the Learning-to-Fly setting; there no constant action can hold a vehicle
that starts tilted, so the hold action (hover thrust, zero rates) only holds a level vehicle.

The mapping is written once over ``xp`` arrays (:func:`action_to_thrust_rates_arrays`,
:func:`thrust_rates_to_action_arrays`, :class:`QuadActionArrays`), so the JAX env maps a batch
exactly as :class:`QuadTask` maps one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from drivers.quad.control import GRAVITY_M_S2, QuadController
from robot_rl.backends.quadrotor import QuadSpec, QuadState, ThrustRates

ACTION_DIM = 4


def action_to_thrust_rates_arrays(action: Any, base_collective: Any, base_rates_rad_s: Any, max_rates_rad_s: Any,
                                  residual: bool, xp: Any) -> tuple[Any, Any]:
    """``(..., 4)`` actions -> ``(collective_thrust_frac (...), body_rates_rad_s (..., 3))`` within the limits."""
    action = xp.clip(action, -1.0, 1.0)
    limit = xp.asarray(max_rates_rad_s, dtype=action.dtype)
    if residual:
        collective = xp.clip(base_collective + action[..., 0], 0.0, 1.0)
        rates = xp.clip(base_rates_rad_s + action[..., 1:] * limit, -limit, limit)
    else:
        collective, rates = 0.5 * (action[..., 0] + 1.0), action[..., 1:] * limit
    return collective, rates


def thrust_rates_to_action_arrays(collective: Any, rates_rad_s: Any, base_collective: Any, base_rates_rad_s: Any,
                                  max_rates_rad_s: Any, residual: bool, xp: Any) -> Any:
    """Inverse of :func:`action_to_thrust_rates_arrays` (clipped to [-1, 1])."""
    limit = xp.asarray(max_rates_rad_s, dtype=rates_rad_s.dtype)
    if residual:
        thrust, rates = collective - base_collective, (rates_rad_s - base_rates_rad_s) / limit
    else:
        thrust, rates = 2.0 * collective - 1.0, rates_rad_s / limit
    return xp.clip(xp.concatenate([thrust[..., None], rates], axis=-1), -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class QuadActionArrays:
    """The action mapping bound to a vehicle's nominal numbers (hashable: a jitted env closes over it).

    Attributes:
        controller: the cascade on the spec's nominal numbers (fallback and expert).
        residual: actions are residuals on the fallback (see the module docstring).
    """

    controller: QuadController
    residual: bool = True

    def base(self, vel_m_s: Any, quat_wxyz: Any, xp: Any) -> tuple[Any, Any]:
        """The fallback's ``(collective, body rates)`` for the measured state (zeros when absolute)."""
        if not self.residual:
            return 0.0 * vel_m_s[..., 0], 0.0 * vel_m_s
        return self.controller.hover_in_place(vel_m_s, quat_wxyz, xp)

    def to_thrust_rates(self, action: Any, vel_m_s: Any, quat_wxyz: Any, xp: Any) -> tuple[Any, Any]:
        collective, rates = self.base(vel_m_s, quat_wxyz, xp)
        return action_to_thrust_rates_arrays(action, collective, rates, self.controller.max_body_rate_rad_s,
                                             self.residual, xp)

    def to_thrust_rates_and_back(self, action: Any, vel_m_s: Any, quat_wxyz: Any, xp: Any) -> tuple[Any, Any, Any]:
        """``(collective, body rates, executed action)`` with the fallback computed once (the JAX env's step)."""
        base_collective, base_rates = self.base(vel_m_s, quat_wxyz, xp)
        limit = self.controller.max_body_rate_rad_s
        collective, rates = action_to_thrust_rates_arrays(action, base_collective, base_rates, limit, self.residual, xp)
        executed = thrust_rates_to_action_arrays(collective, rates, base_collective, base_rates, limit, self.residual, xp)
        return collective, rates, executed

    def to_action(self, collective: Any, rates_rad_s: Any, vel_m_s: Any, quat_wxyz: Any, xp: Any) -> Any:
        base_collective, base_rates = self.base(vel_m_s, quat_wxyz, xp)
        return thrust_rates_to_action_arrays(collective, rates_rad_s, base_collective, base_rates,
                                             self.controller.max_body_rate_rad_s, self.residual, xp)

    def hold(self) -> np.ndarray:
        """The no-progress action: the fallback itself (residual), or hover thrust and zero rates."""
        if self.residual:
            return np.zeros(ACTION_DIM, dtype=np.float32)
        hover = self.controller.mass_kg * GRAVITY_M_S2 / self.controller.max_total_thrust_n
        return np.array([2.0 * hover - 1.0, 0.0, 0.0, 0.0], dtype=np.float32)


@runtime_checkable
class QuadTargetMarker(Protocol):
    """Simulators can show a task's target (visual only)."""

    def set_target_marker(self, pos_m: np.ndarray) -> None: ...


class QuadTask:
    """Base of the quadrotor family's tasks: ``family``, ``control_hz`` (100 Hz) and the action
    mapping (module docstring). Subclasses set ``self.fallback_residual``."""

    family = "quadrotor"
    control_hz = 100.0
    fallback_residual = True

    def actions_for(self, spec: QuadSpec) -> QuadActionArrays:
        """The action mapping for ``spec`` (cached per spec object)."""
        cached = getattr(self, "_actions_cache", None)
        if cached is None or cached[0] is not spec:
            cached = (spec, QuadActionArrays(QuadController.from_spec(spec), self.fallback_residual))
            self._actions_cache = cached
        return cached[1]

    def action_space(self, spec: QuadSpec) -> gym.spaces.Box:
        return gym.spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)

    def action_to_command(self, action: np.ndarray, state: QuadState, spec: QuadSpec) -> ThrustRates:
        collective, rates = self.actions_for(spec).to_thrust_rates(np.asarray(action, dtype=np.float64),
                                                                   state.vel_m_s, state.quat_wxyz, np)
        return ThrustRates(collective_thrust_frac=float(collective), body_rates_rad_s=rates)

    def command_to_action(self, command: ThrustRates, state: QuadState, spec: QuadSpec) -> np.ndarray:
        if not isinstance(command, ThrustRates):
            raise TypeError(f"quadrotor task actions are thrust + rates; cannot express a {command.level!r} command")
        action = self.actions_for(spec).to_action(np.float64(command.collective_thrust_frac), command.body_rates_rad_s,
                                                  state.vel_m_s, state.quat_wxyz, np)
        return action.astype(np.float32)

    def hold_action(self, spec: QuadSpec) -> np.ndarray:
        """Hover in place (residual actions), else hover thrust with zero rates (module docstring)."""
        return self.actions_for(spec).hold()
