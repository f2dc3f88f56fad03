"""Quadrotor controllers shared by the JAX sim, the MuJoCo sim and the real drone.

Every function here is an array function over ``xp`` (``numpy`` or ``jax.numpy``): features on the
last axis, any leading batch shape, no in-place writes, ``xp.where`` instead of ``if`` on values
(the pattern of ``tasks/puck/reach.py``). One copy runs under numpy on a robot and under
``jax.jit``/``vmap`` in the batched simulator.

* :mod:`drivers.quad.rotations`: quaternions (``w, x, y, z``, body FLU -> world ENU) and rotations.
* :mod:`drivers.quad.mixer`: the X-frame motor geometry, motor thrusts <-> collective thrust and
  body torques, and a mixer that handles saturation (roll/pitch first, then yaw).
* :mod:`drivers.quad.control`: the cascade, one function per command level of
  :mod:`robot_rl.backends.quadrotor`: position -> velocity -> attitude (thrust, roll, pitch, yaw
  rate) -> thrust + body rates -> motor thrusts (body-rate PID + mixer); :class:`QuadController`
  binds a spec's numbers and the gains once.

They are the baseline flight controller, the safe fallback (hover in place) and the way higher
command levels are flown on a vehicle that only takes motor thrusts.

The real drone: :mod:`drivers.quad.crazyflie` (a Crazyflie through cflib), registered as the
``crazyflie`` backend of the ``quadrotor`` family by :mod:`drivers.quad.registration` (entry point in
pyproject.toml). This package imports nothing: importing a driver module before ``robot_rl`` (whose
import loads the registrations) must not meet a half-initialized ``drivers.quad``.
"""
