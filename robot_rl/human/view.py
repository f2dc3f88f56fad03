"""What a person sees while recording with a teleop device: the status line and the live camera view.

A view that cannot open fails with :class:`~robot_rl.human.devices.DeviceUnavailable`, as a device does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import sys
import time
from typing import Mapping, TextIO

import cv2
import numpy as np

from robot_rl.human.devices import DeviceUnavailable

log = logging.getLogger(__name__)


class StatusLine:
    """A live one-line status: rewritten in place (carriage return) when ``stream`` is a terminal,
    at most every ``tty_interval_s``; otherwise a plain line at most every ``plain_interval_s``."""

    def __init__(self, stream: TextIO | None = None, tty_interval_s: float = 0.05, plain_interval_s: float = 5.0) -> None:
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._interval_s = tty_interval_s if self.tty else plain_interval_s
        self._last_s = -math.inf
        self._width = 0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_s < self._interval_s:
            return
        self._last_s = now
        if self.tty:
            padded = text.ljust(self._width)  # covers the longer line before
            self.stream.write("\r" + padded)
            self._width = len(padded)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Blank the live line (before printing a normal line)."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        self._width = 0


def gui_problem(build_info: str | None = None, environ: Mapping[str, str] | None = None,
                platform: str = sys.platform) -> str | None:
    """Why an OpenCV window cannot open here, or None. Reads OpenCV's build information (its
    ``GUI:`` line) and, on Linux, ``DISPLAY``/``WAYLAND_DISPLAY``; opens nothing."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    environ = os.environ if environ is None else environ
    problems = []
    gui = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    if gui is not None and gui.group(1).upper() == "NONE":
        problems.append(
            "this OpenCV has no GUI support (opencv-python-headless, which robot_rl installs, cannot open "
            "windows); install the GUI build in this environment: "
            "pip uninstall -y opencv-python-headless && pip install opencv-python"
        )
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        problems.append(
            "there is no display (DISPLAY is not set: a headless machine, or ssh without -X); run it in a "
            "desktop session or over `ssh -X`"
        )
    return "; and ".join(problems) or None


class LiveView:
    """A live camera window (``cv2.imshow``) showing ``env.render()`` after every step.

    ``open`` fails at once with a :class:`DeviceUnavailable` saying why and what to install (no GUI
    in this OpenCV, no display). Later window errors, or the user closing the window, turn the
    view off with a warning; recording goes on.
    """

    def __init__(self, title: str = "robot-rl record") -> None:
        self.title = title
        self._open = self._shown = False

    def open(self) -> None:
        problem = gui_problem()
        if problem is not None:
            raise DeviceUnavailable(f"--view cannot open a window: {problem}. Or record without --view "
                                    "(--video-episodes writes an MP4)")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise DeviceUnavailable(f"--view cannot open a window: OpenCV says {' '.join(str(err).split())}") from err
        self._open = True

    def show(self, frame: np.ndarray | None, caption: str) -> None:
        if not self._open or frame is None:
            return
        try:
            if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                log.warning("the --view window was closed; recording continues without it")
                self.close()
                return
            image = cv2.cvtColor(np.asarray(frame, dtype=np.uint8), cv2.COLOR_RGB2BGR)
            cv2.putText(image, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.imshow(self.title, image)
            cv2.waitKey(1)
            self._shown = True
        except cv2.error as err:
            log.warning("the --view window failed (%s); recording continues without it", err)
            self._open = False

    def close(self) -> None:
        if self._open:
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
        self._open = False

    def __enter__(self) -> LiveView:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- the recording loop
