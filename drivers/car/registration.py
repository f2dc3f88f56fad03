"""The ``vesc`` backend of the ``car`` family (entry point ``vesc`` in pyproject.toml).

Kept apart from ``drivers/car/__init__.py`` so that importing any ``drivers.car`` module before
robot_rl cannot meet this package half-imported when robot_rl loads its plugins. pyserial is
imported only when the backend connects, so loading this registration stays cheap.
"""

from robot_rl.registry import BackendEntry

BACKENDS = (
    BackendEntry(
        name="vesc",
        family="car",
        entry_point="drivers.car.vesc:make_backend",
        config="drivers.car.config:VescConfig",
        description="a real RC car on a VESC over serial (pyserial): speed (ERPM) or throttle (duty/current) "
                    "drive, servo steering, 100 Hz keep-alive + telemetry, watchdog, battery cut-outs; "
                    "state only (no localization: position nan)",
    ),
)
