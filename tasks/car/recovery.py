"""The autonomous recovery manoeuvres, on any car backend (sim or real): so training runs unattended.

After a collision, a flip or getting stuck the car has to get going again on its own. Two manoeuvres:

* :func:`reverse_out` (FastRLAP's): reverse for a while with a random steering angle (back away from
  the wall pointing somewhere new), brake. It can leave the car facing the wrong way along the track,
  a state no demonstration covers (README, "Facing backwards after recovery").
* :func:`turn_along_track` (car_lap's default): brake, reverse away from the wall steering so the car turns
  toward the track direction, then, while it still faces more than a tolerance away from it, a
  multi-point turn: forward and reverse legs at full lock, each ended before the footprint reaches a
  wall. It needs to know where the car is relative to the track (:data:`TrackPose`, the task's
  localization: a simulator's pose, or a real car's pose source).

Both end at a standstill with the wheels straight, so every episode starts at rest. They drive through
the backend's ordinary ``command``/``sync`` at the task's control rate, so the car's safety limits
apply and a real car's watchdog stays fed.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from robot_rl.backends.car import SPEED, CarBackend, CarCommand, CarSpec, CarState

STANDSTILL_M_S = 0.05
REVERSE_THROTTLE = 0.3
LEG_S = 1.5                  # longest leg of the multi-point turn
MAX_LEGS = 8                 # legs (the first, reversing one included) before giving up
HEADING_GAIN_PER_RAD = 1 / 0.3  # steering lock for a heading error of 0.3 rad or more
CENTRE_GAIN_RAD_PER_M = 0.5  # while turning, aim this much heading per metre off the centreline...
MAX_CENTRE_AIM_RAD = 0.4     # ... at most, so the car also moves away from the nearer wall
WALL_MARGIN_M = 0.05         # a leg ends when braking now would stop the car closer than this to a wall
CLOSING_DEADBAND_M = 0.002   # per step: less is settling or localization noise, not driving at a wall
MOVING_M_S = 0.15            # below this the clearance's changes are the wheels steering or a contact settling
TrackPose = Callable[[CarState], "tuple[float, float, float]"]
"""``state -> (heading_error_rad, lateral_m, wall_clearance_m)``: the car's heading relative to the
track direction at its nearest centreline point (``(-pi, pi]``, left positive), its footprint centre's
signed distance from the centreline (left positive), and its footprint's distance from the nearer wall
(:func:`tasks.car.track_arrays.wall_clearance_arrays`)."""


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
    spec = _can_reverse(backend.spec)
    steering = float(rng.uniform(-1.0, 1.0)) * spec.max_steering_rad
    command = _drive_command(spec, steering, -min(speed_m_s, spec.max_reverse_speed_m_s))
    for _ in range(max(1, round(duration_s / period_s))):
        backend.command(command)
        backend.sync(period_s)
    brake_to_standstill(backend, period_s)
    return straighten_wheels(backend, period_s)


def turn_along_track(backend: CarBackend, where: TrackPose, period_s: float, reverse_s: float, speed_m_s: float,
                     tolerance_rad: float) -> CarState:
    """Brake to a standstill, back away from the wall for up to ``reverse_s`` turning toward the track direction, then
    alternate forward and reverse legs (each up to :data:`LEG_S`, at most :data:`MAX_LEGS` in all)
    until the car faces along the track within ``tolerance_rad`` clear of the walls; brake,
    straighten the wheels. Steering per leg: toward a heading error of ``-direction *
    CENTRE_GAIN_RAD_PER_M * lateral_m`` (so the car also heads for the centreline), at full lock
    beyond 0.3 rad; a leg ends early when, at the rate the footprint's wall clearance shrank over the
    last step, braking at half the spec's acceleration limit would leave it less than :data:`WALL_MARGIN_M`
    (judged once the car moves at :data:`MOVING_M_S`: a car starting against a wall, heading into it, pushes
    it for the ~4 mm that takes)."""
    _can_reverse(backend.spec)
    brake_to_standstill(backend, period_s)  # the episode may have ended at speed
    direction, duration_s = -1.0, reverse_s
    for _ in range(MAX_LEGS):
        _drive_leg(backend, where, direction, period_s, duration_s, speed_m_s)
        state = brake_to_standstill(backend, period_s)
        error_rad, _, clearance_m = where(state)
        if abs(error_rad) <= tolerance_rad and clearance_m > WALL_MARGIN_M:
            break
        direction, duration_s = -direction, LEG_S
    return straighten_wheels(backend, period_s)


def _drive_leg(backend: CarBackend, where: TrackPose, direction: float, period_s: float, duration_s: float,
               speed_m_s: float) -> None:
    """One leg: forward (``direction`` +1) or reverse (-1), steering by the heading rule of
    :func:`turn_along_track`, until ``duration_s`` passed or a wall comes near."""
    spec = backend.spec
    speed = min(speed_m_s, spec.max_speed_m_s if direction > 0 else spec.max_reverse_speed_m_s)
    state = backend.read_state()
    error_rad, lateral_m, clearance_m = where(state)
    previous_m = clearance_m
    for _ in range(max(1, round(duration_s / period_s))):
        closing_m = previous_m - clearance_m  # toward the wall over the last step
        # a step's latency, then braking at half the spec's acceleration limit (a margin for the tyres)
        braking_steps = 1.0 + 2.0 * abs(state.forward_speed_m_s) / (spec.max_accel_m_s2 * period_s)
        moving = abs(state.forward_speed_m_s) >= MOVING_M_S
        if moving and closing_m > CLOSING_DEADBAND_M and clearance_m - braking_steps * closing_m < WALL_MARGIN_M:
            return
        aim_rad = float(np.clip(-direction * CENTRE_GAIN_RAD_PER_M * lateral_m, -MAX_CENTRE_AIM_RAD, MAX_CENTRE_AIM_RAD))
        steer = float(np.clip(-direction * HEADING_GAIN_PER_RAD * (error_rad - aim_rad), -1.0, 1.0))
        backend.command(_drive_command(spec, steer * spec.max_steering_rad, direction * speed))
        backend.sync(period_s)
        state, previous_m = backend.read_state(), clearance_m
        error_rad, lateral_m, clearance_m = where(state)


def _drive_command(spec: CarSpec, steering_rad: float, speed_m_s: float) -> CarCommand:
    """Speed mode if the car takes it, else a gentle throttle in the direction of ``speed_m_s``."""
    if SPEED in spec.command_modes:
        return CarCommand(steering_rad=steering_rad, speed_m_s=speed_m_s)
    return CarCommand(steering_rad=steering_rad, throttle=math.copysign(REVERSE_THROTTLE, speed_m_s))


def _can_reverse(spec: CarSpec) -> CarSpec:
    if spec.max_reverse_speed_m_s <= 0:
        raise ValueError("the recovery manoeuvre reverses, but this car's spec allows no reverse "
                         "(max_reverse_speed_m_s = 0)")
    return spec
