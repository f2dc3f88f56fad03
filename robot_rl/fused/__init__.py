"""Fused off-policy training in JAX: env steps and TD3 updates under one ``jax.jit`` (see
:mod:`robot_rl.fused.loop`), the actor converted to the torch agents' actor
(:mod:`robot_rl.fused.convert`). jax is imported by the submodules only."""
