"""Drive a robot over the network: ``robot-rl serve-robot`` on the robot PC, the ``remote`` backend
on the actor's machine (see :mod:`robot_rl.remote.server` and :mod:`robot_rl.remote.client`).

Modules: :mod:`~robot_rl.remote.codec` (backend dataclasses on the wire),
:mod:`~robot_rl.remote.protocol` (the call/reply messages and errors), :mod:`~robot_rl.remote.server`,
:mod:`~robot_rl.remote.client`, :mod:`~robot_rl.remote.command` (the CLI subcommand),
(the ``[serve]``/``[remote]`` rig tables are read with :mod:`robot_rl.rig`),
:mod:`~robot_rl.remote.registration` (the ``remote`` backend of each family),
:mod:`~robot_rl.remote.latency` (round-trip measurement) and :mod:`~robot_rl.remote.testing`
(``serve-robot`` as a subprocess, for tests). Nothing here is imported by ``robot_rl`` itself
until used.
"""
