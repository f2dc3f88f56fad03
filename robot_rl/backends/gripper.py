"""A parallel gripper as a component an arm backend drives (the Franka Hand, a Robotiq 2F, ...).

An arm backend whose gripper is not part of the arm's own interface (a UR with a Robotiq 2F, a
Panda with a third-party hand) holds a :class:`Gripper` and forwards ``ArmTarget.gripper_width_m``
to :meth:`Gripper.command_width` and the measured width into ``ArmState.gripper_width_m``.

Conventions: widths are the distance between the fingers in metres, ``0`` closed to
``max_width_m`` open; ``command_width`` never blocks on the motion (the arm's control period must
not wait for the fingers) and returns the width it really sent after clipping.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Gripper(Protocol):
    """One parallel gripper, opened explicitly and closed always.

    Attributes:
        max_width_m: fully open finger distance, known before ``connect()``.
        connected: whether ``connect()`` succeeded and ``close()`` has not run.
    """

    @property
    def max_width_m(self) -> float: ...

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None:
        """Open the link and make the gripper ready to move (activation, homing); raises on failure."""
        ...

    def close(self) -> None:
        """Stop the fingers and release the link; safe to call twice or after a failed connect."""
        ...

    def read_width(self) -> float:
        """The measured finger distance [m]."""
        ...

    def command_width(self, width_m: float) -> float:
        """Start moving to ``width_m`` (clipped to ``[0, max_width_m]``) and return what was sent."""
        ...

    def stop(self) -> None:
        """Stop the fingers where they are now (an object held stays held)."""
        ...
