"""A gamepad (Xbox-style by default) as a :class:`~robot_rl.human.teleop.TeleopDevice`, through pygame's
joystick API.

Only SDL's joystick and game-controller subsystems are initialized: no display, no audio, so it
runs headless (``SDL_VIDEODRIVER=dummy`` or no video at all). Without a display pygame cannot pump
its event queue, so joystick state is refreshed with ``pygame._sdl2.controller.update()``
(``SDL_GameControllerUpdate``, which updates every joystick) and an unplugged pad is noticed by its
instance id leaving SDL's device list (instead of a ``JOYDEVICEREMOVED`` event).

Device frame = the pad's raw joystick axes, pygame's scale ([-1, 1]). Defaults are for an
Xbox 360/One pad on Linux through the kernel's evdev driver (``xpad``), SDL joystick API:

- axes: 0 left stick x (right +), 1 left stick y (down +), 2 left trigger (-1 released, +1
  pulled), 3 right stick x (right +), 4 right stick y (down +), 5 right trigger;
- buttons: 0 A, 1 B, 2 X, 3 Y, 4 LB, 5 RB, 6 Back, 7 Start, 8 Guide, 9 left stick, 10 right stick.

SDL's own HIDAPI drivers (used when SDL may open ``/dev/hidraw*``) order axes differently (left x,
left y, right x, right y, left trigger, right trigger); pass an ``axis_map`` to match your pad.

Default bindings (:data:`XBOX_EE_DELTA_XYZ`, :data:`XBOX_BUTTONS`), operator behind the robot
facing +x: left stick up = +x (forward), left stick left = +y (left), right stick up = +z (up);
A closes the gripper, B opens it; moving a stick or holding RB intervenes; Y = success,
X = failure, Back = re-record, Start = end the episode.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Any

import numpy as np

from robot_rl.human.teleop import AxisMap, ButtonMap, InputLatch, InterventionSwitch, TeleopEvent, TeleopMapper

log = logging.getLogger(__name__)

XBOX_EE_DELTA_XYZ = AxisMap.from_axes([(1, -1.0), (0, -1.0), (4, -1.0)], device_dim=6, deadband=0.15)
XBOX_BUTTONS = ButtonMap(intervene=5, gripper_close=0, gripper_open=1, success=3, failure=2, rerecord=6, end_episode=7)


@dataclasses.dataclass(frozen=True)
class GamepadConfig:
    """Attributes:
        index: SDL joystick device index (0 = the first pad).
        axis_map: the pad's raw axes (module docstring) -> env action; its ``device_dim`` first
            axes of the pad are read.
        buttons: button index -> role.
        intervention: "hold" or "toggle" (both use ``buttons.intervene``).
        intervene_on_axes: deflecting a mapped stick (or a gripper button) intervenes while it lasts.
        release_delay_s: stay in control this long after the sticks return to rest.
        sample_hz: a background thread samples the pad at this rate, so button taps shorter than
            the control period are not lost; None samples only in ``poll`` (use it where SDL must
            be driven from the main thread, e.g. macOS).
    """

    index: int = 0
    axis_map: AxisMap = XBOX_EE_DELTA_XYZ
    buttons: ButtonMap = XBOX_BUTTONS
    intervention: str = "hold"
    intervene_on_axes: bool = True
    release_delay_s: float = 0.0
    sample_hz: float | None = 200.0

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"index must be >= 0, got {self.index}")
        if self.sample_hz is not None and not 1.0 <= self.sample_hz <= 2000.0:
            raise ValueError(f"sample_hz must be in [1, 2000] or None, got {self.sample_hz}")


def _pygame() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    from pygame._sdl2 import controller

    pygame.joystick.init()  # SDL_INIT_JOYSTICK only
    controller.init()  # SDL_INIT_GAMECONTROLLER: gives us SDL_GameControllerUpdate without a display
    return pygame


class Gamepad:
    """A pygame joystick sampled into the newest state; ``poll`` never blocks."""

    def __init__(self, config: GamepadConfig | None = None) -> None:
        self.config = config or GamepadConfig()
        cfg = self.config
        self.name = f"gamepad {cfg.index}"
        self.action_shape = cfg.axis_map.action_shape
        switch = InterventionSwitch(cfg.intervention, cfg.intervene_on_axes, cfg.release_delay_s)
        self._mapper = TeleopMapper(cfg.axis_map, cfg.buttons, switch)
        self._latch = InputLatch(cfg.axis_map.device_dim)
        self._pygame: Any = None
        self._joystick: Any = None
        self._instance_id = -1
        self._device_count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        if self._joystick is not None:
            return
        pygame = self._pygame = _pygame()
        count = pygame.joystick.get_count()
        if self.config.index >= count:
            raise RuntimeError(_not_found_message(self.config.index, pygame))
        joystick = pygame.joystick.Joystick(self.config.index)
        need_axes, need_buttons = self.config.axis_map.device_dim, _max_button(self.config.buttons) + 1
        if joystick.get_numaxes() < need_axes or joystick.get_numbuttons() < need_buttons:
            raise RuntimeError(
                f"{joystick.get_name()!r} has {joystick.get_numaxes()} axes and {joystick.get_numbuttons()} "
                f"buttons; the axis/button maps need {need_axes} and {need_buttons}"
            )
        self.name = f"gamepad {self.config.index} ({joystick.get_name()})"
        self._joystick, self._instance_id, self._device_count = joystick, joystick.get_instance_id(), count
        self._latch = InputLatch(need_axes)
        self._sample()
        if self.config.sample_hz is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample_loop, name=f"{self.name} sampler", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stops sampling and closes this pad; SDL's joystick subsystem stays up for other users."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        with self._lock:  # a sampler that outlived the join sees None and stops
            if self._joystick is not None:
                self._joystick.quit()
                self._joystick = None
        self._mapper.reset()

    def __enter__(self) -> Gamepad:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sampling
    def _attached(self) -> bool:
        """Our pad is still in SDL's device list (checked only when the device count changes)."""
        joystick_api = self._pygame.joystick
        count = joystick_api.get_count()
        if count == self._device_count:
            return True
        self._device_count = count
        # Joystick(i) returns pygame's existing object for an open pad, or opens another one.
        try:
            return any(joystick_api.Joystick(i).get_instance_id() == self._instance_id for i in range(count))
        except self._pygame.error:  # the list changed while we read it; look again next sample
            self._device_count = -1
            return True

    def _sample(self) -> bool:
        """Refresh SDL's joystick state and store it; False once the pad is gone."""
        from pygame._sdl2 import controller

        with self._lock:
            if self._joystick is None:
                return False
            controller.update()
            if not self._attached():
                log.warning("%s was unplugged; teleop intervention is off until it is reconnected", self.name)
                self._latch.disconnect()
                return False
            joystick = self._joystick
            axes = [joystick.get_axis(i) for i in range(self.config.axis_map.device_dim)]
            held = frozenset(i for i in range(joystick.get_numbuttons()) if joystick.get_button(i))
        self._latch.update(axes=np.asarray(axes), held=held)
        return True

    def _sample_loop(self) -> None:
        period_s = 1.0 / self.config.sample_hz
        while not self._stop.wait(period_s):
            if not self._sample():
                return

    def new_episode(self) -> None:
        self._mapper.reset()

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """The newest state as an event; before ``connect`` it reads disconnected."""
        if self._joystick is None:
            return TeleopEvent(action=None, intervening=False, connected=False, timestamp_s=time.monotonic())
        if self._thread is None:
            self._sample()
        return self._mapper.event(self._latch.take(), policy_action)


def _max_button(buttons: ButtonMap) -> int:
    ids = [b for b in dataclasses.asdict(buttons).values() if isinstance(b, int)]
    return max(ids, default=-1)


def _not_found_message(index: int, pygame: Any) -> str:
    count = pygame.joystick.get_count()
    names = [pygame.joystick.Joystick(i).get_name() for i in range(count)]
    listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names)) or "none"
    return (
        f"no gamepad at index {index}; SDL sees {count} joystick(s): {listing}. Check that the pad is "
        "plugged in (and paired, for Bluetooth) and that your user may read /dev/input/event* "
        "(group `input`, or a udev uaccess rule)."
    )
