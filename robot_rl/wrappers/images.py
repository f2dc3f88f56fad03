"""Crop and resize camera images in a Dict observation, the same way in sim and on the robot."""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import gymnasium as gym
import numpy as np

CropBox = tuple[int, int, int, int]
"""``(y0, y1, x0, x1)``: rows ``y0:y1`` and columns ``x0:x1`` of the source image, in pixels."""


def crop_resize(image: np.ndarray, crop: CropBox | None, size: tuple[int, int]) -> np.ndarray:
    """Crop ``image`` (``(H, W, C)``) to ``crop``, then resize to ``size`` = ``(out_h, out_w)``.

    Resizing uses ``cv2.INTER_AREA`` (pixel-area averaging, alias-free when shrinking) and is
    skipped when the crop already has the output size. Returns a new contiguous array.
    """
    if crop is not None:
        y0, y1, x0, x1 = crop
        image = image[y0:y1, x0:x1]
    if image.shape[:2] == tuple(size):
        return np.array(image, copy=True)
    out = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out[..., None] if out.ndim == 2 and image.ndim == 3 else out


class CropResizeImages(gym.ObservationWrapper):
    """Crops then resizes named camera images of a ``Dict`` observation; updates the space.

    Args:
        env: an env whose observation space is a ``Dict`` holding ``uint8 (H, W, C)`` images.
        transforms: ``{camera: (crop box or None, (out_h, out_w))}``; cameras not named pass
            through unchanged. A rig file's ``Rig.crop_resize`` has exactly this form.

    Example::

        env = CropResizeImages(robot_rl.make("pick_cube", obs="pixels"),
                               {"front": ((16, 112, 16, 112), (64, 64)), "wrist": (None, (64, 64))})
    """

    def __init__(self, env: gym.Env, transforms: Mapping[str, tuple[CropBox | None, tuple[int, int]]]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict):
            raise TypeError(f"CropResizeImages needs a Dict observation space, got {space}")
        if not transforms:
            raise ValueError("CropResizeImages needs at least one camera to transform")
        self.transforms = {name: self._check(space, name, crop, size) for name, (crop, size) in transforms.items()}
        spaces = dict(space.spaces)
        for name, (_, (out_h, out_w)) in self.transforms.items():
            channels = spaces[name].shape[2]
            spaces[name] = gym.spaces.Box(0, 255, shape=(out_h, out_w, channels), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

    @staticmethod
    def _check(space: gym.spaces.Dict, name: str, crop: Any, size: Any) -> tuple[CropBox | None, tuple[int, int]]:
        if name not in space.spaces:
            raise KeyError(f"CropResizeImages: no camera {name!r} in the observation; keys: {list(space.spaces)}")
        image = space.spaces[name]
        if not (isinstance(image, gym.spaces.Box) and image.dtype == np.uint8 and len(image.shape) == 3):
            raise ValueError(f"CropResizeImages: {name!r} is not a uint8 (H, W, C) image space: {image}")
        height, width = image.shape[:2]
        if crop is not None:
            crop = tuple(int(v) for v in crop)
            if len(crop) != 4:
                raise ValueError(f"CropResizeImages: crop for {name!r} must be (y0, y1, x0, x1), got {crop}")
            y0, y1, x0, x1 = crop
            if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
                raise ValueError(
                    f"CropResizeImages: crop {crop} for {name!r} is not a non-empty box inside its "
                    f"{height}x{width} image (need 0 <= y0 < y1 <= {height}, 0 <= x0 < x1 <= {width})"
                )
        size = tuple(int(v) for v in size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"CropResizeImages: output size for {name!r} must be (out_h, out_w) > 0, got {size}")
        return crop, size

    def observation(self, observation: dict) -> dict:
        out = dict(observation)
        for name, (crop, size) in self.transforms.items():
            out[name] = crop_resize(observation[name], crop, size)
        return out
