"""Teleoperation, device-independent: what a teleop device reports and how raw input becomes an action.

A device driver (``drivers/teleop``) produces :class:`RawInput` readings in the *device frame*
(normalized axes in [-1, 1], which buttons are held, which were pressed since the last reading);
a :class:`TeleopMapper` turns them into :class:`TeleopEvent` s in the *env's action frame*:

- :class:`AxisMap` maps device axes to the action's motion dimensions (an explicit matrix, with a
  deadband, a scale and clipping) and appends the gripper dimension;
- :class:`InterventionSwitch` decides whether the human is in control (hold or toggle);
- the gripper is latched from buttons: the action's gripper dimension is an *absolute* command
  (``tasks/arm/actions.py``: -1 closed, +1 open), so "no button" means "keep the last command".
  Until a gripper button is pressed during an intervention the human keeps the policy's gripper
  command (when ``poll`` is given it), so taking over mid-grasp does not drop the object.

Nothing here touches hardware; :class:`~robot_rl.human.intervene.InterveneWithTeleop` consumes any
:class:`TeleopDevice`, and :mod:`robot_rl.human.devices` opens one by name.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Hashable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

#: A button's identifier: an index for HID/joystick buttons, a character for keyboard keys.
ButtonId = Hashable


@dataclasses.dataclass(frozen=True)
class TeleopEvent:
    """What the human does at one poll.

    Attributes:
        action: the human's action in the env's action frame and range (float32), or None when the
            human is not commanding anything. Always set when ``intervening``.
        intervening: the human is in control this step.
        success, failure, rerecord, end_episode: buttons, edge-triggered (true at the one poll after
            a press).
        connected: the device is delivering input. A disconnected device never intervenes.
        timestamp_s: ``time.monotonic()`` of the newest input the event is built from.
    """

    action: np.ndarray | None
    intervening: bool
    success: bool = False
    failure: bool = False
    rerecord: bool = False
    end_episode: bool = False
    connected: bool = True
    timestamp_s: float = 0.0

    def __post_init__(self) -> None:
        if self.intervening and (self.action is None or not self.connected):
            raise ValueError("an intervening TeleopEvent needs an action and a connected device")


@runtime_checkable
class TeleopDevice(Protocol):
    """A source of human commands: a SpaceMouse, a gamepad, a keyboard, a simulated human.

    No side effects in ``__init__``; ``connect`` opens the device (and any reader thread), ``close``
    releases it (idempotent); ``with device:`` does both. ``poll`` never blocks.
    """

    name: str
    #: Shape of :attr:`TeleopEvent.action`; must equal the env's action shape.
    action_shape: tuple[int, ...]

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> TeleopDevice: ...

    def __exit__(self, *exc: object) -> None: ...

    def new_episode(self) -> None:
        """The env was reset: forget per-episode state (toggled intervention, gripper latch)."""

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """The human's input now. Real devices use ``policy_action`` only for the gripper
        hand-over (see the module docstring); a simulated human compares against it."""


@dataclasses.dataclass(frozen=True)
class RawInput:
    """One reading of a device in its own frame.

    Attributes:
        axes: (D,) float, normalized to [-1, 1]; the driver documents each axis and its sign.
        held: buttons held down now.
        pressed: buttons that went down since the previous reading (so a tap between two polls
            is not lost).
        connected: the device is delivering input.
        timestamp_s: ``time.monotonic()`` of the newest input.
    """

    axes: np.ndarray
    held: frozenset = frozenset()
    pressed: frozenset = frozenset()
    connected: bool = True
    timestamp_s: float = 0.0


class InputLatch:
    """Thread-safe hand-over of the newest device state from a reader thread to ``poll``.

    The reader calls :meth:`update` for every report; ``poll`` calls :meth:`take`, which returns
    the newest axes, the held buttons and every button pressed since the previous ``take``.
    """

    def __init__(self, num_axes: int) -> None:
        self._lock = threading.Lock()
        self._axes = np.zeros(num_axes)
        self._held: frozenset = frozenset()
        self._pressed: set = set()
        self._connected = True
        self._timestamp_s = self._axes_time_s = time.monotonic()

    def update(self, axes: np.ndarray | None = None, held: frozenset | None = None) -> None:
        """Store a new reading; ``None`` keeps the previous value (reports carry one part each)."""
        with self._lock:
            now = time.monotonic()
            if axes is not None:
                self._axes, self._axes_time_s = np.array(axes, dtype=np.float64), now
            if held is not None:
                self._pressed |= held - self._held
                self._held = frozenset(held)
            self._timestamp_s = now

    def disconnect(self) -> None:
        """The device is gone: zero axes, release all buttons, report disconnected from now on."""
        with self._lock:
            self._axes = np.zeros_like(self._axes)
            self._held, self._pressed = frozenset(), set()
            self._connected = False

    def take(self, stale_after_s: float | None = None) -> RawInput:
        """The newest reading; axes read as zero if no axes came for ``stale_after_s``."""
        with self._lock:
            axes = self._axes.copy()
            if stale_after_s is not None and time.monotonic() - self._axes_time_s > stale_after_s:
                axes[:] = 0.0
            raw = RawInput(axes, self._held, frozenset(self._pressed), self._connected, self._timestamp_s)
            self._pressed = set()
        return raw


def apply_deadband(values: np.ndarray, deadband: np.ndarray) -> np.ndarray:
    """Zero inside ``|v| <= deadband``, rescaled outside so the output is continuous at the edge
    (0 there) and still reaches +-1 at +-1. ``values`` are normalized device axes."""
    values = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    magnitude = np.maximum(np.abs(values) - deadband, 0.0) / (1.0 - deadband)
    return np.sign(values) * magnitude


@dataclasses.dataclass(frozen=True)
class AxisMap:
    """Device axes -> env action: ``action[:M] = clip(scale * matrix @ deadband(axes))``, then the
    gripper dimension (if any) last.

    Attributes:
        matrix: (M, D) rows = motion dimensions of the action (in the env's action frame, e.g. EE
            delta x, y, z in the base frame), columns = device axes (in the device's frame).
        deadband: per device axis (or one for all), on normalized values, in [0, 1).
        scale: per motion dimension (or one for all); 1 means full deflection = full action.
        gripper: the action has one more dimension, last, the absolute gripper command.
        gripper_closed, gripper_open: gripper command values (``tasks/arm/actions.py``: -1, +1).
        action_low, action_high: bounds of the env's action (the output is clipped to them).
    """

    matrix: tuple[tuple[float, ...], ...]
    deadband: float | tuple[float, ...] = 0.1
    scale: float | tuple[float, ...] = 1.0
    gripper: bool = True
    gripper_closed: float = -1.0
    gripper_open: float = 1.0
    action_low: float = -1.0
    action_high: float = 1.0

    def __post_init__(self) -> None:
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.size == 0:
            raise ValueError(f"matrix must be a non-empty (M, D) table, got shape {matrix.shape}")
        deadband, scale = np.asarray(self.deadband, dtype=np.float64), np.asarray(self.scale, dtype=np.float64)
        if deadband.shape not in ((), (matrix.shape[1],)):
            raise ValueError(f"deadband needs one value or one per device axis ({matrix.shape[1]}), got {self.deadband}")
        if scale.shape not in ((), (matrix.shape[0],)):
            raise ValueError(f"scale needs one value or one per motion dimension ({matrix.shape[0]}), got {self.scale}")
        if np.any(deadband < 0) or np.any(deadband >= 1):
            raise ValueError(f"deadband must be in [0, 1) per device axis, got {self.deadband}")
        if not self.action_low < self.action_high:
            raise ValueError(f"action_low must be below action_high, got {self.action_low}, {self.action_high}")

    @classmethod
    def from_axes(cls, sources: Sequence[tuple[int, float]], device_dim: int, **kwargs) -> AxisMap:
        """One ``(device axis, sign)`` per motion dimension, e.g. ``[(1, -1.0), (0, -1.0), (2, -1.0)]``."""
        matrix = np.zeros((len(sources), device_dim))
        for row, (axis, sign) in enumerate(sources):
            if not 0 <= axis < device_dim:
                raise ValueError(f"device axis {axis} out of range for a {device_dim}-axis device")
            matrix[row, axis] = sign
        return cls(matrix=tuple(map(tuple, matrix.tolist())), **kwargs)

    @property
    def device_dim(self) -> int:
        return len(self.matrix[0])

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (len(self.matrix) + int(self.gripper),)

    def _used_axes(self) -> np.ndarray:
        return np.any(np.asarray(self.matrix) != 0, axis=0)

    def motion(self, axes: np.ndarray) -> np.ndarray:
        """(M,) motion part of the action from (D,) normalized device axes."""
        axes = np.asarray(axes, dtype=np.float64)
        if axes.shape != (self.device_dim,):
            raise ValueError(f"expected {self.device_dim} device axes, got shape {axes.shape}")
        shaped = apply_deadband(axes, np.asarray(self.deadband, dtype=np.float64))
        out = np.asarray(self.scale, dtype=np.float64) * (np.asarray(self.matrix) @ shaped)
        return np.clip(out, self.action_low, self.action_high)

    def active(self, axes: np.ndarray) -> bool:
        """Some device axis that the map uses is outside its deadband."""
        deadband = np.broadcast_to(np.asarray(self.deadband, dtype=np.float64), (self.device_dim,))
        outside = np.abs(np.asarray(axes, dtype=np.float64)) > deadband
        return bool(np.any(outside & self._used_axes()))

    def action(self, axes: np.ndarray, gripper: float | None = None) -> np.ndarray:
        """The full float32 action; ``gripper`` defaults to open."""
        parts = [self.motion(axes)]
        if self.gripper:
            value = self.gripper_open if gripper is None else gripper
            parts.append([np.clip(value, self.action_low, self.action_high)])
        return np.concatenate(parts).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ButtonMap:
    """Which button does what; ``None`` = not bound. Ids are driver-specific (index or key)."""

    intervene: ButtonId | None = None
    gripper_close: ButtonId | None = None
    gripper_open: ButtonId | None = None
    gripper_toggle: ButtonId | None = None
    success: ButtonId | None = None
    failure: ButtonId | None = None
    rerecord: ButtonId | None = None
    end_episode: ButtonId | None = None

    def gripper_buttons(self) -> frozenset:
        ids = (self.gripper_close, self.gripper_open, self.gripper_toggle)
        return frozenset(b for b in ids if b is not None)


INTERVENTION_MODES = ("hold", "toggle")


class InterventionSwitch:
    """Decides, at every poll, whether the human is in control.

    ``mode="hold"``: in control while the intervene button is held. ``mode="toggle"``: a press of
    the intervene button starts control, the next press ends it. In both modes, with
    ``on_axes=True``, deflecting a mapped axis beyond its deadband (or pressing a gripper button)
    also gives control for as long as it lasts, plus ``release_delay_s`` after it ends (so a
    stick passing through its centre does not hand a step back to the policy).
    A disconnected device is never in control and clears the toggle.
    """

    def __init__(self, mode: str = "hold", on_axes: bool = True, release_delay_s: float = 0.0) -> None:
        if mode not in INTERVENTION_MODES:
            raise ValueError(f"unknown intervention mode {mode!r}; known: {list(INTERVENTION_MODES)}")
        if release_delay_s < 0:
            raise ValueError(f"release_delay_s must be >= 0, got {release_delay_s}")
        self.mode, self.on_axes, self.release_delay_s = mode, on_axes, release_delay_s
        self._toggled = False
        self._last_activity_s = -np.inf

    def reset(self) -> None:
        self._toggled = False
        self._last_activity_s = -np.inf

    def update(self, *, held: bool, pressed: bool, activity: bool, connected: bool, now_s: float) -> bool:
        """``held``/``pressed``: the intervene button; ``activity``: axes or gripper buttons in use."""
        if not connected:
            self.reset()
            return False
        if self.mode == "toggle" and pressed:
            self._toggled = not self._toggled
        if self.on_axes and activity:
            self._last_activity_s = now_s
        lingering = self.on_axes and now_s - self._last_activity_s <= self.release_delay_s
        if self.mode == "toggle":
            return self._toggled or lingering
        return held or lingering


class TeleopMapper:
    """:class:`RawInput` (device frame) -> :class:`TeleopEvent` (env action frame)."""

    def __init__(self, axis_map: AxisMap, buttons: ButtonMap, switch: InterventionSwitch) -> None:
        self.axis_map, self.buttons, self.switch = axis_map, buttons, switch
        self._gripper: float | None = None  # latched gripper command during an intervention

    @property
    def action_shape(self) -> tuple[int, ...]:
        return self.axis_map.action_shape

    def reset(self) -> None:
        self.switch.reset()
        self._gripper = None

    def event(self, raw: RawInput, policy_action: np.ndarray | None = None) -> TeleopEvent:
        b = self.buttons
        down = raw.held | raw.pressed
        gripper_used = bool(b.gripper_buttons() & down)
        activity = self.axis_map.active(raw.axes) or gripper_used
        intervening = self.switch.update(
            held=b.intervene in raw.held, pressed=b.intervene in raw.pressed,
            activity=activity, connected=raw.connected, now_s=time.monotonic(),
        )
        if not intervening:
            self._gripper = None
        else:
            self._gripper = self._gripper_command(raw, policy_action)
        action = self.axis_map.action(raw.axes, self._gripper) if intervening else None

        def edge(button: ButtonId | None) -> bool:
            return raw.connected and button is not None and button in raw.pressed

        return TeleopEvent(
            action=action, intervening=intervening, success=edge(b.success), failure=edge(b.failure),
            rerecord=edge(b.rerecord), end_episode=edge(b.end_episode), connected=raw.connected,
            timestamp_s=raw.timestamp_s,
        )

    def _gripper_command(self, raw: RawInput, policy_action: np.ndarray | None) -> float | None:
        amap, b = self.axis_map, self.buttons
        if not amap.gripper:
            return None
        current = self._gripper
        if current is None:  # first step of this intervention: keep what the policy commanded
            current = amap.gripper_open if policy_action is None else float(np.asarray(policy_action)[-1])
        down = raw.held | raw.pressed
        if b.gripper_close is not None and b.gripper_close in down:
            return amap.gripper_closed
        if b.gripper_open is not None and b.gripper_open in down:
            return amap.gripper_open
        if b.gripper_toggle is not None and b.gripper_toggle in raw.pressed:
            middle = 0.5 * (amap.gripper_closed + amap.gripper_open)
            closed = (current - middle) * (amap.gripper_closed - middle) > 0
            return amap.gripper_open if closed else amap.gripper_closed
        return current
