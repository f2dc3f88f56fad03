"""What every robot_rl ROS 2 node's ``main()`` does around its own setup: rclpy (imported lazily),
one node that takes the parameters it is given, spinning until Ctrl-C or shutdown, cleanup always.

Without rclpy a node prints one line saying what to install or source and exits with 2, as a bad
parameter does (``robot_node: error: ...``); a failure while running exits with 1.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from drivers.ros2.params import ParameterError
from drivers.ros2.qos import import_ros

EXIT_USAGE = 2
EXIT_FAILED = 1
#: Bad input: one clear line, no traceback (as robot-rl's CLI does).
INPUT_ERRORS = (ValueError, NotImplementedError, FileNotFoundError, ParameterError)

Setup = Callable[[Any], "Callable[[], None] | None"]


def error_line(prog: str, err: BaseException) -> str:
    """``prog: error: message`` on one line."""
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{prog}: error: {text}"


def import_rclpy(prog: str) -> Any:
    """rclpy, or None after printing one line naming what to install/source."""
    try:
        return import_ros("rclpy")
    except ImportError as err:
        print(error_line(prog, err), file=sys.stderr)
        return None


def run_node(prog: str, setup: Setup, argv: Sequence[str] | None = None, spin: bool = True) -> int:
    """Init rclpy with ``argv`` (ROS arguments from ``ros2 run``/``ros2 launch``), make the node
    ``prog`` (declaring every parameter it was given), run ``setup(node)`` -- which returns a cleanup
    callable or None -- then spin (unless ``spin`` is False) until Ctrl-C or shutdown."""
    rclpy = import_rclpy(prog)
    if rclpy is None:
        return EXIT_USAGE
    rclpy.init(args=list(argv) if argv is not None else None)
    node = rclpy.create_node(prog, automatically_declare_parameters_from_overrides=True)
    cleanup = None
    shutdown = getattr(import_ros("rclpy.executors"), "ExternalShutdownException", KeyboardInterrupt)
    try:
        cleanup = setup(node)
        if spin:
            rclpy.spin(node)
        return 0
    except (KeyboardInterrupt, shutdown):
        return 0
    except INPUT_ERRORS as err:
        print(error_line(prog, err), file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # the robot is stopped and closed by the cleanup below
        print(error_line(prog, RuntimeError(f"{type(err).__name__}: {err}")), file=sys.stderr)
        return EXIT_FAILED
    finally:
        try:
            if cleanup is not None:
                cleanup()
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
