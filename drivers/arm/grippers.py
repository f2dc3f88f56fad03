"""The gripper component a rig file names, for the arm backends that drive one (UR; FR3 or Panda with
a third-party hand instead of the Franka Hand).

A rig file holds at most one ``[gripper.<kind>]`` table::

    [gripper.robotiq_2f]
    port = "/dev/serial/by-id/usb-FTDI_USB_TO_RS-485_DA1234-if00-port0"
    model = "2F-85"

:func:`load_rig_gripper` turns it into an unconnected :class:`~robot_rl.backends.gripper.Gripper`
(the arm backend connects and closes it with the arm); no table means no separate gripper. The
driver's library is imported only when its gripper connects.
"""

from __future__ import annotations

import dataclasses
import os

from robot_rl.backends.gripper import Gripper
from robot_rl.rig import check_fields, read_rig_table

#: ``[gripper.<kind>]`` -> the driver that reads it.
GRIPPER_KINDS = ("robotiq_2f",)


def load_rig_gripper(path: str | os.PathLike) -> Gripper | None:
    """The gripper of the rig file ``path``'s ``[gripper.<kind>]`` table, unconnected; ``None`` without
    one. A ValueError names the file, the table and the field for an unknown kind or a bad value."""
    tables = read_rig_table(path, "gripper", missing_ok=True)
    if not tables:
        return None
    if len(tables) != 1 or next(iter(tables)) not in GRIPPER_KINDS or not isinstance(next(iter(tables.values())), dict):
        raise ValueError(f"{path}: [gripper] must hold one table of a known kind ({list(GRIPPER_KINDS)}), "
                         f"got {sorted(tables)}")
    from drivers.arm.robotiq import Robotiq2F, RobotiqConfig

    kind, table = next(iter(tables.items()))
    section = f"gripper.{kind}"
    check_fields(table, {f.name for f in dataclasses.fields(RobotiqConfig)}, path, section)
    try:
        return Robotiq2F(RobotiqConfig(**table))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: [{section}]: {err}") from err
