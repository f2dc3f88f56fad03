"""The autonomous recovery manoeuvre, on any car backend (sim or real): so training runs unattended.

After a collision, a flip or getting stuck, the car reverses for a while with a random steering
angle (FastRLAP's recovery: back away from the wall pointing somewhere new), brakes to a
standstill and straightens its wheels, so every episode starts at rest with the wheels straight. It drives through the backend's ordinary ``command``/``sync`` at the task's control
rate, so the car's safety limits apply and a real car's watchdog stays fed.
"""

from __future__ import annotations

import math

import numpy as np

from robot_rl.backends.car import SPEED, CarBackend, CarCommand, CarState

STANDSTILL_M_S = 0.05
REVERSE_THROTTLE = 0.3


def brake_to_standstill(backend: CarBackend, period_s: float, timeout_s: float = 3.0) -> CarState:
    """``stop()``, then wait (``sync``) until the car is slower than 5 cm/s, at most ``timeout_s``."""
    backend.stop()
    state = backend.read_state()
    for _ in range(max(1, math.ceil(timeout_s / period_s))):
        backend.sync(period_s)
        state = backend.read_state()
        if abs(state.forward_speed_m_s) < STANDSTILL_M_S and abs(state.yaw_rate_rad_s) < 0.1:
            break
    return state


def straighten_wheels(backend: CarBackend, period_s: float) -> CarState:
    """Steer back to 0 at standstill (as fast as the steering rate limit allows), then brake."""
    spec = backend.spec
    stand = CarCommand(steering_rad=0.0, speed_m_s=0.0) if SPEED in spec.command_modes else \
        CarCommand(steering_rad=0.0, throttle=0.0)
    for _ in range(math.ceil(spec.max_steering_rad / (spec.max_steering_rate_rad_s * period_s)) + 1):
        backend.command(stand)
        backend.sync(period_s)
    return brake_to_standstill(backend, period_s)


def reverse_out(backend: CarBackend, rng: np.random.Generator, period_s: float, duration_s: float,
                speed_m_s: float) -> CarState:
    """Reverse for ``duration_s`` at ``speed_m_s`` (speed mode, else a gentle reverse throttle) with a
    steering angle drawn uniformly from the spec's range, brake to a standstill, straighten the wheels."""
    spec = backend.spec
    if spec.max_reverse_speed_m_s <= 0:
        raise ValueError("the recovery manoeuvre reverses, but this car's spec allows no reverse "
                         "(max_reverse_speed_m_s = 0)")
    steering = float(rng.uniform(-1.0, 1.0)) * spec.max_steering_rad
    if SPEED in spec.command_modes:
        command = CarCommand(steering_rad=steering, speed_m_s=-min(speed_m_s, spec.max_reverse_speed_m_s))
    else:
        command = CarCommand(steering_rad=steering, throttle=-REVERSE_THROTTLE)
    for _ in range(max(1, round(duration_s / period_s))):
        backend.command(command)
        backend.sync(period_s)
    brake_to_standstill(backend, period_s)
    return straighten_wheels(backend, period_s)
