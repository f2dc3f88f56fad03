"""3Dconnexion SpaceMouse as a :class:`~robot_rl.human.teleop.TeleopDevice`, read with hidapi (``hid``).

Device frame (the raw HID frame, USB HID Usage Tables; pyspacemouse calls it ``AxisConvention.HID``):
looking down at the device with its cable/logo away from you,

- ``x`` (axis 0): push the cap to the right is +;
- ``y`` (axis 1): pull the cap towards you is + (push it away, "forward", is -);
- ``z`` (axis 2): push the cap down is + (lift it up is -);
- ``rx, ry, rz`` (axes 3-5): right-handed rotations about those axes (``rz`` + = clockwise seen
  from above).

Values are int16 counts divided by :data:`FULL_SCALE` (350, pyspacemouse's ``axis_scale`` for
every model in its table) and clipped to [-1, 1]. pyspacemouse's default ("legacy") output negates
``y`` and ``z`` (so + = away, + = up) and mislabels/negates rotations; we do not use it, the sign
flips live in one visible place: the :class:`~robot_rl.human.teleop.AxisMap`.

HID reports (first byte = report id): 1 = translation ``x, y, z`` (3 x int16 little endian) or,
on wireless/newer models (SpaceMouse Wireless, Pro Wireless, Enterprise, Universal Receiver, per
pyspacemouse's table), all six axes; 2 = rotation ``rx, ry, rz`` (wired SpaceNavigator, Compact,
Pro...); 3 = buttons, a little-endian bitmask (bit i = button i;
on two-button models bit 0 = left, bit 1 = right; on Pro/Enterprise models bits 0, 1 are Menu and
Fit: see :func:`button_index` to bind by name). Other reports (battery, LEDs) are ignored.

Default bindings (:data:`SPACEMOUSE_BUTTONS`): left button closes the gripper, right button opens
it; moving the cap beyond the deadband, or pressing a gripper button, is an intervention while it
lasts (hold mode; configurable).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.human.teleop import AxisMap, ButtonMap, InputLatch, InterventionSwitch, TeleopEvent, TeleopMapper

log = logging.getLogger(__name__)

#: int16 counts at full deflection (pyspacemouse's ``axis_scale``).
FULL_SCALE = 350.0
#: Logitech (older 3Dconnexion devices) and 3Dconnexion vendor ids.
VENDOR_IDS = (0x046D, 0x256F)
#: HID Generic Desktop page, Multi-axis Controller usage: what a SpaceMouse interface reports.
MULTI_AXIS_USAGE = (0x01, 0x08)
AXES = ("x_right", "y_towards_user", "z_down", "rx", "ry", "rz")

#: Used when pyspacemouse's device table cannot be read (ids from that table).
_BUILTIN_MODELS = {
    (0x046D, 0xC626): "SpaceNavigator", (0x046D, 0xC627): "SpaceExplorer", (0x046D, 0xC62B): "SpaceMousePro",
    (0x046D, 0xC625): "SpacePilot", (0x046D, 0xC629): "SpacePilotPro", (0x256F, 0xC635): "SpaceMouseCompact",
    (0x256F, 0xC62E): "SpaceMouseWireless", (0x256F, 0xC63A): "SpaceMouseWirelessNew",
    (0x256F, 0xC632): "SpaceMouseProWireless", (0x256F, 0xC638): "SpaceMouseProWirelessBluetooth",
    (0x256F, 0xC633): "SpaceMouseEnterprise", (0x256F, 0xC641): "SpaceMouseUSB", (0x256F, 0xC652): "UniversalReceiver",
}

# Operator behind the robot, facing the base's +x: cap away from you -> +x (forward), cap to the
# left -> +y (left), cap lifted -> +z (up). Rows: EE delta x, y, z (base frame); columns: AXES.
SPACEMOUSE_EE_DELTA_XYZ = AxisMap.from_axes([(1, -1.0), (0, -1.0), (2, -1.0)], device_dim=6, deadband=0.1)
#: Operator across the table, facing the robot: away from you -> -x, to your left -> -y, up -> +z.
SPACEMOUSE_EE_DELTA_XYZ_FACING_ROBOT = AxisMap.from_axes([(1, 1.0), (0, 1.0), (2, -1.0)], device_dim=6, deadband=0.1)
SPACEMOUSE_BUTTONS = ButtonMap(gripper_close=0, gripper_open=1)


@functools.lru_cache(maxsize=1)
def _pyspacemouse_table() -> dict[str, Any]:
    """pyspacemouse's ``devices.toml`` read as data (its easyhid backend is not loaded); {} if absent."""
    spec = importlib.util.find_spec("pyspacemouse")
    if spec is None or spec.origin is None:
        return {}
    try:
        import tomllib

        with open(Path(spec.origin).parent / "devices.toml", "rb") as f:
            return tomllib.load(f)
    except (ImportError, OSError, ValueError):
        return {}


