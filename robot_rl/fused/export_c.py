"""The torch actor as a plain C header: its weights as ``static const float`` arrays and a
reference forward function, for a microcontroller (no allocation, no libraries but ``math.h``).

``<prefix>_act(const float obs[OBS_DIM], float action[ACTION_DIM])`` computes the deterministic
action ``tanh(mean)`` of :class:`robot_rl.agents.distributions.TanhGaussianPolicy` (Linear +
LayerNorm + ReLU hidden layers, then the head's mean half), from the weights of an
``actor_state_dict()`` (``actor.trunk.<i>.*``, ``actor.head.*``; e.g. ``actor.pt``).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any, Mapping

import numpy as np

from robot_rl.fused.convert import TRUNK_STRIDE, policy_from_weights
from robot_rl.fused.networks import LAYER_NORM_EPS

_FUNCTIONS = """
static void {p}_dense(const float *w, const float *b, const float *x, int n_in, int n_out, float *y) {{
    for (int o = 0; o < n_out; ++o) {{
        float acc = b[o];
        for (int i = 0; i < n_in; ++i) acc += w[o * n_in + i] * x[i];
        y[o] = acc;
    }}
}}

static void {p}_norm_relu(const float *scale, const float *shift, float *x, int n) {{
    float mean = 0.0f, var = 0.0f;
    for (int i = 0; i < n; ++i) mean += x[i];
    mean /= (float)n;
    for (int i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;
    const float inv = 1.0f / sqrtf(var + {eps}f);
    for (int i = 0; i < n; ++i) {{
        const float v = (x[i] - mean) * inv * scale[i] + shift[i];
        x[i] = v > 0.0f ? v : 0.0f;
    }}
}}
"""


def _array(name: str, values: np.ndarray) -> str:
    flat = ", ".join(f"{v:.9e}f" for v in np.asarray(values, dtype=np.float32).reshape(-1))
    return f"static const float {name}[{values.size}] = {{{flat}}};"


def _layers(weights: Mapping[str, Any]) -> tuple[list[tuple[np.ndarray, ...]], tuple[np.ndarray, np.ndarray]]:
    """``[(W, b, LayerNorm scale, shift) per hidden layer]`` and the head's ``(W, b)``, torch's ``(out, in)`` layout."""
    policy = policy_from_weights(weights)
    numpy = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    hidden = [(numpy(lin.weight), numpy(lin.bias), numpy(norm.weight), numpy(norm.bias))
              for lin, norm in zip(policy.trunk[0::TRUNK_STRIDE], policy.trunk[1::TRUNK_STRIDE])]
    return hidden, (numpy(policy.head.weight), numpy(policy.head.bias))


def c_header(weights: Mapping[str, Any], prefix: str = "policy") -> str:
    """The header's text (see the module docstring); ``prefix`` names its symbols."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise ValueError(f"prefix must be a C identifier, got {prefix!r}")
    hidden, (head_w, head_b) = _layers(weights)
    action_dim, obs_dim = head_w.shape[0] // 2, (hidden[0][0] if hidden else head_w).shape[1]
    guard, up = f"{prefix.upper()}_H", prefix.upper()
    lines = [f"#ifndef {guard}", f"#define {guard}", "#include <math.h>", "",
             f"#define {up}_OBS_DIM {obs_dim}", f"#define {up}_ACTION_DIM {action_dim}", ""]
    for n, (w, b, scale, shift) in enumerate(hidden):
        lines += [_array(f"{prefix}_w{n}", w), _array(f"{prefix}_b{n}", b), _array(f"{prefix}_s{n}", scale),
                  _array(f"{prefix}_t{n}", shift)]
    lines += [_array(f"{prefix}_wh", head_w[:action_dim]), _array(f"{prefix}_bh", head_b[:action_dim])]
    lines.append(_FUNCTIONS.format(p=prefix, eps=LAYER_NORM_EPS))
    width = max([w.shape[0] for w, *_ in hidden] + [obs_dim])
    body = [f"static void {prefix}_act(const float obs[{up}_OBS_DIM], float action[{up}_ACTION_DIM]) {{",
            f"    float a[{width}], b[{width}];", f"    for (int i = 0; i < {up}_OBS_DIM; ++i) a[i] = obs[i];"]
    n_in = obs_dim
    for n, (w, *_) in enumerate(hidden):
        body += [f"    {prefix}_dense({prefix}_w{n}, {prefix}_b{n}, a, {n_in}, {w.shape[0]}, b);",
                 f"    {prefix}_norm_relu({prefix}_s{n}, {prefix}_t{n}, b, {w.shape[0]});",
                 f"    for (int i = 0; i < {w.shape[0]}; ++i) a[i] = b[i];"]
        n_in = w.shape[0]
    body += [f"    {prefix}_dense({prefix}_wh, {prefix}_bh, a, {n_in}, {action_dim}, action);",
             f"    for (int i = 0; i < {up}_ACTION_DIM; ++i) action[i] = tanhf(action[i]);", "}", "", f"#endif  /* {guard} */"]
    return "\n".join(lines + body) + "\n"


def write_c_header(path: pathlib.Path, weights: Mapping[str, Any], prefix: str = "policy") -> pathlib.Path:
    path.write_text(c_header(weights, prefix))
    return path
