"""An arm: the robot node (the rig's arm backend, e.g. the FR3), the rig's cameras and an actor on pick_cube.

    ros2 launch robot_rl_ros arm.launch.py rig:=/etc/robot_rl/arm.toml learner:=tcp://192.168.1.10:5555

The actor commands through ros_arm (TCP targets on arm/cmd/tcp_target, the gripper on arm/cmd/gripper);
its spec comes from the rig's [arm.ros.spec] table.

It is robot.launch.py with this family's defaults; every argument of robot.launch.py can be given
(`ros2 launch robot_rl_ros arm.launch.py --show-args`).
"""

from drivers.ros2.launch_family import family_launch_description


def generate_launch_description():
    return family_launch_description(__file__, family="arm", task="pick_cube", topic_prefix="arm",
                                     cameras="true")
