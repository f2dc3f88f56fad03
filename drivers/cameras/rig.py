"""A rig's cameras, read from its TOML file: device serials and paths live there, never in code.

Example rig file (other tables, e.g. ``[arm]``, belong to other drivers and are ignored here)::

    [cameras.front]
    kind = "realsense"
    serial = "035422070437"      # quoted: serials may start with 0
    width = 640
    height = 480
    fps = 30
    exposure_us = 8000           # omit for auto exposure
    depth = false
    crop = [0, 480, 80, 560]     # [y0, y1, x0, x1] pixel box of the captured image
    resize = [128, 128]          # [height, width] after cropping

    [cameras.wrist]
    kind = "opencv"
    source = "/dev/video2"       # or a device index (2), a video file, an rtsp:// URL
    width = 640
    height = 480
    fps = 30
    resize = [128, 128]

Fields: ``kind`` (``realsense`` | ``opencv``), ``width``, ``height``, ``fps`` (all kinds);
``serial``, ``exposure_us``, ``depth`` (realsense); ``source`` (opencv; a relative file path is
relative to the rig file); optional ``crop``, ``resize``, ``max_age_s`` (seconds) for any kind.
``Rig.crop_resize`` is the argument of :class:`robot_rl.wrappers.images.CropResizeImages`, so the
real env is cropped exactly as the sim env is.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from robot_rl.camera import Camera

COMMON = ("kind", "width", "height", "fps", "crop", "resize", "max_age_s")
KIND_FIELDS = {"realsense": ("serial", "exposure_us", "depth"), "opencv": ("source",)}
REQUIRED = {"realsense": ("serial",), "opencv": ("source",)}


class RigError(ValueError):
    """A rig file is malformed; the message names the file, the camera and the field."""


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """One ``[cameras.<name>]`` table, validated.

    Attributes:
        crop: ``(y0, y1, x0, x1)`` pixel box in the captured image, or None (whole image).
        resize: ``(height, width)`` of the image after cropping, or None (crop size).
    """

    name: str
    kind: str
    width: int
    height: int
    fps: float
    serial: str | None = None
    source: int | str | None = None
    exposure_us: float | None = None
    depth: bool = False
    crop: tuple[int, int, int, int] | None = None
    resize: tuple[int, int] | None = None
    max_age_s: float = 0.25

    @property
    def output_size(self) -> tuple[int, int]:
        """``(height, width)`` of the observed image, after crop and resize."""
        if self.resize is not None:
            return self.resize
        if self.crop is not None:
            y0, y1, x0, x1 = self.crop
            return (y1 - y0, x1 - x0)
        return (self.height, self.width)

    def build(self) -> Camera:
        """The (unconnected) camera this table describes."""
        if self.kind == "realsense":
            from drivers.cameras.realsense import RealSenseCamera

            assert self.serial is not None
            return RealSenseCamera(
                self.name, self.serial, self.width, self.height, self.fps,
                exposure_us=self.exposure_us, depth=self.depth, max_age_s=self.max_age_s,
            )
        from drivers.cameras.opencv import OpenCVCamera

        assert self.source is not None
        return OpenCVCamera(self.name, self.source, self.width, self.height, self.fps, max_age_s=self.max_age_s)


@dataclasses.dataclass
class Rig:
    """The cameras of one rig (unconnected until ``connect()``/``with``) and their image settings."""

    path: pathlib.Path
    configs: dict[str, CameraConfig]
    cameras: dict[str, Camera]

    @property
    def crop_resize(self) -> dict[str, tuple[tuple[int, int, int, int] | None, tuple[int, int]]]:
        """``{camera: (crop box or None, (out_h, out_w))}`` for cameras that crop or resize."""
        return {
            name: (c.crop, c.output_size)
            for name, c in self.configs.items()
            if c.crop is not None or c.resize is not None
        }

    def connect(self) -> None:
        """Connect every camera; on a failure the ones already connected are closed again."""
        done = []
        try:
            for camera in self.cameras.values():
                camera.connect()
                done.append(camera)
        except BaseException:
            for camera in reversed(done):
                camera.close()
            raise

    def close(self) -> None:
        for camera in self.cameras.values():
            camera.close()

    def __enter__(self) -> "Rig":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_rig(path: str | os.PathLike) -> Rig:
    """Read and validate a rig file; build its cameras (nothing is opened yet)."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise RigError(f"{path}: not valid TOML: {err}") from err
    configs = parse_rig(data, path)
    return Rig(path, configs, {name: c.build() for name, c in configs.items()})


