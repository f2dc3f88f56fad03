"""Checks every car backend passes, simulated or real (the VESC car over the emulator here): the
:class:`~robot_rl.backends.car.CarBackend` contract as observable behaviour.

``check_car_backend(backend, watchdog=...)`` takes an unconnected backend, connects it and checks:
the spec is known before connecting and nothing answers before ``connect()``; states are well formed
(read-only arrays of the contract's shapes, each either measured -- finite -- or ``nan`` as a whole,
a finite clock that does not run backwards, a finite steering angle and forward speed); in every
command mode it accepts, ``command`` returns what
:func:`~robot_rl.backends.car.clip_car_command` makes of an out-of-limits command (with the
previously sent command and the ``sync`` period) and an in-limits command unchanged; a mode it
does not accept, a command that is not a :class:`~robot_rl.backends.car.CarCommand` and a NaN
field are each a ``ValueError``; a commanded car moves and ``stop()`` brakes it to a standstill
with its steering held, and the next command drives again; where the backend has a command
watchdog (``watchdog=True``: real cars), no command for ``spec.watchdog_s`` brakes it -- not
before; ``close()`` disconnects and is safe twice. Everything is paced by ``backend.sync``, so a
simulator runs it in sim time and a real car in wall time.
"""

from __future__ import annotations

import math

import numpy as np

from robot_rl.backends.car import (
    CAR_COMMAND_MODES,
    SPEED,
    CarBackend,
    CarCommand,
    CarSceneControl,
    CarSpec,
    CarState,
    clip_car_command,
)

PERIOD_S = 0.05
STANDSTILL_M_S = 0.05
CRUISE_M_S = 0.5  # slow and short (~0.6 m in all): a simulated track's walls are near
MOVING_M_S = 0.25


def drive(spec: CarSpec, mode: str, steering_rad: float, speed_m_s: float) -> CarCommand:
    """A command of ``mode``: ``speed_m_s`` as the set-point, or as a throttle share of the top speed."""
    if mode == SPEED:
        return CarCommand(steering_rad=steering_rad, speed_m_s=speed_m_s)
    return CarCommand(steering_rad=steering_rad, throttle=speed_m_s / spec.max_speed_m_s)


def check_state(state: CarState, previous: CarState | None = None) -> None:
    assert isinstance(state, CarState), type(state)
    for name, shape in (("pos_m", (2,)), ("vel_body_m_s", (2,)), ("imu_accel_m_s2", (3,)), ("imu_gyro_rad_s", (3,))):
        value = getattr(state, name)
        assert value.shape == shape and not value.flags.writeable, f"{name}: {value!r}"
        assert np.all(np.isfinite(value)) or np.all(np.isnan(value)), f"{name} is partly measured: {value!r}"
    assert math.isfinite(state.time_s) and math.isfinite(state.steering_rad), state
    assert math.isfinite(state.forward_speed_m_s), "neither body velocity nor wheel speed is measured"
    assert math.isnan(state.battery_v) or state.battery_v > 0, state.battery_v
    if previous is not None:
        assert state.time_s >= previous.time_s, (previous.time_s, state.time_s)


def check_not_connected(backend: CarBackend) -> None:
    assert isinstance(backend, CarBackend) and backend.family == "car" and not backend.connected
    assert isinstance(backend.spec, CarSpec) and backend.spec.command_modes
    try:
        backend.read_state()
    except RuntimeError:
        pass
    else:
        raise AssertionError("read_state() answered before connect()")


def check_commands(backend: CarBackend) -> None:
    """Out-of-limits and in-limits commands in every accepted mode, from standstill; refused modes."""
    spec, previous = backend.spec, None
    for mode in spec.command_modes:
        backend.sync(PERIOD_S)
        state = backend.read_state()
        wild = drive(spec, mode, 10.0 * spec.max_steering_rad, 10.0 * spec.max_speed_m_s)
        sent = backend.command(wild)
        assert sent == clip_car_command(wild, spec, state, previous, PERIOD_S), (mode, sent)
        assert sent.mode == mode and abs(sent.steering_rad) < abs(wild.steering_rad)
        backend.sync(PERIOD_S)
        tame = _within_limits(spec, sent)
        assert backend.command(tame) == tame, mode
        previous = tame
    for mode in set(CAR_COMMAND_MODES) - set(spec.command_modes):
        _assert_refused(backend, drive(spec, mode, 0.0, 0.1), mode)


def _within_limits(spec: CarSpec, sent: CarCommand) -> CarCommand:
    """Half a period's slew from ``sent`` in steering and drive, inside every range."""
    steering = sent.steering_rad - 0.5 * spec.max_steering_rate_rad_s * PERIOD_S * math.copysign(1.0, sent.steering_rad)
    if sent.mode == SPEED:
        return CarCommand(steering_rad=steering, speed_m_s=sent.speed_m_s - 0.5 * spec.max_accel_m_s2 * PERIOD_S)
    step = min(0.5 * spec.max_throttle_rate_per_s * PERIOD_S, 0.5 * abs(sent.throttle))
    return CarCommand(steering_rad=steering, throttle=sent.throttle - math.copysign(step, sent.throttle))


