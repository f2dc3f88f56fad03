"""Which env a command runs, in one typed config, and the one factory every command uses.

:class:`EnvConfig` (task, backend, obs, env options, seed) is nested in the config of every
command -- ``train``, ``learner``, ``actor``, ``launch``, ``record``, ``record-labels`` -- with
its flags unprefixed (``--task``, ``--backend``, ``--obs``, ``--env-kwargs``, ``--seed``).
:func:`make_env` builds a robot_rl task on a backend of its family, or any gymnasium env with
Box actions rescaled to [-1, 1]; :func:`make_envs` builds N of them as one vector env.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Annotated, Any, Callable, Literal

import gymnasium as gym
import numpy as np
import tyro
from gymnasium.vector import VectorEnv

from robot_rl import registry
from robot_rl.vector import make_vector, vectorize


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The env a command runs."""

    task: str = "pick_cube"
    """A robot_rl task (see `robot-rl envs`) or any gymnasium id with Box or Dict(Box, image)
    observations and Box actions (e.g. Pendulum-v1)."""
    backend: str = "sim"
    """A backend of the task's robot family: sim, a real robot's name, or a natively batched
    simulator (e.g. jax) for --num-envs."""
    obs: Literal["state", "pixels"] = "state"
    """Observation type (robot_rl tasks only)."""
    env_kwargs: tuple[str, ...] = ()
    """KEY=VALUE options for the task, backend or env (robot_rl.make / gymnasium.make), e.g.
    dense_reward=true image_height=64 (values are read as JSON when they parse, else as strings)."""
    seed: int = 0
    """Seeds the env resets (and the agent, the replay sampling and the actions drawn)."""

    def options(self) -> dict[str, Any]:
        """``env_kwargs`` as a dict; a malformed item fails with the item named."""
        return registry.parse_overrides(self.env_kwargs)

    @property
    def is_robot_rl_task(self) -> bool:
        return is_robot_rl_task(self.task)

    def with_options(self, **options: Any) -> "EnvConfig":
        """A copy with more ``KEY=VALUE`` env options."""
        import json

        return dataclasses.replace(self, env_kwargs=(*self.env_kwargs, *(f"{k}={json.dumps(v)}" for k, v in options.items())))


#: An EnvConfig nested in a command's config with its flags unprefixed (--task, --obs, --seed...).
EnvOptions = Annotated[EnvConfig, tyro.conf.OmitArgPrefixes]


def is_robot_rl_task(name: str) -> bool:
    return name in registry.tasks()


def make_env(cfg: EnvConfig, render: bool = False) -> gym.Env:
    """A robot_rl task, or any gymnasium env with its actions rescaled to [-1, 1]."""
    mode = "rgb_array" if render else None
    if cfg.is_robot_rl_task:
        return registry.make(cfg.task, backend=cfg.backend, obs=cfg.obs, render_mode=mode, **cfg.options())
    _quiet_headless_rendering()
    try:
        env = gym.make(cfg.task, render_mode=mode, **cfg.options())
    except gym.error.DependencyNotInstalled as err:
        raise ValueError(f"{cfg.task} needs a package that is not installed: {err}") from err
    except gym.error.Error as err:
        raise ValueError(f"{cfg.task!r} is neither a robot_rl task {sorted(registry.tasks())} nor a gymnasium id: {err}") from err
    except ModuleNotFoundError as err:
        raise ValueError(f"{cfg.task} needs the Python package {err.name!r}, which is not installed; gymnasium's MuJoCo "
                         "envs need the gym extra: pip install 'robot-rl[gym]'") from err
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{cfg.task}: only Box action spaces are supported, got {env.action_space}")
    if np.any(env.action_space.low != -1.0) or np.any(env.action_space.high != 1.0):
        env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    return env


def _quiet_headless_rendering() -> None:
    """pygame (gymnasium's classic-control renderer) warns 'XDG_RUNTIME_DIR is invalid or not set'
    on a headless machine although offscreen rendering works: give it a private runtime dir."""
    if not os.environ.get("XDG_RUNTIME_DIR") and not os.environ.get("DISPLAY"):
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"robot-rl-runtime-{os.getuid()}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = path


def control_hz(env: gym.Env | VectorEnv) -> float:
    """Steps per second of an env (0 when it does not say)."""
    return float(getattr(getattr(env, "unwrapped", env), "control_hz", 0.0) or env.metadata.get("render_fps") or 0.0)


def make_envs(cfg: EnvConfig, num_envs: int = 1, vectorization: str = "sync",
              make_one: Callable[[], gym.Env] | None = None) -> VectorEnv:
    """``num_envs`` envs of ``cfg`` as one vector env (see :mod:`robot_rl.vector`).

    ``make_one`` builds one (wrapped) sub-env (default: ``make_env(cfg)``); it must pickle for
    ``subprocess``. A natively batched backend makes its own vector env and takes no wrappers.
    """
    if cfg.is_robot_rl_task and registry.lookup_backend(registry.lookup(cfg.task), cfg.backend).batched:
        if make_one is not None:
            raise ValueError(f"backend {cfg.backend!r} is natively batched: it cannot be wrapped per sub-env "
                             "(human in the loop, learned rewards); use a per-env backend such as sim")
        return make_vector(cfg.task, cfg.backend, cfg.obs, num_envs, vectorization, **cfg.options())
    return vectorize(make_one or functools.partial(make_env, cfg), num_envs, vectorization)