def parse_rig(data: Mapping[str, Any], path: str | os.PathLike = "<rig>") -> dict[str, CameraConfig]:
    """Validate the ``cameras`` table of a parsed rig file (``path`` is used in messages)."""
    cameras = data.get("cameras")
    if not isinstance(cameras, Mapping) or not cameras:
        raise RigError(f"{path}: no [cameras.<name>] tables")
    return {name: _parse_camera(name, table, pathlib.Path(path)) for name, table in cameras.items()}


def _parse_camera(name: str, table: Any, path: pathlib.Path) -> CameraConfig:
    where = f"{path}: camera {name!r}"
    if not isinstance(table, Mapping):
        raise RigError(f"{where}: must be a table [cameras.{name}]")
    if name == "state":
        raise RigError(f"{where}: 'state' is reserved for the proprioceptive vector; rename the camera")
    kind = table.get("kind")
    if kind not in KIND_FIELDS:
        raise RigError(f"{where}: field 'kind': unknown kind {kind!r}; known: {sorted(KIND_FIELDS)}")
    allowed = COMMON + KIND_FIELDS[kind]
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise RigError(f"{where}: unknown field(s) {unknown} for kind {kind!r}; allowed: {list(allowed)}")
    for field in ("width", "height", "fps") + REQUIRED[kind]:
        if field not in table:
            raise RigError(f"{where}: missing field {field!r} (kind {kind!r})")
    width, height = _positive_int(table, "width", where), _positive_int(table, "height", where)
    config = CameraConfig(
        name=name,
        kind=kind,
        width=width,
        height=height,
        fps=_positive_number(table, "fps", where),
        serial=_serial(table, where) if kind == "realsense" else None,
        source=_source(table, where, path) if kind == "opencv" else None,
        exposure_us=_positive_number(table, "exposure_us", where) if "exposure_us" in table else None,
        depth=_bool(table, "depth", where),
        crop=_crop(table, where, height, width),
        resize=_size(table, "resize", where),
        max_age_s=_positive_number(table, "max_age_s", where) if "max_age_s" in table else 0.25,
    )
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(table: Mapping, field: str, where: str) -> int:
    value = table[field]
    if not _is_int(value) or value <= 0:
        raise RigError(f"{where}: field {field!r} must be a positive integer, got {value!r}")
    return value


def _positive_number(table: Mapping, field: str, where: str) -> float:
    value = table[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise RigError(f"{where}: field {field!r} must be a positive number, got {value!r}")
    return float(value)


def _bool(table: Mapping, field: str, where: str) -> bool:
    value = table.get(field, False)
    if not isinstance(value, bool):
        raise RigError(f"{where}: field {field!r} must be true or false, got {value!r}")
    return value


def _serial(table: Mapping, where: str) -> str:
    value = table["serial"]
    if not isinstance(value, str) or not value.strip():
        raise RigError(
            f"{where}: field 'serial' must be a quoted string (serials may start with 0), got {value!r}"
        )
    return value.strip()


def _source(table: Mapping, where: str, path: pathlib.Path) -> int | str:
    value = table["source"]
    if _is_int(value) and value >= 0:
        return value
    if not isinstance(value, str) or not value:
        raise RigError(f"{where}: field 'source' must be a device index, a path or a URL, got {value!r}")
    if "://" in value or os.path.isabs(value):
        return value
    return str(path.parent / value)


def _crop(table: Mapping, where: str, height: int, width: int) -> tuple[int, int, int, int] | None:
    value = table.get("crop")
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 4 and all(_is_int(v) for v in value)):
        raise RigError(f"{where}: field 'crop' must be four integers [y0, y1, x0, x1], got {value!r}")
    y0, y1, x0, x1 = value
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise RigError(
            f"{where}: field 'crop' {value} must satisfy 0 <= y0 < y1 <= height ({height}) "
            f"and 0 <= x0 < x1 <= width ({width})"
        )
    return (y0, y1, x0, x1)


def _size(table: Mapping, field: str, where: str) -> tuple[int, int] | None:
    value = table.get(field)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)):
        raise RigError(f"{where}: field {field!r} must be two positive integers [height, width], got {value!r}")
    return (value[0], value[1])
