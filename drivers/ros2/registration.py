"""The ROS-driven backends ``ros_car``, ``ros_quad`` and ``ros_arm`` (entry point ``ros`` in pyproject.toml).

Kept apart from :mod:`drivers.ros2.ros_backend` so that loading the registry imports nothing of ROS:
rclpy is imported only when a backend connects without a given transport.
"""

from robot_rl.registry import BackendEntry

_CONFIG = "drivers.ros2.ros_backend_config:RosBackendConfig"
BACKENDS = (
    BackendEntry(name="ros_car", family="car", entry_point="drivers.ros2.ros_backend:make_car", config=_CONFIG,
                 description="a car driven by a ROS 2 stack (F1TENTH VESC driver, our robot node): odom + "
                             "ackermann drive state in, AckermannDriveStamped (or Twist) speed commands out; "
                             "needs rclpy (source /opt/ros/<distro>/setup.bash)"),
    BackendEntry(name="ros_quad", family="quadrotor", entry_point="drivers.ros2.ros_backend:make_quad",
                 config=_CONFIG,
                 description="a quadrotor driven by a ROS 2 stack (Crazyswarm2, our robot node): odom in, "
                             "velocity commands (Twist) out, landing through the robot node's stop topic; "
                             "needs rclpy"),
    BackendEntry(name="ros_arm", family="arm", entry_point="drivers.ros2.ros_backend:make_arm", config=_CONFIG,
                 description="an arm driven by a ROS 2 stack (ros2_control, franka_ros2, our robot node): joint "
                             "states + TCP pose in, TCP pose target and gripper width out; needs rclpy and the "
                             "arm's spec"),
)
