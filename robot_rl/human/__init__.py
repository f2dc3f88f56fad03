"""The human: teleop devices, the simulated human, interventions, recording and hand labelling.

- :mod:`~robot_rl.human.teleop`: device-independent teleop: :class:`TeleopEvent`, the
  :class:`TeleopDevice` Protocol, and how a driver's raw input becomes an action (``RawInput``,
  ``InputLatch``, ``AxisMap``, ``ButtonMap``, ``InterventionSwitch``, ``TeleopMapper``).
- :mod:`~robot_rl.human.simulated`: :class:`SimulatedHuman`, the task's scripted expert taking over
  when triggers fire (``--hil simulated``), and its :class:`SimulatedHumanConfig`.
- :mod:`~robot_rl.human.intervene`: :class:`InterveneWithTeleop`, the wrapper in which a human
  takes over the policy's actions.
- :mod:`~robot_rl.human.devices`: the one teleop-device registry (``simulated`` built in, the rest
  from package entry points), :func:`open_device`, :func:`with_human`,
  :func:`check_device_name` and :class:`DeviceUnavailable`.
- :mod:`~robot_rl.human.recording`: ``robot-rl record``'s loop, driven by the expert or a human
  (``record``, ``run_episode``, ``HumanDriver``, ``expert_policy``).
- :mod:`~robot_rl.human.view`: what the person sees while recording (``StatusLine``, ``LiveView``).
- :mod:`~robot_rl.human.labels`: hand labelling of frames for reward classifiers (``HandLabeller``).

Importing this package is cheap (numpy and gymnasium): OpenCV, device libraries and driver
packages are imported by the modules and calls that use them. Nothing here imports the trainer,
the reward classifiers or the distributed code; they import from here.
"""

from robot_rl.human.devices import (
    DeviceUnavailable,
    check_device_name,
    device_names,
    open_device,
    with_human,
)
from robot_rl.human.intervene import InterveneWithTeleop
from robot_rl.human.simulated import SimulatedHuman, SimulatedHumanConfig
from robot_rl.human.teleop import TeleopDevice, TeleopEvent

__all__ = [
    "DeviceUnavailable", "InterveneWithTeleop", "SimulatedHuman", "SimulatedHumanConfig", "TeleopDevice",
    "TeleopEvent", "check_device_name", "device_names", "open_device", "with_human",
]
