"""Run one franka-sim server on a loopback address until SIGTERM (or SIGINT).

Executed by the franka-sim venv's python (``.venv-franka-sim``, see :mod:`drivers.arm.fr3_sim_venv`),
never imported by robot_rl: franka-sim pins numpy 1.26 and mujoco 3.2. Its CLI binds 0.0.0.0, so
the server is built here with an explicit host. ``FR3_MJCF`` must name a local MJCF (our
``sim/arm/assets/fr3.xml``); without it franka-sim tries to download a model.

    FR3_MJCF=sim/arm/assets/fr3.xml .venv-franka-sim/bin/python drivers/arm/fr3_sim_server.py \
        --host 127.0.0.1 --enforce-motion-limits
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=1337, help="FCI port (libfranka always uses 1337)")
    parser.add_argument("--enforce-motion-limits", action="store_true",
                        help="abort motions on joint/Cartesian limit violations, as the robot does")
    parser.add_argument("--enforce-comm-constraints", action="store_true",
                        help="abort a motion after 20 command cycles lost in a row (communication_constraints_violation)")
    parser.add_argument("--no-gripper", action="store_true", help="serve no Franka Hand on port 1338")
    args = parser.parse_args(argv)
    if not os.environ.get("FR3_MJCF"):
        print("fr3_sim_server: set FR3_MJCF to a local FR3 MJCF (sim/arm/assets/fr3.xml)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="franka-sim %(levelname)s %(name)s: %(message)s")
    from franka_sim.franka_sim_server import FrankaSimServer

    server = FrankaSimServer(host=args.host, port=args.port, enable_vis=False, enable_gripper=not args.no_gripper,
                             enforce_motion_limits=args.enforce_motion_limits,
                             enforce_comm_constraints=args.enforce_comm_constraints)
    # stop() is idempotent; it closes the sockets and ends the physics loop start() runs in.
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    try:
        server.start()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
