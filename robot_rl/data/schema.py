"""The transition schema: what one observation and one training batch look like.

Shared by the replay buffer, the agents and (later) the actor/learner wire, so it lives in one
place. Observations are canonicalized to a dict: ``"state"`` (a float32 vector: every non-image
part of the env's observation, concatenated in key order) plus one ``uint8 (H, W, 3)`` array per
camera. Images stay uint8 everywhere until the network's first layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import gymnasium as gym
import numpy as np

STATE = "state"


def _is_image(space: gym.spaces.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3 and space.shape[2] == 3


@dataclasses.dataclass(frozen=True)
class ObsSpec:
    """Structure of one canonical observation.

    Attributes:
        state_dim: length of the float32 ``state`` vector (0 if the env has none).
        images: camera name -> ``(H, W, 3)``, in a fixed order.
        vector_keys: the env's non-image Dict keys concatenated into ``state`` (empty for a Box).
    """

    state_dim: int
    images: Mapping[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    vector_keys: tuple[str, ...] = ()

    @classmethod
    def from_space(cls, space: gym.spaces.Space) -> "ObsSpec":
        """Box (a vector) or Dict of vector Boxes and uint8 (H, W, 3) image Boxes."""
        if isinstance(space, gym.spaces.Box):
            if _is_image(space):
                return cls(state_dim=0, images={"image": tuple(space.shape)}, vector_keys=())
            return cls(state_dim=int(np.prod(space.shape)))
        if not isinstance(space, gym.spaces.Dict):
            raise ValueError(f"observation space must be a Box or a Dict of Boxes, got {space}")
        images, vectors, dim = {}, [], 0
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box):
                raise ValueError(f"observation key {key!r} must be a Box, got {sub}")
            if _is_image(sub):
                images[key] = tuple(sub.shape)
            else:
                vectors.append(key)
                dim += int(np.prod(sub.shape))
        if STATE in images:
            raise ValueError("an image may not be called 'state'")
        return cls(state_dim=dim, images=images, vector_keys=tuple(vectors))

    def canonical(self, obs: Any) -> dict[str, np.ndarray]:
        """One env observation -> ``{"state": float32 (D,), <camera>: uint8 (H, W, 3)}`` (copies)."""
        if not isinstance(obs, Mapping):
            if self.images:  # a bare image observation
                return {STATE: np.zeros(0, np.float32), "image": np.array(obs, dtype=np.uint8)}
            return {STATE: np.asarray(obs, dtype=np.float32).reshape(-1).copy()}
        parts = [np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self.vector_keys]
        out = {STATE: np.concatenate(parts) if parts else np.zeros(0, np.float32)}
        for name in self.images:
            out[name] = np.array(obs[name], dtype=np.uint8)
        return out

    def canonical_batch(self, obs: Any) -> dict[str, np.ndarray]:
        """A vector env's observations (leading axis N) -> ``{"state": float32 (N, D), <camera>:
        uint8 (N, H, W, 3)}`` (copies); row i is ``canonical`` of sub-env i's observation."""
        if not isinstance(obs, Mapping):
            array = np.asarray(obs)
            if self.images:  # bare image observations
                return {STATE: np.zeros((len(array), 0), np.float32), "image": np.array(array, dtype=np.uint8)}
            return {STATE: np.array(array, dtype=np.float32).reshape(len(array), -1)}
        n = len(next(iter(obs.values())))
        parts = [np.asarray(obs[k], dtype=np.float32).reshape(n, -1) for k in self.vector_keys]
        out = {STATE: np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), np.float32)}
        for name in self.images:
            out[name] = np.array(obs[name], dtype=np.uint8)
        return out

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Key -> (shape, dtype) of the canonical observation."""
        out = {STATE: ((self.state_dim,), np.dtype(np.float32))}
        out.update({k: (tuple(v), np.dtype(np.uint8)) for k, v in self.images.items()})
        return out

    def to_json(self) -> dict:
        return {"state_dim": self.state_dim, "images": {k: list(v) for k, v in self.images.items()}, "vector_keys": list(self.vector_keys)}

    @classmethod
    def from_json(cls, data: Mapping) -> "ObsSpec":
        return cls(int(data["state_dim"]), {k: tuple(v) for k, v in data["images"].items()}, tuple(data["vector_keys"]))


@dataclasses.dataclass
class Batch:
    """A batch of transitions (numpy arrays or torch tensors, leading dimension B).

    ``terminated`` is 1.0 where the episode ended inside the MDP (no bootstrapping from
    ``next_obs``); a time-limit truncation is 0.0 and bootstraps, since ``next_obs`` is real.
    """

    obs: dict[str, Any]
    action: Any
    reward: Any
    next_obs: dict[str, Any]
    terminated: Any
    demo: Any = None
    """Optional 1.0/0.0 mask: 1.0 where the transition came from the demo buffer (None: no demos)."""
    discount: Any = None
    """Optional per-transition bootstrap multiplier (gamma^k of an n-step transition); None: the
    agent's discount (1-step transitions)."""

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def items(self) -> list[tuple[str, Any]]:
        """Every array with a readable key (``obs/state``, ``action``...), for checks and logs."""
        out = [(f"obs/{k}", v) for k, v in self.obs.items()]
        out += [(f"next_obs/{k}", v) for k, v in self.next_obs.items()]
        return out + [("action", self.action), ("reward", self.reward), ("terminated", self.terminated)]

    def to_torch(self, device: Any = "cpu") -> "Batch":
        import torch

        def conv(x: Any) -> Any:
            return x.to(device) if isinstance(x, torch.Tensor) else torch.as_tensor(x, device=device)

        return Batch(
            obs={k: conv(v) for k, v in self.obs.items()},
            action=conv(self.action),
            reward=conv(self.reward),
            next_obs={k: conv(v) for k, v in self.next_obs.items()},
            terminated=conv(self.terminated),
            demo=None if self.demo is None else conv(self.demo),
            discount=None if self.discount is None else conv(self.discount),
        )


def concat_batches(batches: list[Batch]) -> Batch:
    """Stack batches along the first axis (numpy), e.g. half online + half demo data."""
    first = batches[0]
    return Batch(
        obs={k: np.concatenate([b.obs[k] for b in batches]) for k in first.obs},
        action=np.concatenate([b.action for b in batches]),
        reward=np.concatenate([b.reward for b in batches]),
        next_obs={k: np.concatenate([b.next_obs[k] for b in batches]) for k in first.next_obs},
        terminated=np.concatenate([b.terminated for b in batches]),
        demo=_concat_demo_masks(batches),
        discount=_concat_discounts(batches),
    )


def _concat_discounts(batches: list[Batch]) -> np.ndarray | None:
    missing = [b.discount is None for b in batches]
    if all(missing):
        return None
    if any(missing):
        raise ValueError("cannot concatenate n-step batches (with a discount) and 1-step batches (without)")
    return np.concatenate([np.asarray(b.discount, np.float32) for b in batches])


def _concat_demo_masks(batches: list[Batch]) -> np.ndarray | None:
    """The demo masks stacked, a missing mask counting as 'not demo'; None when no batch has one."""
    if all(b.demo is None for b in batches):
        return None
    return np.concatenate([np.zeros(len(b), np.float32) if b.demo is None else np.asarray(b.demo, np.float32) for b in batches])


def check_finite(batch: Batch) -> None:
    """Raise ``ValueError`` naming the first key holding NaN or inf (images are uint8: skipped)."""
    for key, value in batch.items():
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"non-finite values (NaN or inf) in batch key {key!r}: the data or a reward is broken")
