"""``actor_node``: robot_rl's actor (``robot-rl actor``) acting through ROS 2 topics.

The node reads its parameters and runs the actor with a ROS backend of the task's family
(``ros_car``, ``ros_quad``, ``ros_arm``: :mod:`drivers.ros2.ros_backend`), so the policy -- and a
human through ``hil`` -- commands the robot node's topics, while transitions and weights travel to
and from the learner over robot_rl's ZeroMQ transport (``learner``, ``keys``), exactly as a
``robot-rl actor`` on any other backend. Agent settings must match the learner's: give them in
``extra_args`` (``"--sac.utd 4"``).

The parameters become the ``robot-rl actor`` command line (:func:`actor_argv`, pure and tested);
the ROS backend makes its own rclpy node in this process once the parameter node is gone, so it
takes the node name and namespace the launch file gives (one node at a time, never two of one name).
"""

from __future__ import annotations

import shlex
import sys
from typing import Any, Mapping

from drivers.ros2 import params
from drivers.ros2.params import ParameterError, ParamSpec

PROG = "actor_node"
ROS_BACKEND_MODULE = "drivers.ros2.ros_backend"

PARAMETERS = (
    ParamSpec("id", "ros_actor", "this actor's id: names its data on the learner, its spool and its key pair"),
    ParamSpec("task", "", "the robot_rl task (`robot-rl envs`); must match the learner's"),
    ParamSpec("backend", "", "the ROS backend of the task's family (ros_car, ros_quad, ros_arm); empty: the one "
                             "registered for the task's family"),
    ParamSpec("obs", "state", "observation type: state, or pixels (the cameras of the rig's [<family>.ros.cameras])"),
    ParamSpec("rig", "", "rig file whose [<family>.ros] table configures the ROS backend (spec, topic names); "
                         "empty or without that table: defaults"),
    ParamSpec("topic_prefix", "", "namespace of the robot node's topics (the robot node's topic_prefix)"),
    ParamSpec("learner", "tcp://127.0.0.1:5555", "the learner's ROUTER endpoint (ZeroMQ)"),
    ParamSpec("weights", "", "the learner's weights (PUB) endpoint; empty: the learner's host, port + 1"),
    ParamSpec("keys", "", "CURVE keys directory (learner.key and this actor's key_secret); empty: no keys"),
    ParamSpec("hil", "none", "a human can take over: none, simulated, or a teleop device"),
    ParamSpec("seed", 0, "seeds the policy's sampling and the first env reset"),
    ParamSpec("max_hz", 0.0, "most control steps per second (0: the env's own rate)"),
    ParamSpec("steps", 0, "stop after this many transitions of this actor id (0: run until shutdown)"),
    ParamSpec("out", "runs", "parent directory of the actor's spool"),
    ParamSpec("env_kwargs", "", "more KEY=VALUE task/backend/env options, space-separated (shell quoting)"),
    ParamSpec("extra_args", "", "more `robot-rl actor` flags, e.g. the agent settings the learner uses"),
)
PARAMETER_NAMES = params.names(PARAMETERS)
#: parameter -> `robot-rl actor` flag, for the plain ones (empty strings are left out: the flag's default)
FLAGS = {"id": "--id", "task": "--task", "obs": "--obs", "learner": "--learner", "weights": "--weights",
         "keys": "--keys", "hil": "--hil", "seed": "--seed", "max_hz": "--max-hz", "steps": "--steps", "out": "--out"}


def ros_backend_for(task: str) -> str:
    """The backend of ``task``'s family registered from :mod:`drivers.ros2.ros_backend`."""
    from robot_rl import registry

    entry = registry.lookup(task)
    found = sorted(name for (_, name), backend in registry.backends(entry.family).items()
                   if backend.entry_point.startswith(ROS_BACKEND_MODULE + ":"))
    if len(found) != 1:
        raise ParameterError(f"parameter 'backend': the {entry.family} family has {len(found)} ROS backends "
                             f"({found}); name one")
    return found[0]


def rig_has_table(rig: str, section: str) -> bool:
    """Whether the rig file has the table ``section`` (dotted); an unreadable file is an error naming it."""
    from robot_rl.rig import read_rig_table

    return bool(read_rig_table(rig, section, ParameterError, missing_ok=True)) if rig else False


def actor_argv(given: Mapping[str, Any]) -> list[str]:
    """The ``robot-rl actor`` arguments for the parameters the node was given."""
    values = params.resolve(PARAMETERS, given)
    if not values["task"]:
        raise ParameterError("parameter 'task' is empty: name the task the learner trains (task:=car_lap)")
    backend = values["backend"] or ros_backend_for(values["task"])
    argv = ["--backend", backend]
    for name, flag in FLAGS.items():
        if values[name] != "":
            argv += [flag, str(values[name])]
    prefix = params.topic_prefix("topic_prefix", values["topic_prefix"])
    options = [f"topics_prefix={prefix}"] if prefix else []
    if rig_has_table(values["rig"], f"{_family(values['task'])}.ros"):
        options.append(f"rig={values['rig']}")
    options += _split("env_kwargs", values["env_kwargs"])
    if options:
        argv += ["--env-kwargs", *options]
    return argv + _split("extra_args", values["extra_args"])


def _family(task: str) -> str:
    from robot_rl import registry

    return registry.lookup(task).family


def _split(name: str, text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as err:
        raise ParameterError(f"parameter {name!r}: {err} in {text!r}") from err


# ----------------------------------------------------------------------------- rclpy (thin)
def read_parameters(rclpy: Any, argv: list[str] | None) -> dict[str, Any]:
    """Init rclpy (robot_rl handles the signals), declare and read the parameters, drop the node."""
    from drivers.ros2.qos import import_ros

    no_handlers = import_ros("rclpy.signals").SignalHandlerOptions.NO
    rclpy.init(args=argv, signal_handler_options=no_handlers)
    node = rclpy.create_node(PROG, automatically_declare_parameters_from_overrides=True)
    try:
        return params.declare(node, PARAMETERS)
    finally:
        node.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script ``actor_node`` (``ros2 run robot_rl_ros actor_node --ros-args -p task:=car_lap``)."""
    from drivers.ros2.node_runtime import EXIT_USAGE, INPUT_ERRORS, error_line, import_rclpy

    rclpy = import_rclpy(PROG)
    if rclpy is None:
        return EXIT_USAGE
    try:
        command = actor_argv(read_parameters(rclpy, argv))
    except INPUT_ERRORS as err:
        print(error_line(PROG, err), file=sys.stderr)
        rclpy.try_shutdown()
        return EXIT_USAGE
    from robot_rl.cli import main as robot_rl_main

    print(f"{PROG}: robot-rl actor {shlex.join(command)}", flush=True)
    try:
        return robot_rl_main(["actor", *command])
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
