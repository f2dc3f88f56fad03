"""The colcon (ament_python) package robot_rl_ros: robot_rl's ROS 2 nodes and launch files.

It holds no Python package of its own: the nodes are robot_rl's drivers/ros2/*_node.py, so robot_rl
must be pip-installed into the Python ROS uses (``python3 -m pip install -e /path/to/robot_rl``
after ``source /opt/ros/<distro>/setup.bash``). This package installs the console scripts
``ros2 run``/``ros2 launch`` start (into lib/robot_rl_ros, see setup.cfg), the launch files of the
repository's launch/ folder (into share/robot_rl_ros/launch), package.xml and the ament index marker.
"""

import glob
import os

from setuptools import setup

PACKAGE = "robot_rl_ros"
HERE = os.path.dirname(os.path.realpath(__file__))  # through a symlink in a colcon workspace
# The launch files live one folder up (launch/*.launch.py); paths relative to this file, as colcon runs it here.
LAUNCH_FILES = sorted(os.path.relpath(path, HERE) for path in glob.glob(os.path.join(HERE, "..", "*.launch.py")))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", LAUNCH_FILES),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_rl maintainers",
    maintainer_email="robot-rl@example.org",
    description="robot_rl on ROS 2: robot, camera and actor nodes, launch files for arms, cars and quadrotors",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "robot_node = drivers.ros2.robot_node:main",
            "camera_node = drivers.ros2.camera_node:main",
            "actor_node = drivers.ros2.actor_node:main",
        ],
    },
)