def known_models() -> dict[tuple[int, int], str]:
    """(vendor id, product id) -> model name, from pyspacemouse's table, else a built-in copy of its ids."""
    table = _pyspacemouse_table()
    models = {tuple(entry["hid_id"]): name for name, entry in table.items() if "hid_id" in entry}
    return models or dict(_BUILTIN_MODELS)


def button_index(model: str, button: str) -> int:
    """Our button index (bit of report 3) of a named button in pyspacemouse's table, e.g.
    ``button_index("SpaceMousePro", "BTN_1") == 12``; two-button models: LEFT = 0, RIGHT = 1."""
    buttons = _pyspacemouse_table().get(model, {}).get("buttons", {})
    if button not in buttons:
        raise KeyError(f"pyspacemouse's table has no button {button!r} for {model!r}; it has {sorted(buttons)}")
    report_id, byte, bit = buttons[button]
    if report_id != 3:
        raise ValueError(f"{model} {button} is in report {report_id}; only report 3 buttons are read")
    return 8 * (byte - 1) + bit


def is_spacemouse(info: dict[str, Any], models: dict[tuple[int, int], str]) -> bool:
    """A ``hid.enumerate()`` entry is a 3Dconnexion multi-axis interface."""
    if info.get("vendor_id") not in VENDOR_IDS:
        return False
    usage = (info.get("usage_page"), info.get("usage"))
    if usage == MULTI_AXIS_USAGE:
        return True
    # Backends that do not report usages (0, 0): trust the model table.
    return usage in ((0, 0), (None, None)) and (info["vendor_id"], info.get("product_id")) in models


def parse_report(report: bytes | list[int], axes: np.ndarray, buttons: frozenset) -> tuple[np.ndarray, frozenset]:
    """Apply one HID input report to the current ``axes`` (6,) and ``buttons``; returns new values."""
    data = bytes(report)
    if not data:
        return axes, buttons
    axes = axes.copy()
    report_id, payload = data[0], data[1:]
    if report_id == 1 and len(payload) >= 6:
        count = 6 if len(payload) >= 12 else 3
        axes[:count] = np.array(struct.unpack_from(f"<{count}h", payload)) / FULL_SCALE
    elif report_id == 2 and len(payload) >= 6:
        axes[3:6] = np.array(struct.unpack_from("<3h", payload)) / FULL_SCALE
    elif report_id == 3:
        mask = int.from_bytes(payload, "little")
        buttons = frozenset(i for i in range(8 * len(payload)) if mask >> i & 1)
    return np.clip(axes, -1.0, 1.0), buttons


@dataclasses.dataclass(frozen=True)
class SpaceMouseConfig:
    """Attributes:
        path: hidapi path of the interface to open (``hid.enumerate()``); None = the first SpaceMouse.
        axis_map: device frame (module docstring) -> env action.
        buttons: button index -> role.
        intervention: "hold" or "toggle" (toggle needs ``buttons.intervene``).
        intervene_on_axes: moving the cap (or a gripper button) intervenes while it lasts.
        release_delay_s: stay in control this long after the cap returns to rest.
        stale_after_s: axes read as zero when no report came for this long (a SpaceMouse streams
            reports while deflected, so silence means a lost link, not a held pose); None = never.
        read_timeout_ms: the reader thread's read timeout (bounds how long ``close`` waits).
    """

    path: bytes | None = None
    axis_map: AxisMap = SPACEMOUSE_EE_DELTA_XYZ
    buttons: ButtonMap = SPACEMOUSE_BUTTONS
    intervention: str = "hold"
    intervene_on_axes: bool = True
    release_delay_s: float = 0.0
    stale_after_s: float | None = 0.5
    read_timeout_ms: int = 50

    def __post_init__(self) -> None:
        if self.axis_map.device_dim != len(AXES):
            raise ValueError(f"a SpaceMouse axis_map needs {len(AXES)} device axes {AXES}, got {self.axis_map.device_dim}")
        if self.read_timeout_ms < 1:
            raise ValueError(f"read_timeout_ms must be >= 1, got {self.read_timeout_ms}")


