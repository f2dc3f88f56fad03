"""Actors and a learner as separate processes over ZeroMQ (``robot-rl learner|actor|launch``).

* :mod:`~robot_rl.distributed.learner` -- stores, trains, publishes weights.
* :mod:`~robot_rl.distributed.actor` -- the control loop; :mod:`~robot_rl.distributed.link` its
  network thread; :mod:`~robot_rl.distributed.spool` its on-disk outbox.
* :mod:`~robot_rl.distributed.store` -- the learner's crash-safe chunk and episode store.
* :mod:`~robot_rl.distributed.launch` -- one learner and N sim actors as subprocesses.
* :mod:`~robot_rl.distributed.commands` -- the typed CLI configs.
"""
