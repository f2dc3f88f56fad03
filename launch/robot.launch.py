"""One robot on ROS 2: the robot node (a backend on topics), the camera node and the actor.

The family launch files (arm.launch.py, car.launch.py, quad.launch.py) include this one with their
family's defaults; it can be launched on its own as well::

    ros2 launch robot_rl_ros robot.launch.py rig:=/etc/robot_rl/car.toml family:=car task:=car_lap \\
        learner:=tcp://192.168.1.10:5555

Every node parameter given here is declared by its node (PARAMETERS in drivers/ros2/*_node.py) and
every launch argument used is declared: tests/drivers/ros2/test_launch_files.py checks both without ROS.
String parameters go through ParameterValue(..., value_type=str), so a value is never re-read as YAML.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("rig", description="the rig file (TOML): [robot_node], the backend's own table, "
                                                 "[cameras.<name>], [<family>.ros] for the actor's ROS backend"),
        DeclareLaunchArgument("family", default_value="", description="arm, car or quadrotor; empty: the backend's"),
        DeclareLaunchArgument("backend", default_value="",
                              description="the robot node's backend (vesc, crazyflie, fr3, sim...); empty: the rig's "
                                          "[robot_node] backend"),
        DeclareLaunchArgument("task", default_value="",
                              description="the task the actor runs and the learner trains (a simulator builds its scene)"),
        DeclareLaunchArgument("topic_prefix", default_value="", description="namespace of the robot's topics and services"),
        DeclareLaunchArgument("state_rate_hz", default_value="50.0",
                              description="the robot node steps the backend and publishes its state at this rate [Hz]"),
        DeclareLaunchArgument("command_timeout_s", default_value="0.0",
                              description="no command for this long stops the robot [s]; 0: the backend's watchdog"),
        DeclareLaunchArgument("cameras", default_value="false",
                              description="start the camera node: the rig's [cameras.<name>] on "
                                          "<topic_prefix>/cameras/<name>/image_raw and .../camera_info"),
        DeclareLaunchArgument("image_transport", default_value="raw",
                              description="camera frames as raw sensor_msgs/Image or compressed (jpeg)"),
        DeclareLaunchArgument("render_cameras", default_value="",
                              description="comma-separated cameras of a simulator backend the robot node publishes"),
        DeclareLaunchArgument("actor", default_value="true", description="start the actor node"),
        DeclareLaunchArgument("actor_id", default_value="ros_actor", description="the actor's id on the learner"),
        DeclareLaunchArgument("obs", default_value="state",
                              description="the actor's observations: state, or pixels (cameras of [<family>.ros.cameras])"),
        DeclareLaunchArgument("learner", default_value="tcp://127.0.0.1:5555", description="the learner's ZeroMQ endpoint"),
        DeclareLaunchArgument("keys", default_value="", description="CURVE keys directory shared with the learner"),
        DeclareLaunchArgument("hil", default_value="none", description="human intervention: none, simulated or a device"),
        DeclareLaunchArgument("actor_args", default_value="",
                              description="more `robot-rl actor` flags, e.g. the learner's agent settings"),
    ]
    robot = Node(
        package="robot_rl_ros", executable="robot_node", name="robot", output="screen",
        parameters=[{
            "rig": ParameterValue(LaunchConfiguration("rig"), value_type=str),
            "backend": ParameterValue(LaunchConfiguration("backend"), value_type=str),
            "family": ParameterValue(LaunchConfiguration("family"), value_type=str),
            "task": ParameterValue(LaunchConfiguration("task"), value_type=str),
            "topic_prefix": ParameterValue(LaunchConfiguration("topic_prefix"), value_type=str),
            "state_rate_hz": ParameterValue(LaunchConfiguration("state_rate_hz"), value_type=float),
            "command_timeout_s": ParameterValue(LaunchConfiguration("command_timeout_s"), value_type=float),
            "cameras": ParameterValue(LaunchConfiguration("render_cameras"), value_type=str),
            "image_transport": ParameterValue(LaunchConfiguration("image_transport"), value_type=str),
        }])
    cameras = Node(
        package="robot_rl_ros", executable="camera_node", name="cameras", output="screen",
        condition=IfCondition(LaunchConfiguration("cameras")),
        parameters=[{
            "rig": ParameterValue(LaunchConfiguration("rig"), value_type=str),
            "topic_prefix": ParameterValue(LaunchConfiguration("topic_prefix"), value_type=str),
            "image_transport": ParameterValue(LaunchConfiguration("image_transport"), value_type=str),
        }])
    actor = Node(
        package="robot_rl_ros", executable="actor_node", name="actor", output="screen",
        condition=IfCondition(LaunchConfiguration("actor")),
        parameters=[{
            "id": ParameterValue(LaunchConfiguration("actor_id"), value_type=str),
            "task": ParameterValue(LaunchConfiguration("task"), value_type=str),
            "obs": ParameterValue(LaunchConfiguration("obs"), value_type=str),
            "rig": ParameterValue(LaunchConfiguration("rig"), value_type=str),
            "topic_prefix": ParameterValue(LaunchConfiguration("topic_prefix"), value_type=str),
            "learner": ParameterValue(LaunchConfiguration("learner"), value_type=str),
            "keys": ParameterValue(LaunchConfiguration("keys"), value_type=str),
            "hil": ParameterValue(LaunchConfiguration("hil"), value_type=str),
            "extra_args": ParameterValue(LaunchConfiguration("actor_args"), value_type=str),
        }])
    return LaunchDescription([*arguments, robot, cameras, actor])
