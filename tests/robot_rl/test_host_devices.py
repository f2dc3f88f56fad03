"""robot_rl.host_devices: a JAX env's batch split over single-threaded CPU devices in one process."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from robot_rl.host_devices import DEVICE_COUNT_FLAG, ONE_CORE_FLAGS, host_device_flags

pytest.importorskip("jax")


def test_host_device_flags_replace_the_device_count_and_keep_other_flags():
    flags = host_device_flags(2, f"--xla_dump_to=/tmp/x {DEVICE_COUNT_FLAG}=8 --xla_cpu_multi_thread_eigen=true")
    assert flags.split() == ["--xla_dump_to=/tmp/x", "--xla_cpu_multi_thread_eigen=true", f"{DEVICE_COUNT_FLAG}=2",
                             ONE_CORE_FLAGS[1]]  # a flag the caller set stays as set
    assert host_device_flags(3).split() == [f"{DEVICE_COUNT_FLAG}=3", *ONE_CORE_FLAGS]
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="host devices"):
            host_device_flags(bad)


CHILD = textwrap.dedent("""
    import json, jax, numpy as np
    import robot_rl
    from robot_rl.host_devices import over_devices, use_host_devices
    use_host_devices(2)
    reset, step = robot_rl.make_vector("quad_hover", backend="jax", num_envs=64).functional

    def rollout(batch, key):
        def body(carry, _):
            batch, key = carry
            action = jax.random.uniform(jax.random.fold_in(key, 1), (64, 4), minval=-0.5, maxval=0.5)
            batch, key, out = step(batch, key, action)
            return (batch, key), out[0]
        return jax.lax.scan(body, (batch, key), None, length=5)[1]

    keys = jax.random.split(jax.random.key(7), 2)
    shared = np.asarray(over_devices(rollout)(*over_devices(reset)(keys)[:2]))
    alone = [np.asarray(jax.jit(rollout)(*reset(k)[:2])) for k in keys]
    error = None
    try:
        use_host_devices(3)
    except RuntimeError as err:
        error = str(err)
    print(json.dumps({"devices": jax.local_device_count(), "shape": shared.shape, "error": error,
                      "max_diff": max(float(np.abs(shared[i] - alone[i]).max()) for i in range(2)),
                      "shares_differ": bool(np.abs(shared[0] - shared[1]).max() > 0.01)}))
""")


def test_a_quad_rollout_split_over_two_devices_equals_each_share_flown_alone():
    """In a fresh process (XLA reads its flags when JAX starts): two CPU devices, each flying its share
    of sub-envs from its own key the same as one device flies that share; asking for another device
    count once JAX has started is refused with the way to do it."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2 and out["shape"] == [2, 5, 64, 18]
    assert out["max_diff"] < 1e-5 and out["shares_differ"]
    assert "before the process's first JAX computation" in out["error"] and "XLA_FLAGS=" in out["error"]
