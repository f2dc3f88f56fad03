"""Episodes stored as several segments of the replay ring, and the links between them.

The learner adds each chunk an actor sends as its own segment; the segment's first observation
repeats the previous chunk's last one in a new slot (other actors' chunks may lie in between).
A link from the slot ``L`` where one segment ends to the slot ``S`` where the next one starts lets
n-step walks (:mod:`robot_rl.data.nstep`) go on across that seam.

Every observation written to the ring gets a serial (1, 2, ...: observations written so far), so
``(slot, serial)`` names one slot's content and tells when it has been overwritten. Writing a slot
drops the link out of it; a link into a slot lives while that slot keeps the serial it was linked
with.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from robot_rl.data.nstep import Links


class SegmentEnd(NamedTuple):
    """The last observation of a segment added to a replay buffer: its slot and its write serial."""

    slot: int
    serial: int


class SegmentLinks:
    """Write serials of a ring's slots, and the links from segment ends to their continuations."""

    BYTES_PER_SLOT = 3 * 8  # serial, continues, continues_serial

    def __init__(self, capacity: int) -> None:
        self.writes = 0  # observations written so far: the serial of the latest one
        self.serial = np.zeros(capacity, np.int64)
        self.continues = np.full(capacity, -1, np.int64)
        self.continues_serial = np.zeros(capacity, np.int64)
        self._links = Links(self.continues, self.continues_serial, self.serial)
        self._linked = False  # whether any link was ever made

    @property
    def links(self) -> Links | None:
        """The arrays n-step walks follow; None until something was linked (walks stop at segment ends)."""
        return self._links if self._linked else None

    @property
    def nbytes(self) -> int:
        return self.serial.nbytes + self.continues.nbytes + self.continues_serial.nbytes

    def wrote(self, slot: int) -> None:
        """One observation was written to ``slot``."""
        self.writes += 1
        self.serial[slot] = self.writes
        self.continues[slot] = -1

    def wrote_run(self, slots: np.ndarray) -> None:
        """Observations were written to ``slots``, in this order."""
        self.serial[slots] = np.arange(self.writes + 1, self.writes + 1 + len(slots))
        self.writes += len(slots)
        self.continues[slots] = -1

    def end(self, slot: int) -> SegmentEnd:
        return SegmentEnd(int(slot), int(self.serial[slot]))

    def check(self, after: SegmentEnd | None) -> None:
        """ValueError unless ``after`` is None or a segment end in this ring (call before writing)."""
        if after is not None and not (isinstance(after, SegmentEnd) and 0 <= after.slot < len(self.serial)):
            raise ValueError(f"after must be a SegmentEnd that add_segment returned for this buffer of "
                             f"{len(self.serial)} slots, got {after!r}")

    def link(self, after: SegmentEnd, start: int) -> bool:
        """Link ``after`` to ``start`` if its slot still holds that content; whether it did."""
        if self.serial[after.slot] != after.serial:
            return False  # overwritten since: the observations before it are gone
        self.continues[after.slot] = start
        self.continues_serial[after.slot] = self.serial[start]
        self._linked = True
        return True
