"""A terminal keyboard as a :class:`~robot_rl.human.teleop.TeleopDevice`: works over SSH, no X server.

``connect`` puts the terminal (default: stdin) in cbreak mode with termios (no echo, keys arrive
one by one; Ctrl-C still interrupts) and ``close`` restores it, also at interpreter exit. ``poll``
reads whatever keys arrived, without blocking.

Bindings (:data:`KEY_AXES`, :data:`KEYBOARD_BUTTONS`); the keyboard frame *is* the base frame:

====================  =======================================================
``w`` / ``s``         +x / -x (forward / back)
``a`` / ``d``         +y / -y (left / right)
``r`` / ``f``         +z / -z (up / down)
``g``                 toggle the gripper (closed <-> open)
space                 toggle intervention (take over / hand back)
Enter                 success (ends the episode)
Backspace             failure (ends the episode)
``x``                 re-record this episode
``q``                 end the episode
====================  =======================================================

A motion key moves for ``hold_s`` after the press; the terminal's auto-repeat keeps refreshing it
while the key is held (set ``hold_s`` above the repeat delay, ~0.25-0.6 s, to move smoothly).
A motion key also takes over while it moves (``intervene_on_axes``); space keeps control with the
arm holding still. Keys are case-sensitive; arrow keys and other escape sequences are ignored.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import select
import sys
import termios
import time
import tty

import numpy as np

from robot_rl.human.teleop import AxisMap, ButtonMap, InterventionSwitch, RawInput, TeleopEvent, TeleopMapper

log = logging.getLogger(__name__)

#: key -> (keyboard axis, sign); axes 0, 1, 2 = base x, y, z.
KEY_AXES: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0),
}
KEYBOARD_BUTTONS = ButtonMap(
    intervene=" ", gripper_toggle="g", success="\n", failure="\x7f", rerecord="x", end_episode="q",
)
KEYBOARD_EE_DELTA_XYZ = AxisMap.from_axes([(0, 1.0), (1, 1.0), (2, 1.0)], device_dim=3, deadband=0.0, scale=0.5)

# Terminals differ: Enter may arrive as CR, Backspace as ^H.
_NORMALIZE = {"\r": "\n", "\x08": "\x7f"}


def decode_keys(data: bytes) -> list[str]:
    """Bytes from the terminal -> keys, dropping escape sequences (arrows, function keys)."""
    text, keys, i = data.decode("latin-1"), [], 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch != "\x1b":
            keys.append(_NORMALIZE.get(ch, ch))
            continue
        if i < len(text) and text[i] in "[O":  # CSI / SS3: parameters, then one final byte
            i += 1
            while i < len(text) and not "\x40" <= text[i] <= "\x7e":
                i += 1
            i += 1
    return keys


@dataclasses.dataclass(frozen=True)
class KeyboardConfig:
    """Attributes:
        fd: the terminal's file descriptor; None = stdin.
        hold_s: how long one key press moves.
        key_axes: key -> (keyboard axis, sign).
        axis_map: keyboard axes -> env action (scale 0.5: half speed).
        buttons: key -> role.
        intervention: "toggle" (space) or "hold" (then only motion keys intervene).
        intervene_on_axes: a motion key takes over while it moves.
    """

    fd: int | None = None
    hold_s: float = 0.3
    key_axes: dict[str, tuple[int, float]] = dataclasses.field(default_factory=lambda: dict(KEY_AXES))
    axis_map: AxisMap = KEYBOARD_EE_DELTA_XYZ
    buttons: ButtonMap = KEYBOARD_BUTTONS
    intervention: str = "toggle"
    intervene_on_axes: bool = True

    def __post_init__(self) -> None:
        if self.hold_s <= 0:
            raise ValueError(f"hold_s must be positive, got {self.hold_s}")
        bad = {k: v for k, v in self.key_axes.items() if not 0 <= v[0] < self.axis_map.device_dim}
        if bad:
            raise ValueError(f"key_axes {bad} name axes outside the axis_map's {self.axis_map.device_dim} device axes")


class TerminalKeyboard:
    """Keys from a tty; ``poll`` never blocks."""

    def __init__(self, config: KeyboardConfig | None = None) -> None:
        self.config = config or KeyboardConfig()
        cfg = self.config
        self.action_shape = cfg.axis_map.action_shape
        self.name = "terminal keyboard"
        self._mapper = TeleopMapper(cfg.axis_map, cfg.buttons, InterventionSwitch(cfg.intervention, cfg.intervene_on_axes))
        self._fd: int | None = None
        self._saved_mode: list | None = None
        self._connected = False
        self._until_s = np.full(cfg.axis_map.device_dim, -np.inf)  # each axis moves until then
        self._sign = np.zeros(cfg.axis_map.device_dim)

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        if self._fd is not None:
            return
        fd = sys.stdin.fileno() if self.config.fd is None else self.config.fd
        if not os.isatty(fd):
            raise RuntimeError(
                f"keyboard teleop needs a terminal, but fd {fd} is not a tty (stdin redirected, run under "
                "nohup/systemd or an IDE console?); run it in a terminal or over `ssh -t`, or use a gamepad"
            )
        self.name = f"terminal keyboard ({os.ttyname(fd)})"
        self._saved_mode = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        self._fd, self._connected = fd, True
        atexit.register(self._restore)

    def _restore(self) -> None:
        if self._fd is not None and self._saved_mode is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)
            except termios.error:
                pass  # the terminal is gone
        self._saved_mode = None

    def close(self) -> None:
        """Restores the terminal mode saved by ``connect``."""
        self._restore()
        atexit.unregister(self._restore)
        self._fd = None
        self._mapper.reset()

    def __enter__(self) -> TerminalKeyboard:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def _read_keys(self) -> list[str]:
        data = b""
        try:
            while select.select([self._fd], [], [], 0)[0]:
                chunk = os.read(self._fd, 1024)
                if not chunk:
                    raise EOFError("end of input")
                data += chunk
        except (OSError, EOFError) as err:
            if self._connected:
                log.warning("%s stopped delivering keys (%s); teleop intervention is off", self.name, err)
            self._connected = False
        return decode_keys(data)

    def _axes(self, keys: list[str], now_s: float) -> np.ndarray:
        for key in keys:
            if key in self.config.key_axes:
                axis, sign = self.config.key_axes[key]
                self._until_s[axis], self._sign[axis] = now_s + self.config.hold_s, sign
        return np.where(now_s < self._until_s, self._sign, 0.0)

    def new_episode(self) -> None:
        self._mapper.reset()
        self._until_s[:] = -np.inf

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """Keys since the last poll as an event; before ``connect`` it reads disconnected."""
        now_s = time.monotonic()
        if self._fd is None or not self._connected:
            return TeleopEvent(action=None, intervening=False, connected=False, timestamp_s=now_s)
        keys = self._read_keys()
        if not self._connected:
            return TeleopEvent(action=None, intervening=False, connected=False, timestamp_s=now_s)
        raw = RawInput(axes=self._axes(keys, now_s), pressed=frozenset(keys), connected=True, timestamp_s=now_s)
        return self._mapper.event(raw, policy_action)
