"""Actors and a learner as separate processes over ZeroMQ (``robot-rl learner|actor|launch``).

* :mod:`~robot_rl.distributed.learner` -- stores, trains, publishes weights;
  :mod:`~robot_rl.distributed.reception` its side of the actors' socket (replies, refusals);
  :mod:`~robot_rl.distributed.bounds` the values it takes; :mod:`~robot_rl.distributed.identity`
  which CURVE key may speak as which actor id; :mod:`~robot_rl.distributed.writes` its checkpoint
  and log writes (a full disk costs a log line).
* :mod:`~robot_rl.distributed.actor` -- the control loop; :mod:`~robot_rl.distributed.link` its
  network thread; :mod:`~robot_rl.distributed.spool` its on-disk outbox.
* :mod:`~robot_rl.distributed.store` -- the learner's crash-safe chunk and episode store
  (:mod:`~robot_rl.distributed.chunk_files` its files).
* :mod:`~robot_rl.distributed.launch` -- one learner and N sim actors as subprocesses.
* :mod:`~robot_rl.distributed.commands` -- the typed CLI configs.
"""
