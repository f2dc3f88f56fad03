"""MuJoCo's C functions by address, so a compiled loop runs whole control steps of the sim arm
(:func:`drivers.arm.impedance_kernel.run_native_ticks`) without returning to Python per tick.

The addresses come from the very ``libmujoco`` the Python bindings loaded (checked by its version
string), the model and data pointers from the bindings' ``_address``. Anything missing (another
MuJoCo build layout, bindings without ``_address``) gives ``None`` and a reason, and the arm runs
its ticks from Python instead.

One difference from calling MuJoCo through the bindings: a fatal MuJoCo error (``mju_error``, e.g.
its arena running out of memory) inside the native loop is not turned into a Python exception;
it ends the process. Instabilities are warnings, not errors, and behave as before.
"""

from __future__ import annotations

import ctypes
import functools
import pathlib

import mujoco
import numpy as np


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | str:
    """The bindings' libmujoco (or why it cannot be used)."""
    folder = pathlib.Path(mujoco.__file__).parent
    candidates = sorted(folder.glob("libmujoco.so*")) + sorted(folder.glob("libmujoco*.dylib")) + sorted(folder.glob("mujoco.dll"))
    if not candidates:
        return f"no libmujoco beside the bindings in {folder}"
    lib = ctypes.CDLL(str(candidates[0]))
    lib.mj_versionString.restype = ctypes.c_char_p
    found = lib.mj_versionString().decode()
    if found != mujoco.mj_versionString():
        return f"{candidates[0].name} is MuJoCo {found}, the bindings are {mujoco.mj_versionString()}"
    return lib


def native_ticks_unavailable(model: mujoco.MjModel, data: mujoco.MjData) -> str | None:
    """Why :func:`native_tick_args` cannot be used here, or ``None`` when it can."""
    lib = _library()
    if isinstance(lib, str):
        return lib
    if not (hasattr(model, "_address") and hasattr(data, "_address")):
        return f"mujoco {mujoco.__version__} bindings expose no _address of MjModel/MjData"
    return None


def native_tick_args(model: mujoco.MjModel, data: mujoco.MjData, jac: np.ndarray, site: int) -> tuple[int, ...]:
    """``run_native_ticks``' ``native`` tuple: (mj_step1, mj_jacSite, mj_step2, model, data,
    jacp, jacr, site). ``jac`` is the (6, nv) C-contiguous buffer the Jacobian rows (linear, then
    angular) are written into; the caller keeps model, data and ``jac`` alive while it is used."""
    reason = native_ticks_unavailable(model, data)
    if reason:
        raise RuntimeError(f"native MuJoCo ticks unavailable: {reason}")
    if jac.shape != (6, model.nv) or jac.dtype != np.float64 or not jac.flags.c_contiguous:
        raise ValueError(f"jac must be a C-contiguous float64 (6, {model.nv}) array, got {jac.dtype} {jac.shape}")
    lib = _library()
    address = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in ("mj_step1", "mj_jacSite", "mj_step2")]
    jac_lin = jac.ctypes.data
    return (*address, model._address, data._address, jac_lin, jac_lin + 3 * model.nv * jac.itemsize, int(site))
