"""The Franka Hand through libfranka 0.9's ``Gripper`` (bundled with panda-python), as a
:class:`~robot_rl.backends.gripper.Gripper` component.

libfranka's ``Gripper.move`` blocks until the fingers stop (up to a second or more), and an arm's
control period must not wait for it, so moves run in one worker thread: ``command_width`` hands the
newest width to the worker and returns at once (a width asked for while a move runs replaces any
width still waiting: the fingers always head for the newest one). ``stop()`` drops the waiting
width and calls libfranka's ``stop``, which ends a running move.

A move that ends short of its width (an object between the fingers) is normal when grasping with
``move``: it is counted in :attr:`PandaPyHand.short_moves` and logged, not raised. Any other
failure of the worker (the gripper stopped answering) is raised by the next call.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from drivers.arm.fr3_motions import call_with_deadline

log = logging.getLogger(__name__)
DEADBAND_M = 0.002  #: a width this close to the last one sent is not sent again
#: libfranka's gripper reports a move that did not finish as ``libfranka gripper: Command aborted!``
#: / ``... Command failed!``; a network failure has another message (``libfranka: ...``).
COMMAND_STATUS = "libfranka gripper: Command"


class PandaPyHand:
    """One Franka Hand. ``gripper_factory(address)`` builds the library's gripper
    (``panda_py.libfranka.Gripper``); nothing happens before ``connect()``."""

    def __init__(self, host: str, gripper_factory: Callable[[str], Any], max_width_m: float = 0.08,
                 speed_m_s: float = 0.1, timeout_s: float = 5.0) -> None:
        self.host, self._factory = host, gripper_factory
        self._max_width_m, self.speed_m_s, self.timeout_s = float(max_width_m), float(speed_m_s), float(timeout_s)
        self._gripper: Any = None
        self._wake = threading.Condition()
        self._pending_m: float | None = None
        self._sent_m: float | None = None
        self._error: BaseException | None = None
        self._worker: threading.Thread | None = None
        self._closing = self._moving = False
        self.short_moves = 0  #: moves that ended short of their width (e.g. on an object)

    @property
    def max_width_m(self) -> float:
        return self._max_width_m

    @property
    def connected(self) -> bool:
        return self._gripper is not None

    def connect(self) -> None:
        if self._gripper is not None:
            return
        self._gripper = call_with_deadline(lambda: self._factory(self.host), self.timeout_s,
                                           f"connecting to the Franka Hand at {self.host}")
        self._closing, self._error, self._pending_m, self._sent_m = False, None, None, None
        self._worker = threading.Thread(target=self._run, name="franka hand", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop the fingers and the worker, drop the gripper (safe twice, or after a failed connect)."""
        with self._wake:
            self._closing, self._pending_m = True, None
            self._wake.notify_all()
        if self._gripper is not None:
            try:
                self._gripper.stop()
            except RuntimeError as err:  # closing anyway: a dead link must not keep the hand open
                log.warning("Franka Hand at %s: stop on close failed: %s", self.host, err)
        if self._worker is not None:
            self._worker.join(self.timeout_s)
            self._worker = None
        self._gripper = None

    def read_width(self) -> float:
        """The measured finger distance [m]."""
        self._check()
        return float(self._gripper.read_once().width)

    def command_width(self, width_m: float) -> float:
        """Hand ``width_m`` (clipped to ``[0, max_width_m]``) to the worker; return it."""
        self._check()
        width = min(max(float(width_m), 0.0), self._max_width_m)
        with self._wake:
            if self._sent_m is None or abs(width - self._sent_m) >= DEADBAND_M:
                self._pending_m = self._sent_m = width
                self._wake.notify_all()
        return width

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no move runs or waits (e.g. the hand opened before a reset); False on timeout."""
        with self._wake:
            return self._wake.wait_for(lambda: not (self._moving or self._pending_m is not None) or self._closing,
                                       timeout_s)

    def stop(self) -> None:
        """Stop the fingers where they are (an object held stays held)."""
        self._check()
        with self._wake:
            self._pending_m = None
        self._gripper.stop()
        self._sent_m = None

    def _check(self) -> None:
        if self._gripper is None:
            raise RuntimeError("the Franka Hand is not connected: call connect() first")
        if self._error is not None:
            raise RuntimeError(f"the Franka Hand at {self.host} failed: {self._error}") from self._error

    def _run(self) -> None:
        while True:
            with self._wake:
                self._moving = False
                self._wake.notify_all()
                self._wake.wait_for(lambda: self._pending_m is not None or self._closing)
                if self._closing:
                    return
                width, self._pending_m, self._moving = self._pending_m, None, True
            try:
                reached = self._gripper.move(width, self.speed_m_s)
            except RuntimeError as err:
                if COMMAND_STATUS not in str(err):  # not "Command aborted!" (stop()) / "Command failed!" (blocked)
                    self._error = err
                    with self._wake:
                        self._moving = False
                        self._wake.notify_all()
                    return
                reached = False
            if not reached:
                self.short_moves += 1
                log.info("Franka Hand: move to %.3f m ended short (object between the fingers, or stopped)", width)
