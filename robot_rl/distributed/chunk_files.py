"""The learner store's files: one ``.npz`` per received chunk, joined into episode files; a chunk's
content digest (to tell a resent chunk from a different one under the same seq).

A chunk file holds the chunk's arrays (``action``, ``reward``, ``terminated``, ``truncated``,
``intervention``, ``obs/<key>``) and ``meta``, a 0-d JSON string (actor, seq, episode,
first_step, final); numpy alone reads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
from typing import Any, Mapping

import numpy as np

from robot_rl.data import Episode, EpisodeFileError, read_episode
from robot_rl.data.episodes import NPZ_READ_ERRORS
from robot_rl.files import atomic_write
from robot_rl.transport import Transitions

log = logging.getLogger(__name__)
STEP_ARRAYS = ("action", "reward", "terminated", "truncated", "intervention")


def chunk_path(directory: pathlib.Path, first_step: int) -> pathlib.Path:
    return directory / f"c{first_step:06d}.npz"


def episode_name(actor: str, episode: int) -> str:
    return f"{actor}_ep{episode:06d}.npz"


def write_chunk(path: pathlib.Path, chunk: Transitions, durable: bool = True) -> None:
    meta = {"actor": chunk.actor, "seq": chunk.seq, "episode": chunk.episode, "first_step": chunk.first_step,
            "final": bool(chunk.final)}
    arrays = {name: np.asarray(getattr(chunk, name)) for name in STEP_ARRAYS}
    arrays.update({f"obs/{k}": np.asarray(v) for k, v in chunk.observations.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda file: np.savez(file, **arrays), durable=durable)


def read_chunk(path: pathlib.Path) -> Transitions:
    """A chunk file -> Transitions; ValueError for an unreadable file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(arrays.pop("meta").item())
        observations = {key[4:]: value for key, value in arrays.items() if key.startswith("obs/")}
        return Transitions(meta["actor"], meta["seq"], meta["episode"], meta["first_step"],
                           *(arrays[name] for name in STEP_ARRAYS), observations, meta["final"])
    except (*NPZ_READ_ERRORS, KeyError, TypeError) as err:
        raise ValueError(f"chunk file {path} is unreadable (torn by a crash before it was synced?): {err}") from err


def chunk_digest(chunk: Transitions) -> bytes:
    """A digest of what a chunk holds (its place in the episode and every array's dtype, shape and
    bytes): equal for the chunk as received and as read back from its file."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([chunk.episode, chunk.first_step, chunk.count, bool(chunk.final)]).encode())
    named = [(name, getattr(chunk, name)) for name in STEP_ARRAYS] + [(f"obs/{k}", chunk.observations[k]) for k in sorted(chunk.observations)]
    for name, value in named:
        array = np.ascontiguousarray(value)
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")
    return digest.digest()


def join_chunks(chunks: list[Transitions], metadata: Mapping[str, Any], partial: bool) -> Episode:
    """Consecutive chunks of one episode (the first starting at step 0) -> an :class:`Episode`."""
    steps = {name: np.concatenate([np.asarray(getattr(c, name)) for c in chunks]) for name in STEP_ARRAYS}
    observations = {k: np.concatenate([np.asarray(c.observations[k]) for c in chunks]) for k in chunks[0].observations}
    if partial:
        steps["truncated"][-1] = not steps["terminated"][-1]
    first, last = chunks[0], chunks[-1]
    metadata = {**metadata, "actor": first.actor, "episode": first.episode, "first_seq": first.seq,
                "last_seq": last.seq, "partial": partial, "intervention_steps": int(steps["intervention"].sum())}
    if steps["intervention"].any():
        metadata["source"] = "online+intervention"
    return Episode(observations, steps["action"], steps["reward"].astype(np.float32), steps["terminated"],
                   steps["truncated"], steps["intervention"], metadata)


def stored_keys(run_dir: pathlib.Path) -> list[tuple[str, int, int]]:
    """Every ``(actor, episode, step)`` in a run's store (episode files and open chunks), in order,
    as :meth:`EpisodeStore.recover` reads it: leftover chunks of an episode whose file exists (a
    learner stopped between writing the file and removing them) are not counted, nor are unreadable
    episode files. For checks that nothing is stored twice."""
    keys, episodes_dir = [], pathlib.Path(run_dir) / "episodes"
    for path in sorted(episodes_dir.glob("*.npz")):
        try:
            episode = read_episode(path)
        except EpisodeFileError as err:
            log.warning("stored_keys: skipping %s", err)
            continue
        if "actor" in episode.metadata:
            keys += [(episode.metadata["actor"], episode.metadata["episode"], t) for t in range(len(episode))]
    for path in sorted((pathlib.Path(run_dir) / "store" / "partial").glob("*/ep*/c*.npz")):
        actor, episode = path.parent.parent.name, int(path.parent.name[2:])
        if not (episodes_dir / episode_name(actor, episode)).exists():
            keys += read_chunk(path).keys()
    return keys
