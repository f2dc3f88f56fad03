"""ROS 2 for robot_rl: message conversion, bag import, the robot/camera/actor nodes and RosBackends.

Everything that is not rclpy is pure Python over plain *message dicts* (field name -> value,
see :mod:`drivers.ros2.msg_dicts`) and is tested without ROS; rclpy is imported lazily, only by
the code that talks to a live ROS graph (``source /opt/ros/humble/setup.bash`` first).
"""
