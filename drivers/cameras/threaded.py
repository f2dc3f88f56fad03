"""Capture-thread machinery shared by every camera driver.

A camera driver subclasses :class:`ThreadedCamera` and implements three hooks:

* ``_open()``: open the device (called by ``connect()``, before the thread starts);
* ``_grab() -> Frame | None``: block until the next frame (``None`` after a short poll timeout,
  so the thread can notice ``close()``); it must return within about a second;
* ``_release()``: close the device (called by ``close()``, after the thread has stopped).

The base class owns the thread: it starts in ``connect()`` (never in ``__init__``), keeps only the
newest frame in a :class:`LatestFrame`, counts frames that were replaced before anyone read them,
stops on ``close()`` with a join deadline, and hands an exception raised by ``_grab`` to the next
``read()`` as a :class:`~robot_rl.camera.CameraError` instead of dying silently.
"""

from __future__ import annotations

import threading
import time

from robot_rl.camera import CameraError, CameraTimeout, CaptureSpec, Frame


class LatestFrame:
    """The newest frame, guarded by a condition variable; older unread frames are dropped.

    ``put`` is called by the capture thread, ``get`` by readers. Ages are measured against
    ``Frame.timestamp_s`` with ``time.monotonic()``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._unread = False
        self._error: BaseException | None = None
        self._closed = False
        self.captured = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._unread:
                self.dropped += 1
            self._frame, self._unread = frame, True
            self.captured += 1
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Record the capture thread's exception; waiting readers wake up and raise it."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout_s: float, max_age_s: float) -> Frame | BaseException | None:
        """The newest frame no older than ``max_age_s``, waiting up to ``timeout_s`` seconds.

        Returns the capture error if one happened, ``None`` on timeout or when closed.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._error is not None:
                    return self._error
                now = time.monotonic()
                if self._frame is not None and now - self._frame.timestamp_s <= max_age_s:
                    self._unread = False
                    return self._frame
                if self._closed or now >= deadline:
                    return None
                self._cond.wait(deadline - now)

    def age_s(self) -> float | None:
        """Seconds since the newest frame arrived (None: no frame yet)."""
        with self._cond:
            return None if self._frame is None else time.monotonic() - self._frame.timestamp_s


class ThreadedCamera:
    """Base class of camera drivers: one capture thread per connected camera.

    Args:
        spec: what the camera delivers (name, size, fps, depth).
        max_age_s: ``read`` never returns a frame older than this (seconds since arrival).
        join_timeout_s: how long ``close`` waits for the capture thread to leave ``_grab``.
    """

    def __init__(self, spec: CaptureSpec, max_age_s: float = 0.25, join_timeout_s: float = 2.0) -> None:
        if not max_age_s > 0:
            raise ValueError(f"camera {spec.name!r}: max_age_s must be positive, got {max_age_s}")
        self._spec = spec
        self.max_age_s = float(max_age_s)
        self.join_timeout_s = float(join_timeout_s)
        self._buffer: LatestFrame | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected_at_s = 0.0

    # ------------------------------------------------------------------ hooks for drivers
    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> Frame | None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    @property
    def source(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ the Camera contract
    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def spec(self) -> CaptureSpec:
        return self._spec

    @property
    def connected(self) -> bool:
        return self._thread is not None

    @property
    def dropped_frames(self) -> int:
        """Frames replaced by a newer one before any ``read`` returned them."""
        return 0 if self._buffer is None else self._buffer.dropped

    @property
    def captured_frames(self) -> int:
        return 0 if self._buffer is None else self._buffer.captured

    def connect(self) -> None:
        """Open the device and start the capture thread (no-op when already connected)."""
        if self._thread is not None:
            return
        self._open()
        self._buffer, self._stop = LatestFrame(), threading.Event()
        self._connected_at_s = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the capture thread (waiting up to ``join_timeout_s``) and release the device.

        Raises:
            CameraError: the thread is stuck in ``_grab``; the device is then left open, because
                releasing it under a running read is unsafe in most device libraries.
        """
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(self.join_timeout_s)
        if thread.is_alive():
            raise CameraError(
                f"camera {self.name!r} ({self.source}): capture thread did not stop within "
                f"{self.join_timeout_s:.1f} s (blocked reading the device); the device was left open"
            )
        self._thread = None
        if self._buffer is not None:
            self._buffer.close()
        self._release()

    def read(self, timeout_s: float = 1.0) -> Frame:
        """The newest frame no older than ``max_age_s``, waiting up to ``timeout_s`` seconds.

        Raises:
            CameraTimeout: no fresh frame in time (message: camera, source, last frame's age).
            CameraError: not connected, or the capture thread failed (its exception is the cause).
        """
        if self._thread is None or self._buffer is None:
            raise CameraError(f"camera {self.name!r} ({self.source}) is not connected; call connect() first")
        got = self._buffer.get(timeout_s, self.max_age_s)
        if isinstance(got, Frame):
            return got
        if isinstance(got, BaseException):
            raise CameraError(f"camera {self.name!r} ({self.source}): capture failed: {got!r}") from got
        raise self._timeout(timeout_s)

    def _timeout(self, timeout_s: float) -> CameraTimeout:
        age = self._buffer.age_s() if self._buffer is not None else None
        if age is None:
            last = f"no frame yet, {time.monotonic() - self._connected_at_s:.2f} s after connect"
        else:
            last = f"the last frame is {age:.3f} s old"
        message = (
            f"camera {self.name!r} ({self.source}): no frame newer than {self.max_age_s:.3f} s "
            f"within {timeout_s:.3f} s; {last}"
        )
        return CameraTimeout(message, self.name, self.source, age)

    def __enter__(self) -> "ThreadedCamera":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the capture thread
    def _run(self) -> None:
        buffer, stop = self._buffer, self._stop
        assert buffer is not None
        while not stop.is_set():
            try:
                frame = self._grab()
            except Exception as err:  # handed to the next read(), never swallowed
                buffer.fail(err)
                return
            if frame is not None:
                buffer.put(frame)
