"""What each family launch file (launch/arm.launch.py, car.launch.py, quad.launch.py) does: include
launch/robot.launch.py with the family's defaults. The ``launch`` package (ROS 2) is imported lazily."""

from __future__ import annotations

import os

SHARED_LAUNCH_FILE = "robot.launch.py"


def check_defaults(defaults: dict[str, str]) -> dict[str, str]:
    """``defaults`` if every name is an identifier and every value a string (launch arguments are text)."""
    bad = {name: value for name, value in defaults.items() if not name.isidentifier() or not isinstance(value, str)}
    if bad:
        raise ValueError(f"launch argument defaults must be text under identifier names, got {bad}")
    return defaults


def family_launch_description(launch_file: str, **defaults: str):
    """Declare each of ``defaults`` as a launch argument (the command line still wins) and include
    robot.launch.py from ``launch_file``'s folder, forwarding them."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration

    check_defaults(defaults)
    shared = os.path.join(os.path.dirname(os.path.realpath(launch_file)), SHARED_LAUNCH_FILE)
    arguments = [DeclareLaunchArgument(name, default_value=value) for name, value in defaults.items()]
    forwarded = {name: LaunchConfiguration(name) for name in defaults}
    return LaunchDescription([*arguments, IncludeLaunchDescription(PythonLaunchDescriptionSource(shared),
                                                                   launch_arguments=forwarded.items())])
