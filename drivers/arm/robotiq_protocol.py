"""The Robotiq 2F-85/2F-140 register map (instruction manual, section 4 "Control"), no I/O.

The gripper shares two blocks of 16-bit Modbus registers with its master, each register holding
two bytes, big-endian (the manual's "byte 0" is the high byte of the first register):

* Robot Output / gripper functionalities, written with FC16 at ``0x03E8``:
  byte 0 ACTION REQUEST (bit 0 ``rACT`` activate, bit 3 ``rGTO`` go to the requested position,
  bit 4 ``rATR`` automatic release, bit 5 ``rARD`` its direction), bytes 1-2 reserved,
  byte 3 ``rPR`` position request (0 open .. 255 closed), byte 4 ``rSP`` speed, byte 5 ``rFR`` force.
* Robot Input / gripper status, read with FC04 at ``0x07D0``:
  byte 0 GRIPPER STATUS (bit 0 ``gACT``, bit 3 ``gGTO``, bits 4-5 ``gSTA`` activation status,
  bits 6-7 ``gOBJ`` object detection), byte 1 reserved, byte 2 FAULT STATUS (low nibble ``gFLT``,
  high nibble ``kFLT`` of an optional controller), byte 3 ``gPR`` position request echo,
  byte 4 ``gPO`` position, byte 5 ``gCU`` finger current (x 10 mA).

Example from the manual: closing at full speed and force is ``rACT|rGTO = 0x09, rPR = rSP = rFR =
0xFF``, i.e. the registers ``[0x0900, 0x00FF, 0xFFFF]``.
"""

from __future__ import annotations

import dataclasses
import enum
import math

OUTPUT_REGISTER_ADDR = 0x03E8
STATUS_REGISTER_ADDR = 0x07D0
NUM_OUTPUT_REGISTERS = 3
NUM_STATUS_REGISTERS = 3

ACTION_ACT, ACTION_GTO, ACTION_ATR, ACTION_ARD = 0x01, 0x08, 0x10, 0x20


class ActivationStatus(enum.IntEnum):
    """``gSTA``."""

    RESET = 0  # gripper in reset (or automatic release) state
    IN_PROGRESS = 1
    UNUSED = 2
    COMPLETED = 3


class ObjectStatus(enum.IntEnum):
    """``gOBJ`` (valid while ``gGTO`` is set)."""

    MOVING = 0  # fingers moving to the requested position, no object detected
    CONTACT_OPENING = 1  # fingers stopped by a contact while opening: object detected
    CONTACT_CLOSING = 2  # fingers stopped by a contact while closing: object detected
    AT_REQUEST = 3  # fingers at the requested position, no object (or the object was lost)


# gFLT: (severity, the manual's meaning). Priority faults: solid blue LED; minor: solid red LED;
# major: blinking red/blue, a reset (rACT 0 -> 1) is needed.
FAULTS: dict[int, tuple[str, str]] = {
    0x05: ("priority", "action delayed: the activation (re-activation) must be completed before the action"),
    0x07: ("priority", "the activation bit must be set before any action"),
    0x08: ("minor", "maximum operating temperature exceeded (>= 85 C internally): let it cool below 80 C"),
    0x09: ("minor", "no communication during at least 1 second"),
    0x0A: ("major", "under minimum operating voltage"),
    0x0B: ("major", "automatic release in progress"),
    0x0C: ("major", "internal fault: contact Robotiq support"),
    0x0D: ("major", "activation fault: verify that no interference or other error occurred"),
    0x0E: ("major", "overcurrent triggered"),
    0x0F: ("major", "automatic release completed"),
}
COMM_LOSS_FAULT = 0x09  # reported once, on the first status read after a silence of >= 1 s


def describe_fault(code: int) -> tuple[str, str]:
    """``(severity, meaning)`` of a ``gFLT`` code (codes the manual does not list: "unknown")."""
    return FAULTS.get(code, ("unknown", f"fault code 0x{code:02X} not in the 2F-85/2F-140 manual"))


