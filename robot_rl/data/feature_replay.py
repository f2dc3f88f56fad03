"""A replay ring that stores a frozen encoder's features of each camera frame instead of the frame.

Each camera frame is encoded once, when it is stored, as ``K`` randomly shifted copies (DrQ's
random shift, applied before the frozen encoder): slot ``i`` holds ``(K, F)`` features per camera
(float16) next to the ``state`` vector. Sampling picks one of the ``K`` copies per row, for
``obs`` and ``next_obs`` independently, so the agent still sees a random shift of every frame,
yet no image is gathered, augmented or encoded during an update. Batches hold float32 ``(B, F)``
features under the camera keys.

The buffer accepts exactly what :class:`~robot_rl.data.replay.ReplayBuffer` accepts (canonical
observations with uint8 images, episodes, segments, lanes) and keeps its transition and n-step
bookkeeping; only what a slot stores differs. The encoding is a plain callable (numpy in, numpy
out), so this module needs no torch: :class:`robot_rl.encoders.cached.ShiftedFeatures` is the one
the trainer uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol

import numpy as np

from robot_rl.data.episodes import Episode
from robot_rl.data.memory import describe_obs
from robot_rl.data.replay import ReplayBuffer
from robot_rl.data.replay_checks import check_episode, check_obs, check_steps
from robot_rl.data.schema import STATE, Batch, ObsSpec
from robot_rl.data.segments import SegmentEnd


class FrameEncoder(Protocol):
    """uint8 frames ``(N, H, W, 3)`` -> features of ``num_shifts`` shifted copies each, ``(N, K, F)``."""

    num_shifts: int
    feature_dim: int

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


class FeatureReplayBuffer(ReplayBuffer):
    """:class:`ReplayBuffer` whose camera slots hold ``encode(frame)`` (``(K, F)`` float16); see the module."""

    def __init__(self, obs_spec: ObsSpec, action_dim: int, capacity: int, encode: FrameEncoder, name: str = "online",
                 seed: int = 0, check_memory: bool = True) -> None:
        if not obs_spec.images:
            raise ValueError(f"replay {name!r}: a feature cache needs cameras; this observation has none (use ReplayBuffer)")
        if int(encode.num_shifts) < 1 or int(encode.feature_dim) < 1:
            raise ValueError(f"replay {name!r}: the frame encoder must give >= 1 shift of >= 1 feature, "
                             f"got {encode.num_shifts} x {encode.feature_dim}")
        self._encode = encode
        self._image_shapes = obs_spec.shapes()  # what callers hand in
        super().__init__(obs_spec, action_dim, capacity, name=name, seed=seed, check_memory=check_memory)

    def _slot_shapes(self, obs_spec: ObsSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        cached = ((int(self._encode.num_shifts), int(self._encode.feature_dim)), np.dtype(np.float16))
        return {key: cached if key in obs_spec.images else entry for key, entry in obs_spec.shapes().items()}

    def cache_bytes_per_transition(self) -> int:
        """Bytes of cached camera features per slot (all cameras, all shifts)."""
        return sum(int(np.prod(self._shapes[camera][0])) * 2 for camera in self.obs_spec.images)

    def describe_contents(self) -> str:
        shifts, features = self._shapes[next(iter(self.obs_spec.images))][0]
        return (f"{describe_obs(self.obs_spec)} stored as feature cache {len(self.obs_spec.images)} x {shifts} shifts x "
                f"{features} float16 = {self.cache_bytes_per_transition():,} bytes per transition")

    # ------------------------------------------------------------------ writing: encode, then store
    def encode(self, obs: Mapping[str, np.ndarray], label: str = "obs", batch: int | None = None) -> dict[str, np.ndarray]:
        """A canonical observation (or ``batch`` of them) -> what a slot stores; images are checked first."""
        obs = check_obs(self.name, self._image_shapes, obs, label, batch=batch)
        return {key: self._encode_frames(value, batch is None) if key in self.obs_spec.images else value
                for key, value in obs.items()}

    def _encode_frames(self, images: np.ndarray, single: bool) -> np.ndarray:
        frames = images[None] if single else images
        features = np.asarray(self._encode(frames), dtype=np.float16)
        expected = (len(frames), *self._shapes[next(iter(self.obs_spec.images))][0])
        if features.shape != expected:
            raise ValueError(f"replay {self.name!r}: the frame encoder returned {features.shape}, expected {expected}")
        return features[0] if single else features

    def start_episode(self, obs: Mapping[str, np.ndarray], lane: int = 0) -> None:
        super().start_episode(self.encode(obs), lane)

    def add(self, action: Any, reward: float, terminated: bool, truncated: bool,
            next_obs: Mapping[str, np.ndarray], lane: int = 0) -> None:
        if lane not in self._open:  # the base class's clear error, before any encoding
            super().add(action, reward, terminated, truncated, next_obs, lane)
        super().add(action, reward, terminated, truncated, self.encode(next_obs, "next_obs"), lane)

    def add_batch(self, actions: Any, rewards: Any, terminated: Any, truncated: Any, next_obs: Mapping[str, np.ndarray]) -> None:
        n = len(check_steps(self.name, self.action_dim, actions, rewards, terminated, truncated)[1])
        super().add_batch(actions, rewards, terminated, truncated, self.encode(next_obs, "next_obs", batch=n))

    def add_segment(self, episode: Episode, after: SegmentEnd | None = None) -> SegmentEnd:
        observations = check_episode(self.name, self._image_shapes, self.action_dim, episode)
        steps = len(episode.actions)
        first = steps + 1 - min(steps + 1, self.capacity)  # frames that would be overwritten at once are not encoded
        encoded = {key: self._encode_frames(value[first:], False) if key in self.obs_spec.images else value[first:]
                   for key, value in observations.items()}
        if first:  # pad the dropped leading frames back (never stored) so the base class sees a whole episode
            encoded = {key: np.concatenate([np.zeros((first, *value.shape[1:]), value.dtype), value]) for key, value in encoded.items()}
        return super().add_segment(dataclasses.replace(episode, observations=encoded), after)

    # ------------------------------------------------------------------ sampling: one shift per row
    def sample(self, batch_size: int, out: Batch | None = None, n_step: int = 1, discount: float | None = None) -> Batch:
        """:meth:`ReplayBuffer.sample`, camera keys holding float32 ``(B, F)`` features of one random shift each."""
        if out is not None:
            raise ValueError(f"replay {self.name!r}: out= (reusing image batch memory) does not apply to a feature "
                             "cache, whose batches are small; call sample() without it")
        return super().sample(batch_size, n_step=n_step, discount=discount)

    def _gather_obs(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        out = {STATE: self._obs[STATE][slots]}
        for camera in self.obs_spec.images:
            cache = self._obs[camera]
            shift = self._rng.integers(0, cache.shape[1], len(slots))
            out[camera] = cache[slots, shift].astype(np.float32)
        return out
