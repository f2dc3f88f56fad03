"""Round-trip latency to a running ``robot-rl serve-robot``: ``ping``, ``read_state`` and
``command`` (an arm target at the current pose: the arm holds still), N calls each::

    python -m robot_rl.remote.latency --server tcp://192.168.1.20:5570 --keys robot_keys --calls 500

Prints the median, 90th and 99th percentile of each in milliseconds. Takes the robot for the
duration (one client at a time) and gives it back.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tyro

from robot_rl.remote.client import RemoteBackend, RemoteConfig


@dataclasses.dataclass
class Latency:
    server: str = "tcp://127.0.0.1:5570"
    """The serve-robot endpoint."""
    keys: str | None = None
    """Keys directory (learner.key and actor.key_secret from `robot-rl keys`)."""
    calls: int = 500
    """Calls per operation."""


def percentiles_ms(seconds: list[float]) -> str:
    p50, p90, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 90, 99])
    return f"median {p50:.3f} ms, p90 {p90:.3f} ms, p99 {p99:.3f} ms"


def measure(arm: RemoteBackend, calls: int) -> dict[str, list[float]]:
    """Seconds per round trip of each operation (the arm commanded to hold its current pose)."""
    from robot_rl.backends.arm import ArmTarget

    state = arm.read_state()
    hold = ArmTarget(state.tcp_pos_m, state.tcp_quat_wxyz, state.gripper_width_m)
    operations = {"ping": arm.ping, "read_state": arm.read_state, "command": lambda: arm.command(hold)}
    out = {}
    for name, operation in operations.items():
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            operation()
            times.append(time.perf_counter() - start)
        out[name] = times
    return out


def main() -> None:
    args = tyro.cli(Latency)
    with RemoteBackend(RemoteConfig(server=args.server, keys=args.keys), "arm") as arm:
        for name, times in measure(arm, args.calls).items():
            print(f"{name:10s} {percentiles_ms(times)} over {len(times)} calls")


if __name__ == "__main__":
    main()