def _byte(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"{name} must be an integer byte in [0, 255], got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class GripperRequest:
    """The Robot Output registers: what the master asks (bytes, as the manual names them)."""

    activate: bool  # rACT
    go_to: bool  # rGTO
    position: int = 0  # rPR, 0 open .. 255 closed
    speed: int = 0  # rSP, 0 slowest .. 255 fastest
    force: int = 0  # rFR, 0 least .. 255 most
    auto_release: bool = False  # rATR (emergency release: fingers open slowly, needs a reset after)

    def __post_init__(self) -> None:
        for name in ("position", "speed", "force"):
            _byte(f"GripperRequest.{name}", getattr(self, name))

    @property
    def action(self) -> int:
        return (ACTION_ACT * self.activate) | (ACTION_GTO * self.go_to) | (ACTION_ATR * self.auto_release)


def encode_request(request: GripperRequest) -> list[int]:
    """The three Robot Output register values for FC16 at :data:`OUTPUT_REGISTER_ADDR`."""
    return [request.action << 8, request.position, (request.speed << 8) | request.force]


def decode_request(registers: list[int] | tuple[int, ...]) -> GripperRequest:
    """The inverse of :func:`encode_request` (reserved bytes ignored)."""
    if len(registers) < NUM_OUTPUT_REGISTERS:
        raise ValueError(f"the Robot Output block has {NUM_OUTPUT_REGISTERS} registers, got {len(registers)}")
    action = registers[0] >> 8
    return GripperRequest(activate=bool(action & ACTION_ACT), go_to=bool(action & ACTION_GTO),
                          position=registers[1] & 0xFF, speed=registers[2] >> 8, force=registers[2] & 0xFF,
                          auto_release=bool(action & ACTION_ATR))


@dataclasses.dataclass(frozen=True)
class GripperStatus:
    """The Robot Input registers, decoded."""

    activated: bool  # gACT
    going: bool  # gGTO
    activation: ActivationStatus  # gSTA
    object_status: ObjectStatus  # gOBJ
    fault: int  # gFLT
    controller_fault: int  # kFLT
    position_request_echo: int  # gPR
    position: int  # gPO, 0 open .. 255 closed
    current_ma: float  # gCU x 10 mA

    @property
    def ready(self) -> bool:
        return self.activated and self.activation is ActivationStatus.COMPLETED

    @property
    def object_detected(self) -> bool:
        return self.going and self.object_status in (ObjectStatus.CONTACT_OPENING, ObjectStatus.CONTACT_CLOSING)

    def describe(self) -> str:
        fault = "none" if self.fault == 0 else f"0x{self.fault:02X} ({describe_fault(self.fault)[1]})"
        return (f"gACT={int(self.activated)} gGTO={int(self.going)} gSTA={self.activation.value} "
                f"({self.activation.name.lower().replace('_', ' ')}) gOBJ={self.object_status.value} "
                f"({self.object_status.name.lower().replace('_', ' ')}) gFLT={fault} kFLT=0x{self.controller_fault:X} "
                f"gPR={self.position_request_echo} gPO={self.position} current={self.current_ma:.0f} mA")


def decode_status(registers: list[int] | tuple[int, ...]) -> GripperStatus:
    """The Robot Input registers read with FC04 at :data:`STATUS_REGISTER_ADDR`."""
    if len(registers) < NUM_STATUS_REGISTERS:
        raise ValueError(f"the Robot Input block has {NUM_STATUS_REGISTERS} registers, got {len(registers)}")
    status, fault = registers[0] >> 8, registers[1] >> 8
    return GripperStatus(activated=bool(status & 0x01), going=bool(status & 0x08),
                         activation=ActivationStatus((status >> 4) & 0x03), object_status=ObjectStatus(status >> 6),
                         fault=fault & 0x0F, controller_fault=fault >> 4, position_request_echo=registers[1] & 0xFF,
                         position=registers[2] >> 8, current_ma=10.0 * (registers[2] & 0xFF))


@dataclasses.dataclass(frozen=True)
class StrokeCalibration:
    """Finger distance [m] <-> position byte, linear between the two measured ends.

    ``open_position`` is the byte the gripper reports fully open (width ``stroke_m``),
    ``closed_position`` the byte with the fingertips touching (width 0). A 2F-85 typically reports
    ~3 and ~230 after activation (its self-calibration assigns 0/255 to the screw's ends, which the
    fingers do not reach); measure them on the rig.
    """

    stroke_m: float
    open_position: int = 0
    closed_position: int = 255

    def __post_init__(self) -> None:
        if not (isinstance(self.stroke_m, (int, float)) and math.isfinite(self.stroke_m) and self.stroke_m > 0):
            raise ValueError(f"stroke_m must be a finite number > 0, got {self.stroke_m!r}")
        _byte("open_position", self.open_position)
        _byte("closed_position", self.closed_position)
        if self.closed_position <= self.open_position:
            raise ValueError(f"closed_position ({self.closed_position}) must be above open_position "
                             f"({self.open_position}): 0 is open, 255 closed")

    def width_to_position(self, width_m: float) -> int:
        """The position byte for ``width_m`` (clipped to ``[0, stroke_m]``), rounded to the nearest byte."""
        if not math.isfinite(width_m):
            raise ValueError(f"gripper width must be finite, got {width_m!r}")
        fraction_closed = 1.0 - min(max(width_m, 0.0), self.stroke_m) / self.stroke_m
        return round(self.open_position + fraction_closed * (self.closed_position - self.open_position))

    def position_to_width(self, position: int) -> float:
        """The finger distance [m] of a position byte; beyond the ends it is clipped to ``[0, stroke_m]``."""
        fraction_closed = (position - self.open_position) / (self.closed_position - self.open_position)
        return self.stroke_m * (1.0 - min(max(fraction_closed, 0.0), 1.0))


def scale_to_byte(name: str, value: float, low: float, high: float) -> int:
    """``value`` in ``[low, high]`` as the byte 0..255 (linear; the manual: 0 min, 255 max)."""
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be within [{low}, {high}], got {value!r}")
    return round(255 * (value - low) / (high - low))
