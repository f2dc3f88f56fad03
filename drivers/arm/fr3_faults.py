"""What stops the FR3 backend, what it recovered from, and the thread that watches for both.

* :class:`FaultLatch`: the fault that stops the backend now (a lost link or spent recoveries for
  good, a safety stop until ``reset()``), an event a supervisor can wait on, and the log of reflexes
  with the bounded count of automatic recoveries;
* :class:`Fr3Monitor`: a thread that runs the backend's check at a fixed rate from ``connect()`` to
  ``close()`` and latches whatever it raises (never dying silently).

No robot and no client library here: the backend passes in its check and libfranka's errors.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from drivers.arm.fr3_motions import ResetStalled
from drivers.arm.fr3_safety import Fr3ConnectionLost, Fr3Error, Fr3ReflexError, Fr3SafetyStop, Reflex, reflex_names
from robot_rl.rate import Rate

log = logging.getLogger("drivers.arm.fr3")


class FaultLatch:
    """The backend's fault and reflex log. ``fault``/``event`` are read from any thread."""

    def __init__(self, max_recoveries: int, clock: Callable[[], float], robot: str = "FR3") -> None:
        self.max_recoveries, self._clock, self.robot = max_recoveries, clock, robot  # robot: names it in messages
        self.fault: Fr3Error | None = None
        self.event = threading.Event()  #: set when a fault is latched (a test or a supervisor waits on it)
        self.reflexes: list[Reflex] = []
        self.recoveries = 0  #: automatic recoveries since the last reset

    @property
    def recoverable(self) -> bool:
        """False after a lost link or spent recoveries: only a new connection helps then."""
        return not isinstance(self.fault, (Fr3ConnectionLost, Fr3ReflexError))

    def set(self, fault: Fr3Error) -> None:
        if self.recoverable or not isinstance(fault, Fr3SafetyStop):  # a stop never hides a lost link
            self.fault = fault
        self.event.set()

    def clear(self) -> None:
        self.fault = None
        self.event.clear()

    def raise_if_set(self) -> None:
        if self.fault is not None:
            raise self.fault

    def record_reflex(self, err: BaseException) -> tuple[str, ...]:
        """Log the reflex ``err`` (libfranka's ``ControlException``, or our :class:`ResetStalled`) and
        count one automatic recovery; raise (and latch) :class:`Fr3ReflexError` when none is left.
        Returns libfranka's error names (``("unknown",)`` if the message names none)."""
        names = ("reset_stalled",) if isinstance(err, ResetStalled) else reflex_names(str(err)) or ("unknown",)
        recover = self.recoveries < self.max_recoveries
        self.reflexes.append(Reflex(names, str(err).splitlines()[0] if str(err) else type(err).__name__,
                                    self._clock(), recover))
        if not recover:
            spent = Fr3ReflexError(f"{self.robot} reflex {list(names)} after {self.recoveries} automatic recoveries "
                                   f"(max_reflex_recoveries={self.max_recoveries}); reflexes: "
                                   f"{[list(r.errors) for r in self.reflexes]}")
            self.set(spent)
            raise spent
        self.recoveries += 1
        log.warning("%s reflex %s aborted the motion; recovering (%d of %d)", self.robot, list(names),
                    self.recoveries, self.max_recoveries)
        return names


class Fr3Monitor:
    """Runs ``check()`` at ``hz`` under ``lock`` in a daemon thread until ``stop()`` or an
    unrecoverable fault; an :class:`Fr3Error` it raises is latched, anything else is logged and
    latched as a lost link (the backend must be reconnected)."""

    def __init__(self, check: Callable[[], None], lock: threading.RLock, latch: FaultLatch, hz: float) -> None:
        self._check, self._lock, self._latch, self._hz = check, lock, latch, hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._latch.robot} monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _run(self) -> None:
        rate = Rate(self._hz)
        while not self._stop.is_set() and self._latch.recoverable:
            try:
                with self._lock:
                    self._check()
            except Fr3Error as err:
                self._latch.set(err)
            except Exception as err:  # never die silently: the next call raises it
                log.exception("%s monitor failed", self._latch.robot)
                self._latch.set(Fr3ConnectionLost(f"the {self._latch.robot} monitor failed "
                                                  f"({type(err).__name__}: {err}); reconnect"))
            rate.sleep()
