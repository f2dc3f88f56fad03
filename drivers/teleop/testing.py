"""Teleop hardware faked at the library boundary, for tests and dry runs without devices.

- :class:`FakeHidApi`: stands in for the ``hid`` (hidapi) module: ``enumerate()`` and ``device()``;
  its :class:`FakeHidDevice` emits the HID report bytes a real SpaceMouse sends and can be unplugged.
- :class:`VirtualJoystick`: a real SDL virtual joystick (``SDL_JoystickAttachVirtual``, SDL >= 2.0.14)
  created with ctypes in the very SDL library pygame loaded, so pygame opens and reads it through
  its normal joystick API.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import queue
import struct
import threading
import time
from typing import Any, Callable


class FakeHidDevice:
    """One device on the fake HID bus. Defaults: a SpaceMouse Compact interface (usage 1/8)."""

    def __init__(
        self,
        vendor_id: int = 0x256F,
        product_id: int = 0xC635,
        path: bytes = b"/dev/hidraw-fake0",
        product_string: str = "SpaceMouse Compact",
        usage_page: int = 0x01,
        usage: int = 0x08,
        openable: bool = True,
    ) -> None:
        self.info = {
            "path": path, "vendor_id": vendor_id, "product_id": product_id, "serial_number": "",
            "release_number": 0x0100, "manufacturer_string": "3Dconnexion", "product_string": product_string,
            "usage_page": usage_page, "usage": usage, "interface_number": 0,
        }
        self._reports: queue.Queue[bytes] = queue.Queue()
        self.unplugged = threading.Event()
        self.openable = openable  # False: like a /dev/hidraw* node without read permission
        self.open_count = 0

    def send(self, report: bytes) -> None:
        """The device emits one input report (report id first)."""
        self._reports.put(bytes(report))

    def send_translation(self, x: int, y: int, z: int) -> None:
        """Report 1 of a three-axis model: int16 little endian counts, HID frame."""
        self.send(struct.pack("<B3h", 1, x, y, z))

    def send_buttons(self, mask: int, nbytes: int = 2) -> None:
        """Report 3: button bitmask, little endian."""
        self.send(bytes([3]) + mask.to_bytes(nbytes, "little"))

    def unplug(self) -> None:
        self.unplugged.set()

    @property
    def pending(self) -> int:
        """Reports sent but not read yet."""
        return self._reports.qsize()

    def read(self, timeout_s: float | None) -> bytes | None:
        if self.unplugged.is_set():
            raise OSError("read error")
        try:
            return self._reports.get(timeout=timeout_s) if timeout_s != 0 else self._reports.get_nowait()
        except queue.Empty:
            if self.unplugged.is_set():
                raise OSError("read error") from None
            return None


class _FakeHandle:
    """What ``hid.device()`` returns: the methods of hidapi's ``device`` the drivers call."""

    def __init__(self, api: FakeHidApi) -> None:
        self._api, self._device, self._nonblocking = api, None, False

    def open_path(self, path: bytes) -> None:
        matches = [d for d in self._api.devices if d.info["path"] == path and not d.unplugged.is_set()]
        if not matches or not matches[0].openable:
            raise OSError("open failed")
        self._device = matches[0]
        self._device.open_count += 1

    def set_nonblocking(self, value: int | bool) -> int:
        self._nonblocking = bool(value)
        return 0

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        if self._device is None:
            raise ValueError("not open")
        # hidapi: timeout_ms > 0 waits at most that long; otherwise blocking unless nonblocking.
        timeout_s = timeout_ms / 1000 if timeout_ms > 0 else (0 if self._nonblocking else 0.05)
        report = self._device.read(timeout_s)
        return list(report[:max_length]) if report else []

    def close(self) -> None:
        if self._device is not None:
            self._device.open_count -= 1
            self._device = None


class FakeHidApi:
    """A stand-in for the ``hid`` module holding :class:`FakeHidDevice` s."""

    def __init__(self, devices: list[FakeHidDevice] | None = None) -> None:
        self.devices = list(devices or [])

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        return [
            dict(d.info) for d in self.devices
            if not d.unplugged.is_set()
            and vendor_id in (0, d.info["vendor_id"]) and product_id in (0, d.info["product_id"])
        ]

    def device(self) -> _FakeHandle:
        return _FakeHandle(self)