def check_bad_commands(backend: CarBackend) -> None:
    """Not a CarCommand (to ``command``), and a NaN field (to ``CarCommand``): a ValueError naming it."""
    for bad in (np.array([0.0, 1.0]), {"steering_rad": 0.0, "speed_m_s": 1.0}, None):
        _assert_refused(backend, bad, "CarCommand")
    try:
        CarCommand(steering_rad=0.0, speed_m_s=math.nan)
    except ValueError as err:
        assert "speed_m_s" in str(err), err
    else:
        raise AssertionError("a CarCommand with a NaN speed was built")


def _assert_refused(backend: CarBackend, command: object, says: str) -> None:
    try:
        backend.command(command)
    except ValueError as err:
        assert says in str(err), err
    else:
        raise AssertionError(f"command({command!r}) was accepted")


def cruise(backend: CarBackend, mode: str, steering_rad: float, seconds: float) -> CarState:
    """Command a gentle drive for ``seconds`` (one command per period); the car must be moving by then."""
    spec = backend.spec
    target = min(CRUISE_M_S, 0.5 * spec.max_speed_m_s)
    for _ in range(round(seconds / PERIOD_S)):
        backend.command(drive(spec, mode, steering_rad, target))
        backend.sync(PERIOD_S)
    state = backend.read_state()
    check_state(state)
    assert state.forward_speed_m_s > MOVING_M_S, f"commanded {target} m/s for {seconds} s ({mode}), moving at {state}"
    return state


def wait_for_standstill(backend: CarBackend, within_s: float) -> CarState:
    """``sync`` without commanding until the car is slower than 5 cm/s (at most ``within_s``)."""
    state = backend.read_state()
    for _ in range(round(within_s / PERIOD_S)):
        backend.sync(PERIOD_S)
        state = backend.read_state()
        if abs(state.forward_speed_m_s) < STANDSTILL_M_S:
            return state
    raise AssertionError(f"still moving {within_s} s on: {state}")


def check_stop(backend: CarBackend, mode: str, within_s: float = 1.0, max_braking_m: float = 0.25) -> None:
    """A moving car brakes to a standstill within ``within_s`` after ``stop()`` (and ``max_braking_m``
    where it knows its position), steering held; a command drives again."""
    steering = 0.25 * backend.spec.max_steering_rad
    before = cruise(backend, mode, steering, 0.5)
    backend.stop()
    after = wait_for_standstill(backend, within_s)
    braking_m = float(np.linalg.norm(after.pos_m - before.pos_m))
    assert not braking_m >= max_braking_m, f"stop() braked over {braking_m:.2f} m from {before.forward_speed_m_s} m/s"
    assert abs(after.steering_rad - before.steering_rad) < 0.02, (before.steering_rad, after.steering_rad)
    cruise(backend, mode, steering, 0.5)  # drives again


def check_watchdog(backend: CarBackend, mode: str, within_s: float = 3.0, late_s: float = 0.4) -> None:
    """No command for ``watchdog_s`` brakes a moving car: the first slow-down is seen at or after
    ``watchdog_s`` (never before) and less than ``late_s`` after it (a loaded machine's latency), and a
    standstill follows."""
    spec = backend.spec
    cruising = cruise(backend, mode, 0.0, 0.5).forward_speed_m_s
    backend.command(drive(spec, mode, 0.0, min(CRUISE_M_S, 0.5 * spec.max_speed_m_s)))
    last_command_s = backend.read_state().time_s  # at or before the last command: measures >= the real gap
    slowed_s, period_s = None, PERIOD_S / 2  # finer: the slow-down's time is measured
    for _ in range(round(within_s / period_s)):
        backend.sync(period_s)
        state = backend.read_state()
        if slowed_s is None and state.forward_speed_m_s < 0.8 * cruising:
            slowed_s = state.time_s - last_command_s
        if abs(state.forward_speed_m_s) < STANDSTILL_M_S:
            break
    assert slowed_s is not None and abs(state.forward_speed_m_s) < STANDSTILL_M_S, f"the watchdog did not brake: {state}"
    assert spec.watchdog_s <= slowed_s < spec.watchdog_s + late_s, \
        f"slowed down {slowed_s:.3f} s after the last command; the watchdog is {spec.watchdog_s} s"


def check_car_backend(backend: CarBackend, watchdog: bool) -> None:
    """The whole contract (module docstring); ``watchdog``: the backend brakes by itself without commands."""
    check_not_connected(backend)
    backend.connect()
    try:
        assert backend.connected
        state = backend.read_state()
        check_state(state)
        backend.sync(PERIOD_S)
        check_state(backend.read_state(), state)
        check_commands(backend)
        check_bad_commands(backend)
        if isinstance(backend, CarSceneControl):  # a simulator: back to the start, room to drive ahead
            backend.set_pose(state.pos_m, state.yaw_rad)
        mode = backend.spec.command_modes[0]
        check_stop(backend, mode)
        if watchdog:
            check_watchdog(backend, mode)
        backend.stop()
    finally:
        backend.close()
    assert not backend.connected
    backend.close()  # twice is safe
    assert not backend.connected
