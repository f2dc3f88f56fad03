"""The recording as a robot: a backend that plays back the states, commands and camera frames of one
aligned run of a bag (:class:`ReplayBackend`), so a :class:`robot_rl.env.RobotEnv` over it computes
observations, executed actions, rewards and episode ends exactly as it does live (``robot-rl record``).

* ``read_state()`` is the recorded state at the current tick; ``render(camera)`` its camera frame.
* ``command()`` returns the *recorded* command of the current tick: what the robot really received
  (the family contract's "command returns what was sent"), whatever the env asked for.
* ``sync(period_s)`` advances one tick while playing. While a task resets (:meth:`hold`) the
  recording cannot be moved: commands are ignored, ``sync`` does not advance, and the task starts its
  episode from the recorded state (a car task's "straighten the wheels" sees the car as recorded).
* A task's read-only scene data (a simulator's track, say) comes from the backend the spec came
  from; its methods never do (a recording cannot be placed, so a task that must place the robot to
  reset fails with its own clear error).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

PERIOD_TOLERANCE = 1e-6


class ReplayBackend:
    """Plays back ticks ``0..N-1`` of one segment (module docstring).

    Args:
        source: the registered backend the spec (and read-only scene data) come from; never connected.
        states: per tick the family state (``CarState``...).
        commands: per tick the recorded family command.
        frames: camera name -> per tick ``uint8 (H, W, 3)`` frame at the spec's size.
        period_s: the tick period; ``sync`` must be called with it.
    """

    def __init__(self, source: Any, states: Sequence[Any], commands: Sequence[Any],
                 frames: dict[str, Sequence[np.ndarray]], period_s: float) -> None:
        if not len(states) == len(commands) or any(len(f) != len(states) for f in frames.values()):
            raise ValueError("ReplayBackend needs one state, one command and one frame per camera per tick")
        self._source, self._states, self._commands, self._frames = source, states, commands, frames
        self.family = source.family
        self.period_s = float(period_s)
        self.tick = 0
        self.playing = False

    # ------------------------------------------------------------------ the Backend contract
    @property
    def spec(self) -> Any:
        return self._source.spec

    @property
    def connected(self) -> bool:
        return True

    def connect(self) -> None:
        """Nothing to connect: the recording is on disk."""

    def close(self) -> None:
        """Nothing to close (the source backend was never connected)."""

    def __enter__(self) -> "ReplayBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_state(self) -> Any:
        return self._states[self.tick]

    def command(self, command: Any) -> Any:
        """While playing: the recorded command of this tick (what the robot received); while holding: ``command``."""
        return self._commands[self.tick] if self.playing else command

    def sync(self, period_s: float) -> None:
        if not self.playing:
            return
        if abs(period_s - self.period_s) > PERIOD_TOLERANCE:
            raise ValueError(f"the replay runs at {1 / self.period_s:g} Hz; sync({period_s}) asks for another rate")
        if self.tick + 1 >= len(self._states):
            raise IndexError(f"the recording has {len(self._states)} ticks; no tick after {self.tick}")
        self.tick += 1

    def stop(self) -> None:
        """The recording cannot be stopped; nothing to do."""

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        """An arm task's ``backend.reset(...)``: the recording cannot be moved; the recorded state."""
        return self.read_state()

    def render(self, camera: str, height: int | None = None, width: int | None = None) -> np.ndarray:
        if camera not in self._frames:
            raise ValueError(f"the recording has no frames of camera {camera!r}; it has {sorted(self._frames)}")
        frame = self._frames[camera][self.tick]
        if (height or frame.shape[0], width or frame.shape[1]) != frame.shape[:2]:
            raise ValueError(f"camera {camera!r} frames are stored at the spec's size {frame.shape[:2]}, "
                             f"not {height}x{width}")
        return frame

    # ------------------------------------------------------------------ replay control
    def hold(self, tick: int) -> None:
        """Stand at ``tick`` for a task's reset (commands ignored, ``sync`` does not advance)."""
        if not 0 <= tick < len(self._states):
            raise IndexError(f"tick {tick} is outside the recording's {len(self._states)} ticks")
        self.tick, self.playing = tick, False

    def play(self) -> None:
        """From now on ``command`` returns the recording and ``sync`` advances."""
        self.playing = True

    @property
    def ticks(self) -> int:
        return len(self._states)

    def __getattr__(self, name: str) -> Any:
        """Read-only scene data of the source backend (``track``); never its methods."""
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._source, name)
        if callable(value):
            raise AttributeError(f"{type(self).__name__} plays back a recording; it has no {name}()")
        return value
