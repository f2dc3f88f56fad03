"""The ``crazyflie`` backend of the ``quadrotor`` family (entry point ``crazyflie`` in pyproject.toml).

cflib is imported only when the backend connects, so loading this registration stays cheap.
"""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="crazyflie",
        family="quadrotor",
        entry_point="drivers.quad.crazyflie:make_backend",
        config="drivers.quad.crazyflie_config:CrazyflieConfig",
        description="a real Crazyflie 2.x through cflib (radio://, usb:// or udp:// URI): thrust + body rates "
                    "(or attitude) setpoints streamed at 125 Hz, state estimate logged at 100 Hz, host-side "
                    "dead-man, geofence, tilt guard and low-battery landing; needs a position deck or mocap",
    ),
)
