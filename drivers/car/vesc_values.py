"""The VESC's telemetry: the ``COMM_GET_VALUES`` reply, parsed (:func:`parse_values`).

Layout: VESC firmware 5.x and 6.x (``commands.c``, ``case COMM_GET_VALUES``, every bit of the
``COMM_GET_VALUES_SELECTIVE`` mask set), read off the firmware source (the ``vedderb/bldc``
repository's ``commands.c``); checked against an emulator built from the same reading, not a device. After the command id byte, big-endian:

====  =========================  ==========  =========  ===============================
 #    field                      type        scale      firmware source
====  =========================  ==========  =========  ===============================
 1    FET temperature [C]        float16     1e1        ``mc_interface_temp_fet_filtered``
 2    motor temperature [C]      float16     1e1        ``mc_interface_temp_motor_filtered``
 3    motor current [A]          float32     1e2        ``..._read_reset_avg_motor_current``
 4    input current [A]          float32     1e2        ``..._read_reset_avg_input_current``
 5    d-axis current [A]         float32     1e2        ``..._read_reset_avg_id``
 6    q-axis current [A]         float32     1e2        ``..._read_reset_avg_iq``
 7    duty cycle now             float16     1e3        ``mc_interface_get_duty_cycle_now``
 8    ERPM                       float32     1          ``mc_interface_get_rpm`` (electrical)
 9    input voltage [V]          float16     1e1        ``GET_INPUT_VOLTAGE``
 10   amp hours (drawn)          float32     1e4
 11   amp hours charged          float32     1e4
 12   watt hours (drawn)         float32     1e4
 13   watt hours charged         float32     1e4
 14   tachometer                 int32       1          6 counts per electrical revolution
 15   tachometer, absolute       int32       1
 16   fault code                 uint8                  ``mc_fault_code`` (``datatypes.h``)
 17   PID position [deg]         float32     1e6        (3.x and later)
 18   controller id              uint8
 19   MOSFET 1..3 temp. [C]      3x float16  1e1        (3.4x and later)
 20   vd, vq [V]                 2x float32  1e3        (5.x and later)
 21   status                     uint8                  bit 0: timeout fired, bit 1: kill switch (6.x)
====  =========================  ==========  =========  ===============================

Fields 1-16 (53 bytes) are required; later ones are read when present and anything after them is
ignored, so a newer firmware's longer reply still parses. Firmware 2.x sent a different layout (six
MOSFET temperatures first; pyvesc 1.0.5's ``GetValues`` still expects it): it is not supported.
"""

from __future__ import annotations

import dataclasses
import struct

from drivers.car.vesc_codec import COMM_GET_VALUES, VescProtocolError

_REQUIRED = struct.Struct(">hhiiiihihiiiiiiB")  # fields 1-16
_OPTIONAL = ((struct.Struct(">i"), ("pid_pos_deg",), 1e6), (struct.Struct(">B"), ("controller_id",), 1.0),
             (struct.Struct(">hhh"), ("temp_mos1_c", "temp_mos2_c", "temp_mos3_c"), 1e1),
             (struct.Struct(">ii"), ("vd_v", "vq_v"), 1e3), (struct.Struct(">B"), ("status",), 1.0))
_SCALES = (1e1, 1e1, 1e2, 1e2, 1e2, 1e2, 1e3, 1.0, 1e1, 1e4, 1e4, 1e4, 1e4, 1.0, 1.0, 1.0)

#: ``mc_fault_code`` (firmware ``datatypes.h``); other codes are shown by number.
FAULT_NAMES = {
    0: "NONE", 1: "OVER_VOLTAGE", 2: "UNDER_VOLTAGE", 3: "DRV", 4: "ABS_OVER_CURRENT", 5: "OVER_TEMP_FET",
    6: "OVER_TEMP_MOTOR", 7: "GATE_DRIVER_OVER_VOLTAGE", 8: "GATE_DRIVER_UNDER_VOLTAGE", 9: "MCU_UNDER_VOLTAGE",
    10: "BOOTING_FROM_WATCHDOG_RESET", 11: "ENCODER_SPI", 12: "ENCODER_SINCOS_BELOW_MIN_AMPLITUDE",
    13: "ENCODER_SINCOS_ABOVE_MAX_AMPLITUDE", 14: "FLASH_CORRUPTION", 15: "HIGH_OFFSET_CURRENT_SENSOR_1",
    16: "HIGH_OFFSET_CURRENT_SENSOR_2", 17: "HIGH_OFFSET_CURRENT_SENSOR_3", 18: "UNBALANCED_CURRENTS",
}


def fault_name(code: int) -> str:
    """``FAULT_CODE_UNDER_VOLTAGE`` for 2, ``FAULT_CODE_<n>`` for a code this table does not know."""
    return f"FAULT_CODE_{FAULT_NAMES.get(code, code)}"


@dataclasses.dataclass(frozen=True)
class VescValues:
    """One ``COMM_GET_VALUES`` reply in SI units (module docstring for the layout).

    Attributes:
        erpm: electrical RPM (mechanical RPM times the motor's pole pairs), signed.
        tachometer: signed count, 6 per electrical revolution (forward +).
        fault_code: ``mc_fault_code``; 0 = none (:func:`fault_name`).
        pid_pos_deg ... status: ``None`` when the firmware's reply ends before them.
    """

    temp_fet_c: float
    temp_motor_c: float
    motor_current_a: float
    input_current_a: float
    id_current_a: float
    iq_current_a: float
    duty: float
    erpm: float
    input_voltage_v: float
    amp_hours: float
    amp_hours_charged: float
    watt_hours: float
    watt_hours_charged: float
    tachometer: int
    tachometer_abs: int
    fault_code: int
    pid_pos_deg: float | None = None
    controller_id: int | None = None
    temp_mos1_c: float | None = None
    temp_mos2_c: float | None = None
    temp_mos3_c: float | None = None
    vd_v: float | None = None
    vq_v: float | None = None
    status: int | None = None

    @property
    def fault(self) -> str:
        return fault_name(self.fault_code)


_INTEGER_FIELDS = ("tachometer", "tachometer_abs", "fault_code", "controller_id", "status")


def parse_values(payload: bytes) -> VescValues:
    """A ``COMM_GET_VALUES`` reply payload (command id byte included) -> :class:`VescValues`."""
    if not payload or payload[0] != COMM_GET_VALUES:
        raise VescProtocolError(f"not a GET_VALUES reply: command id {payload[:1].hex() or '(empty)'}")
    if len(payload) < 1 + _REQUIRED.size:
        raise VescProtocolError(f"GET_VALUES reply of {len(payload)} bytes; the firmware 3.x-6.x layout needs at "
                                f"least {1 + _REQUIRED.size}")
    names = [f.name for f in dataclasses.fields(VescValues)]
    values = {name: _scaled(name, raw, scale)
              for name, raw, scale in zip(names, _REQUIRED.unpack_from(payload, 1), _SCALES)}
    offset = 1 + _REQUIRED.size
    for layout, fields, scale in _OPTIONAL:
        if len(payload) < offset + layout.size:
            break
        values.update({name: _scaled(name, raw, scale) for name, raw in zip(fields, layout.unpack_from(payload, offset))})
        offset += layout.size
    return VescValues(**values)


def _scaled(name: str, raw: int, scale: float) -> float | int:
    return int(raw) if name in _INTEGER_FIELDS else raw / scale