class SpaceMouse:
    """A SpaceMouse read by a background thread that keeps only the newest state.

    Args:
        config: see :class:`SpaceMouseConfig`.
        hid_api: the ``hid`` module (default) or an object with the same ``enumerate()`` and
            ``device()``; the device must offer ``open_path``, ``set_nonblocking``, ``read`` and
            ``close``. Tests pass a fake that emits real report bytes.

    A read error (unplugged, receiver out of range) ends the reader: ``poll`` then reports
    ``connected=False`` and no intervention, and one warning names the device. Reconnecting means
    ``close()`` then ``connect()``.
    """

    def __init__(self, config: SpaceMouseConfig | None = None, *, hid_api: Any = None) -> None:
        self.config = config or SpaceMouseConfig()
        self._hid = hid_api
        self.name = "SpaceMouse"
        self.action_shape = self.config.axis_map.action_shape
        cfg = self.config
        switch = InterventionSwitch(cfg.intervention, cfg.intervene_on_axes, cfg.release_delay_s)
        self._mapper = TeleopMapper(cfg.axis_map, cfg.buttons, switch)
        self._device: Any = None
        self._latch = InputLatch(len(AXES))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def _api(self) -> Any:
        if self._hid is None:
            import hid  # the hidapi package; needs libhidapi-hidraw0 / libhidapi-libusb0

            self._hid = hid
        return self._hid

    def _find(self) -> dict[str, Any]:
        api, models = self._api(), known_models()
        found = list(api.enumerate())
        if self.config.path is not None:
            matches = [d for d in found if d.get("path") == self.config.path]
        else:
            matches = sorted((d for d in found if is_spacemouse(d, models)), key=lambda d: d.get("usage") != 8)
        if not matches:
            raise RuntimeError(_not_found_message(self.config.path, found))
        info = matches[0]
        model = models.get((info.get("vendor_id"), info.get("product_id"))) or info.get("product_string") or "SpaceMouse"
        self.name = f"{model} at {info.get('path')!r}"
        return info

    def connect(self) -> None:
        if self._thread is not None:
            return
        info = self._find()
        device = self._api().device()
        try:
            device.open_path(info["path"])
        except OSError as err:
            raise RuntimeError(f"cannot open {self.name}: {err}. {_PERMISSION_HINT}") from err
        device.set_nonblocking(False)
        self._device, self._latch = device, InputLatch(len(AXES))
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name=f"{self.name} reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.config.read_timeout_ms / 1000))
            self._thread = None
        if self._device is not None:
            try:
                self._device.close()
            except OSError:
                pass  # already gone with the device
            self._device = None
        self._mapper.reset()

    def __enter__(self) -> SpaceMouse:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def _read_loop(self) -> None:
        axes, buttons = np.zeros(len(AXES)), frozenset()
        while not self._stop.is_set():
            try:
                report = self._device.read(64, self.config.read_timeout_ms)
            except (OSError, ValueError) as err:  # hidapi raises OSError("read error") on unplug
                log.warning("%s stopped delivering input (%s); teleop intervention is off until it is reconnected", self.name, err)
                self._latch.disconnect()
                return
            if not report:
                continue
            axes, buttons = parse_report(report, axes, buttons)
            report_id = report[0]
            self._latch.update(axes=axes if report_id in (1, 2) else None, held=buttons if report_id == 3 else None)

    def new_episode(self) -> None:
        self._mapper.reset()

    def poll(self, policy_action: np.ndarray | None = None) -> TeleopEvent:
        """The newest state as an event; never blocks. Before ``connect`` it reads disconnected."""
        if self._thread is None:
            return TeleopEvent(action=None, intervening=False, connected=False, timestamp_s=time.monotonic())
        raw = self._latch.take(self.config.stale_after_s)
        return self._mapper.event(raw, policy_action)


_PERMISSION_HINT = (
    "On Linux, reading /dev/hidraw* needs a udev rule, e.g. in /etc/udev/rules.d/99-spacemouse.rules: "
    'KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0660", TAG+="uaccess" (and idVendor 046d for '
    "older models), then `sudo udevadm control --reload && sudo udevadm trigger` and replug"
)


def _not_found_message(path: bytes | None, found: list[dict[str, Any]]) -> str:
    what = f"no HID device at path {path!r}" if path is not None else "no 3Dconnexion SpaceMouse found"
    listing = "\n".join(
        f"  {d.get('path')!r}: {d.get('vendor_id', 0):04x}:{d.get('product_id', 0):04x} "
        f"{d.get('manufacturer_string') or ''} {d.get('product_string') or ''} "
        f"(usage page {d.get('usage_page')}, usage {d.get('usage')})"
        for d in found
    ) or "  (none: hidapi sees no HID devices at all)"
    return (
        f"{what}. HID devices hidapi can see:\n{listing}\n"
        "List them yourself with `python -c \"import hid; print(*hid.enumerate(), sep='\\n')\"`. "
        "A SpaceMouse that is plugged in but missing from this list usually lacks permissions. "
        f"{_PERMISSION_HINT}"
    )
