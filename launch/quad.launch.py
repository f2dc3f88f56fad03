"""A quadrotor: the robot node (the rig's quadrotor backend, e.g. a Crazyflie) and an actor on quad_hover.

    ros2 launch robot_rl_ros quad.launch.py rig:=/etc/robot_rl/quad.toml learner:=tcp://192.168.1.10:5555

The actor flies through ros_quad (geometry_msgs/msg/Twist velocity commands on quad/cmd_vel).

It is robot.launch.py with this family's defaults; every argument of robot.launch.py can be given
(`ros2 launch robot_rl_ros quad.launch.py --show-args`).
"""

from drivers.ros2.launch_family import family_launch_description


def generate_launch_description():
    return family_launch_description(__file__, family="quadrotor", task="quad_hover", topic_prefix="quad",
                                     cameras="false")