# ---------------------------------------------------------------------- SDL virtual joystick
SDL_JOYSTICK_TYPE_GAMECONTROLLER = 1


def sdl_library() -> ctypes.CDLL:
    """The SDL2 library pygame loaded: the copy bundled in ``pygame.libs`` (wheels) or the system one."""
    import pygame

    site = os.path.dirname(os.path.dirname(pygame.__file__))
    bundled = sorted(glob.glob(os.path.join(site, "pygame.libs", "libSDL2-2*.so*")))
    path = bundled[0] if bundled else ctypes.util.find_library("SDL2")
    if path is None:
        raise RuntimeError("cannot find the SDL2 library pygame uses")
    lib = ctypes.CDLL(path)
    lib.SDL_JoystickAttachVirtual.restype = ctypes.c_int
    lib.SDL_JoystickAttachVirtual.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.SDL_JoystickDetachVirtual.argtypes = [ctypes.c_int]
    lib.SDL_JoystickOpen.restype = ctypes.c_void_p
    lib.SDL_JoystickOpen.argtypes = [ctypes.c_int]
    lib.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    lib.SDL_JoystickInstanceID.argtypes = [ctypes.c_void_p]
    lib.SDL_JoystickGetDeviceInstanceID.argtypes = [ctypes.c_int]
    lib.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    lib.SDL_JoystickSetVirtualButton.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    lib.SDL_NumJoysticks.restype = ctypes.c_int
    lib.SDL_GetError.restype = ctypes.c_char_p
    return lib


class VirtualJoystick:
    """A virtual gamepad in pygame's SDL (raw joystick axes and buttons, all at 0 after
    :meth:`attach`, which also runs ``pygame.joystick.init()``). Values apply at the next
    ``SDL_JoystickUpdate`` (the driver's sampling)."""

    def __init__(self, num_axes: int = 6, num_buttons: int = 11, num_hats: int = 1) -> None:
        self.num_axes, self.num_buttons, self.num_hats = num_axes, num_buttons, num_hats
        self._sdl: ctypes.CDLL | None = None
        self._joystick: int | None = None
        self.index: int | None = None  # SDL device index when attached
        self.instance_id: int | None = None

    def attach(self) -> int:
        """Plug it in; returns its SDL device index."""
        import pygame

        pygame.joystick.init()
        sdl = self._sdl = sdl_library()
        before = pygame.joystick.get_count()
        index = sdl.SDL_JoystickAttachVirtual(SDL_JOYSTICK_TYPE_GAMECONTROLLER, self.num_axes, self.num_buttons, self.num_hats)
        if index < 0:
            raise RuntimeError(f"SDL_JoystickAttachVirtual failed: {sdl.SDL_GetError().decode()}")
        if pygame.joystick.get_count() != before + 1:
            raise RuntimeError("the virtual joystick is not visible to pygame: ctypes loaded a different SDL")
        self._joystick = sdl.SDL_JoystickOpen(index)
        self.instance_id = sdl.SDL_JoystickInstanceID(self._joystick)
        for axis in range(self.num_axes):  # SDL starts a virtual controller's axes 4, 5 at -1
            self.set_axis(axis, 0.0)
        self.index = index
        return index

    def set_axis(self, axis: int, value: float) -> None:
        """``value`` in [-1, 1] (pygame's scale: counts / 32768)."""
        counts = int(max(-32768, min(32767, round(value * 32768))))
        self._sdl.SDL_JoystickSetVirtualAxis(self._joystick, axis, counts)

    def set_button(self, button: int, pressed: bool) -> None:
        self._sdl.SDL_JoystickSetVirtualButton(self._joystick, button, int(pressed))

    def detach(self) -> None:
        """Unplug it (SDL reports it removed)."""
        if self._joystick is None:
            return
        sdl = self._sdl
        for index in range(sdl.SDL_NumJoysticks()):
            if sdl.SDL_JoystickGetDeviceInstanceID(index) == self.instance_id:
                sdl.SDL_JoystickDetachVirtual(index)
                break
        sdl.SDL_JoystickClose(self._joystick)
        self._joystick = None

    def __enter__(self) -> VirtualJoystick:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Poll ``predicate`` (which usually polls a device) until it returns something truthy; an
    ``AssertionError`` after ``timeout_s``. For tests that wait on a device's background thread."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError("condition not met in time")
