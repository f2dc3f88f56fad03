"""Aligning a bag's message streams to the control rate: which message each role holds at each tick.

Ticks are ``start + k * period`` over the recording, ``start`` the first moment every required
stream has a message. At a tick each stream holds its newest message *at or before* the tick
(zero-order hold on the bag's receive times; never a later message). A tick is **usable** when
every required stream holds a message no older than its max age, and it lies inside an episode
(see the boundaries below). An optional stream whose newest message is missing or too old is left
out at that tick.

A tick that is not usable is *not* bridged: it ends the run of ticks before it, and the next usable
tick starts a new one (a :class:`Segment`). Bridging it would make one stored step span two or
more control periods, a transition the policy never takes. A segment needs two ticks (one step).

Episode boundaries (:class:`Boundary`): ``split`` (a ``std_msgs/Empty`` on the episode topic) makes
the ticks from its time on a new episode; ``end`` (a ``std_msgs/Bool`` turning ``False``) stops
episodes until the next ``start`` (the Bool turning ``True``). Ticks before the first marker are
outside every episode when that marker is a ``start``. A pause in a stream longer
than its max age (the command stream's is the episode gap) needs no marker: its stale ticks split.
"""

from __future__ import annotations

import dataclasses
from typing import Collection, Mapping, Sequence

import numpy as np

SPLIT, START, END = "split", "start", "end"


@dataclasses.dataclass(frozen=True)
class Boundary:
    """An episode marker at ``time_ns`` (bag receive time): ``kind`` is ``split``, ``start`` or ``end``."""

    time_ns: int
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in (SPLIT, START, END):
            raise ValueError(f"Boundary.kind must be one of {(SPLIT, START, END)}, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class Segment:
    """A run of consecutive usable ticks inside one episode.

    Attributes:
        ticks_ns: ``(N,)`` tick times, ``N >= 2``.
        picks: role -> ``(N,)`` index of the message held at each tick (into the role's sorted times);
            ``-1`` where an optional role holds none.
    """

    ticks_ns: np.ndarray
    picks: Mapping[str, np.ndarray]


@dataclasses.dataclass
class AlignReport:
    """Counts of ticks, for the import's summary: why ticks were not used.

    Attributes:
        ticks: ticks on the grid.
        used: ticks inside a segment.
        stale: role -> ticks at which that required role held no message or one older than its max age.
        outside: ticks outside every episode (between an ``end`` and the next ``start``).
        lone: usable ticks left alone between unusable ones (a segment needs two).
    """

    ticks: int = 0
    used: int = 0
    stale: dict[str, int] = dataclasses.field(default_factory=dict)
    outside: int = 0
    lone: int = 0


def tick_grid(times_ns: Mapping[str, np.ndarray], required: Collection[str], period_ns: int) -> np.ndarray:
    """``(T,)`` int64 tick times from the first moment every required stream has a message to the
    last message of any required stream."""
    if period_ns <= 0:
        raise ValueError(f"the tick period must be positive, got {period_ns} ns")
    if not required or any(len(times_ns[role]) == 0 for role in required):
        return np.zeros(0, dtype=np.int64)
    start = max(int(times_ns[role][0]) for role in required)
    end = max(int(times_ns[role][-1]) for role in required)
    return start + period_ns * np.arange((end - start) // period_ns + 1, dtype=np.int64)


def held(times_ns: np.ndarray, ticks_ns: np.ndarray, max_age_ns: int) -> np.ndarray:
    """Per tick the index of the newest message at or before it, ``-1`` if none or older than ``max_age_ns``."""
    index = np.searchsorted(times_ns, ticks_ns, side="right") - 1
    fresh = index >= 0
    fresh[fresh] = ticks_ns[fresh] - times_ns[index[fresh]] <= max_age_ns
    return np.where(fresh, index, -1)


def episode_ids(ticks_ns: np.ndarray, boundaries: Sequence[Boundary]) -> np.ndarray:
    """Per tick the number of the episode it belongs to, ``-1`` outside every episode (module docstring)."""
    marks = sorted(boundaries, key=lambda b: b.time_ns)
    if not marks:
        return np.zeros(len(ticks_ns), dtype=np.int64)
    times = np.array([b.time_ns for b in marks], dtype=np.int64)
    last = np.searchsorted(times, ticks_ns, side="right") - 1  # the newest marker at or before each tick
    ids = last + 1
    kinds = np.array([b.kind for b in marks])
    inside = np.where(last >= 0, kinds[np.maximum(last, 0)] != END, marks[0].kind != START)
    return np.where(inside, ids, -1)


def align(times_ns: Mapping[str, np.ndarray], required: Collection[str], period_ns: int,
          max_age_ns: Mapping[str, int], boundaries: Sequence[Boundary] = ()) -> tuple[list[Segment], AlignReport]:
    """The segments of usable ticks (module docstring) and what was left out, and why.

    Args:
        times_ns: role -> sorted receive times of its messages (every role found in the bag).
        required: the roles every usable tick needs.
        period_ns: the control period.
        max_age_ns: role -> how old its held message may be (every role in ``times_ns``).
        boundaries: episode markers.
    """
    ticks = tick_grid(times_ns, required, period_ns)
    picks = {role: held(times, ticks, max_age_ns[role]) for role, times in times_ns.items()}
    episode = episode_ids(ticks, boundaries)
    fresh = np.ones(len(ticks), dtype=bool)
    for role in required:
        fresh &= picks[role] >= 0
    usable = fresh & (episode >= 0)
    report = AlignReport(ticks=len(ticks), outside=int(np.sum(episode < 0)),
                         stale={role: int(np.sum(picks[role] < 0)) for role in required})
    # A run ends where a tick is unusable or the episode number changes.
    breaks = np.flatnonzero(~usable[1:] | ~usable[:-1] | (episode[1:] != episode[:-1])) + 1
    segments = []
    for run in np.split(np.arange(len(ticks)), breaks):
        if len(run) == 0 or not usable[run[0]]:
            continue
        if len(run) < 2:
            report.lone += 1
            continue
        segments.append(Segment(ticks[run], {role: pick[run] for role, pick in picks.items()}))
        report.used += len(run)
    return segments, report


def bool_boundaries(times_ns: np.ndarray, values: Sequence[bool]) -> list[Boundary]:
    """Markers of a ``std_msgs/Bool`` episode topic: ``True`` starts an episode (ending the one in
    progress, if any), ``False`` ends it; a repeated value changes nothing."""
    marks, previous = [], None
    for time_ns, value in zip(times_ns, values):
        if value != previous:
            marks.append(Boundary(int(time_ns), START if value else END))
        previous = value
    return marks


def split_boundaries(times_ns: np.ndarray) -> list[Boundary]:
    """Markers of a ``std_msgs/Empty`` episode topic: each message begins a new episode."""
    return [Boundary(int(t), SPLIT) for t in times_ns]
