"""An RC car: the robot node (the rig's car backend, e.g. VESC), cameras if asked, and an actor on car_lap.

    ros2 launch robot_rl_ros car.launch.py rig:=/etc/robot_rl/car.toml learner:=tcp://192.168.1.10:5555

The actor drives through ros_car (ackermann_msgs/msg/AckermannDriveStamped on car/cmd/ackermann).

It is robot.launch.py with this family's defaults; every argument of robot.launch.py can be given
(`ros2 launch robot_rl_ros car.launch.py --show-args`).
"""

from drivers.ros2.launch_family import family_launch_description


def generate_launch_description():
    return family_launch_description(__file__, family="car", task="car_lap", topic_prefix="car",
                                     cameras="false")
