"""The learner's crash-safe transition store: every chunk on disk before it is acked.

Layout under the run directory::

    store/partial/<actor>/ep<episode:06d>/c<first_step:06d>.npz   one file per received chunk
    episodes/<actor>_ep<episode:06d>.npz                         one finished episode (the episode format)

A chunk file holds the chunk's arrays (``action``, ``reward``, ``terminated``, ``truncated``,
``intervention``, ``obs/<key>``) and ``meta``, a 0-d JSON string (actor, seq, episode,
first_step, final); numpy alone reads it. Each is written atomically (temp file, fsync, rename,
directory fsync) before the chunk is acked. When an episode's ``final`` chunk arrives its chunks
become ONE episode file (``write_episode``; metadata adds ``actor``, ``episode``, ``first_seq``,
``last_seq``, ``partial``, ``source``, ``intervention_steps``) and the chunk directory is removed.

An episode the actor will never finish -- the actor started a newer episode (it was killed and
restarted), or it stopped and said so -- is consolidated the same way with its last step marked
``truncated`` and ``partial: true``: nothing an actor sent is dropped.

Chunks are accepted strictly in the actor's ``seq`` order: ``seq <= stored`` is a duplicate
(acked again, not stored), ``seq > stored + 1`` a gap (not acked; the actor resends), and within
an episode the steps must continue where the last chunk ended, so each ``(actor, episode, step)``
is stored exactly once. On start-up :meth:`EpisodeStore.recover` rebuilds the per-actor state
from the files: an episode file that exists wins over leftover chunks of the same episode
(a crash between writing it and removing them), and ``*.tmp`` files are deleted.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import pathlib
import shutil
from typing import Any, Iterable, Mapping

import numpy as np

from robot_rl.data import FORMAT_VERSION, Episode, EpisodeFileError, read_episode, write_episode
from robot_rl.data.episodes import NPZ_READ_ERRORS
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.common import check_actor_id, check_chunk
from robot_rl.files import atomic_write, fsync_directory, fsync_file, remove_temp_files
from robot_rl.transport import Transitions
from robot_rl.transport.handshake import library_version

log = logging.getLogger(__name__)
_STEP_ARRAYS = ("action", "reward", "terminated", "truncated", "intervention")
MAX_EPISODE_BYTES_IN_MEMORY = 64 * 2**20
"""Per open episode: up to this much of its chunks stay in memory for consolidation."""


class Status(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # already stored: ack again
    GAP = "gap"  # an earlier chunk is missing: do not ack, the actor resends
    INVALID = "invalid"  # does not fit (steps, spaces): do not ack


@dataclasses.dataclass
class Outcome:
    status: Status
    stored_seq: int
    reason: str = ""
    episodes: list[pathlib.Path] = dataclasses.field(default_factory=list)
    """Episode files written while handling the chunk."""


@dataclasses.dataclass
class OpenEpisode:
    """An episode of one actor with chunks on disk but no episode file yet."""

    actor: str
    episode: int
    directory: pathlib.Path
    next_step: int = 0
    first_seq: int = -1
    last_seq: int = -1
    chunks: list[Transitions] | None = dataclasses.field(default_factory=list)
    """Its chunks as stored, in order: consolidation joins these instead of reading the files
    back; None once they exceed :data:`MAX_EPISODE_BYTES_IN_MEMORY` (then the files are read)."""
    nbytes: int = 0


@dataclasses.dataclass
class Recovered:
    """What :meth:`EpisodeStore.recover` found: the episode files, and the chunks of every episode
    that had none (open ones, and those it just consolidated), in each actor's order."""

    episodes: list[Episode]
    chunks: list[Transitions]


def chunk_path(directory: pathlib.Path, first_step: int) -> pathlib.Path:
    return directory / f"c{first_step:06d}.npz"


def episode_name(actor: str, episode: int) -> str:
    return f"{actor}_ep{episode:06d}.npz"


def write_chunk(path: pathlib.Path, chunk: Transitions, durable: bool = True) -> None:
    meta = {"actor": chunk.actor, "seq": chunk.seq, "episode": chunk.episode, "first_step": chunk.first_step,
            "final": bool(chunk.final)}
    arrays = {name: np.asarray(getattr(chunk, name)) for name in _STEP_ARRAYS}
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
                           *(arrays[name] for name in _STEP_ARRAYS), observations, meta["final"])
    except (*NPZ_READ_ERRORS, KeyError, TypeError) as err:
        raise ValueError(f"chunk file {path} is unreadable (torn by a crash before it was synced?): {err}") from err


def join_chunks(chunks: list[Transitions], metadata: Mapping[str, Any], partial: bool) -> Episode:
    """Consecutive chunks of one episode (the first starting at step 0) -> an :class:`Episode`."""
    steps = {name: np.concatenate([np.asarray(getattr(c, name)) for c in chunks]) for name in _STEP_ARRAYS}
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


class EpisodeStore:
    """Per-actor chunk files and finished episode files under ``run_dir`` (see the module docstring).

    ``metadata`` is the episode-file metadata every episode shares (task, obs_mode, control_hz,
    observation_spec, action_spec, source...). One store per run directory, one process at a time.
    """

    def __init__(self, run_dir: pathlib.Path, metadata: Mapping[str, Any], spec: ObsSpec, action_dim: int) -> None:
        self.episodes_dir = pathlib.Path(run_dir) / "episodes"
        self.partial_dir = pathlib.Path(run_dir) / "store" / "partial"
        self.metadata, self.spec, self.action_dim = dict(metadata), spec, int(action_dim)
        self.metadata.setdefault("format_version", FORMAT_VERSION)
        self.metadata.setdefault("robot_rl_version", library_version())
        self.transitions_stored = 0
        self._stored_seq: dict[str, int] = {}
        self._last_episode: dict[str, int] = {}
        self._open: dict[str, OpenEpisode] = {}
        self._unsynced: list[pathlib.Path] = []  # written with durable=False, not yet synced

    # ------------------------------------------------------------------ state
    def stored_seq(self, actor: str) -> int:
        """Highest seq of ``actor`` stored, with every lower one stored too (-1: none)."""
        return self._stored_seq.get(actor, -1)

    @property
    def actors(self) -> list[str]:
        return sorted(self._stored_seq)

    def open_episode(self, actor: str) -> OpenEpisode | None:
        return self._open.get(actor)

    # ------------------------------------------------------------------ start-up
    def recover(self, task: str | None = None) -> Recovered:
        """Rebuild the per-actor state from disk; returns what is stored (for the replay buffers)."""
        self.episodes_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.episodes_dir)
        episodes = self._read_episode_files(task)
        chunks: list[Transitions] = []
        for actor_dir in sorted(p for p in self.partial_dir.iterdir() if p.is_dir()):
            chunks += self._recover_actor(actor_dir)
        return Recovered(episodes, chunks)

    def _read_episode_files(self, task: str | None) -> list[Episode]:
        episodes = []
        for path in sorted(self.episodes_dir.glob("*.npz")):
            try:
                episode = read_episode(path, task=task)
            except EpisodeFileError as err:
                log.warning("store: skipping %s", err)
                continue
            episodes.append(episode)
            meta = episode.metadata
            if isinstance(meta.get("actor"), str) and isinstance(meta.get("last_seq"), int):
                self._note(meta["actor"], meta["last_seq"], meta["episode"])
                self.transitions_stored += len(episode)
        return episodes

    def _note(self, actor: str, seq: int, episode: int) -> None:
        self._stored_seq[actor] = max(self._stored_seq.get(actor, -1), seq)
        self._last_episode[actor] = max(self._last_episode.get(actor, -1), episode)

    def _recover_actor(self, actor_dir: pathlib.Path) -> list[Transitions]:
        """Clean up one actor's chunk directories; returns the chunks found there."""
        actor = actor_dir.name
        opened: list[tuple[OpenEpisode, list[Transitions]]] = []
        for directory in sorted(p for p in actor_dir.iterdir() if p.is_dir() and p.name.startswith("ep")):
            remove_temp_files(directory)
            episode = int(directory.name[2:])
            if (self.episodes_dir / episode_name(actor, episode)).exists():
                log.info("store: %s episode %d was already written; removing its leftover chunks", actor, episode)
                self._remove(directory)
                continue
            chunks = self._read_chunks(directory)
            if not chunks:
                self._remove(directory)
                continue
            state = OpenEpisode(actor, episode, directory)
            for chunk in chunks:
                self._advance(state, chunk)
                self.transitions_stored += chunk.count
            opened.append((state, chunks))
        self._settle(opened)
        return [chunk for _, chunks in opened for chunk in chunks]

    def _read_chunks(self, directory: pathlib.Path) -> list[Transitions]:
        """The episode's readable chunks in step order, up to the first missing or unreadable one."""
        chunks, expected = [], 0
        for path in sorted(directory.glob("c*.npz")):
            try:
                chunk = read_chunk(path)
            except ValueError as err:
                log.warning("store: %s; keeping the %d chunks before it", err, len(chunks))
                break
            if chunk.first_step != expected:
                log.warning("store: %s starts at step %d, expected %d; keeping the chunks before it", path, chunk.first_step, expected)
                break
            chunks.append(chunk)
            expected += chunk.count
        return chunks

    def _settle(self, opened: list[tuple[OpenEpisode, list[Transitions]]]) -> None:
        """Finish episodes whose final chunk is on disk, close all but the newest open one."""
        still_open = []
        for state, chunks in opened:
            if chunks[-1].final:
                self._consolidate(state, partial=False)
            else:
                still_open.append((state, chunks))
        for state, _ in still_open[:-1]:
            self._consolidate(state, partial=True)
        if still_open:
            self._open[still_open[-1][0].actor] = still_open[-1][0]

    # ------------------------------------------------------------------ receiving
    def accept(self, chunk: Transitions, durable: bool = True) -> Outcome:
        """Store ``chunk`` durably if it is the actor's next one (see the module docstring).

        ``durable=False`` writes the chunk file without the two fsyncs (~10 ms each here); then
        :meth:`sync` must run before the chunk is acked. The learner accepts a whole poll batch
        that way and syncs once: one fsync per file and one per directory instead of two per chunk.
        """
        actor, stored = chunk.actor, self.stored_seq(chunk.actor)
        if chunk.seq <= stored:
            return Outcome(Status.DUPLICATE, stored)
        if chunk.seq > stored + 1:
            return Outcome(Status.GAP, stored, f"got seq {chunk.seq}, expected {stored + 1}")
        try:
            check_actor_id(actor)
            check_chunk(chunk, self.spec, self.action_dim)
            state, written = self._episode_for(chunk)
        except ValueError as err:
            return Outcome(Status.INVALID, stored, str(err))
        path = chunk_path(state.directory, chunk.first_step)
        new_directory = state.first_seq < 0  # this chunk opens the episode's directory
        write_chunk(path, chunk, durable)
        if not durable:  # sync() fsyncs the file and its directory (and a new directory's parent)
            self._unsynced += [path, state.directory] if new_directory else [path]
        elif new_directory:  # its entry in the actor's directory must be durable too
            fsync_directory(state.directory.parent)
        self._advance(state, chunk)
        self.transitions_stored += chunk.count
        if chunk.final:
            written.append(self._consolidate(state, partial=False))
        return Outcome(Status.STORED, self.stored_seq(actor), episodes=written)

    def sync(self) -> int:
        """Make the chunks accepted with ``durable=False`` durable; returns how many files it synced.

        Chunks consolidated meanwhile are already durable in their episode file (written with
        fsync before their chunk directory was removed)."""
        present = [path for path in self._unsynced if path.exists()]
        files = [path for path in present if not path.is_dir()]
        for path in files:
            fsync_file(path)
        for directory in dict.fromkeys(path.parent for path in present):  # new episode directories' parents too
            fsync_directory(directory)
        self._unsynced.clear()
        return len(files)

    def _episode_for(self, chunk: Transitions) -> tuple[OpenEpisode, list[pathlib.Path]]:
        """The open episode ``chunk`` continues, or a new one (closing the actor's previous one)."""
        current = self._open.get(chunk.actor)
        if current is not None and current.episode == chunk.episode:
            if chunk.first_step != current.next_step:
                raise ValueError(f"episode {chunk.episode} continues at step {current.next_step}, the chunk starts at {chunk.first_step}")
            return current, []
        if chunk.episode <= self._last_episode.get(chunk.actor, -1):
            raise ValueError(f"episode {chunk.episode} of {chunk.actor} is already closed (the last one began was "
                             f"{self._last_episode[chunk.actor]})")
        if chunk.first_step != 0:
            raise ValueError(f"a new episode must start at step 0, the chunk starts at {chunk.first_step}")
        written = [self._consolidate(current, partial=True)] if current is not None else []
        directory = self.partial_dir / chunk.actor / f"ep{chunk.episode:06d}"
        return OpenEpisode(chunk.actor, chunk.episode, directory), written

    def _advance(self, state: OpenEpisode, chunk: Transitions) -> None:
        state.first_seq = chunk.seq if state.first_seq < 0 else state.first_seq
        state.last_seq, state.next_step = chunk.seq, chunk.first_step + chunk.count
        if state.chunks is not None:
            state.nbytes += sum(a.nbytes for a in chunk.observations.values()) + chunk.action.nbytes
            if state.nbytes <= MAX_EPISODE_BYTES_IN_MEMORY:
                state.chunks.append(chunk)
            else:
                state.chunks = None
        self._open[state.actor] = state
        self._note(state.actor, chunk.seq, state.episode)

    def close_stopped(self, actor: str, last_seq: int) -> pathlib.Path | None:
        """The actor process stopped after sending up to ``last_seq``: close its open episode
        (truncated) if every chunk of it is stored. Returns the episode file written, if any."""
        state = self._open.get(actor)
        if state is None or self.stored_seq(actor) != last_seq:
            return None
        return self._consolidate(state, partial=True)

    def finalize_stale(self, actors: Iterable[str] | None = None) -> list[pathlib.Path]:
        """Close the open episodes of ``actors`` (default: all) as truncated; for an offline clean-up
        when those actors will never continue them."""
        return [self._consolidate(self._open[a], partial=True) for a in list(actors or self._open) if a in self._open]

    # ------------------------------------------------------------------ consolidation
    def _consolidate(self, state: OpenEpisode, partial: bool) -> pathlib.Path:
        """Write the episode file from the chunk files, then remove them."""
        path = self.episodes_dir / episode_name(state.actor, state.episode)
        if not path.exists():
            chunks = state.chunks if state.chunks is not None else self._read_chunks(state.directory)
            write_episode(join_chunks(chunks, self.metadata, partial), self.episodes_dir, name=path.name)
        self._remove(state.directory)
        if self._open.get(state.actor) is state:
            del self._open[state.actor]
        return path

    @staticmethod
    def _remove(directory: pathlib.Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        fsync_directory(directory.parent)


def stored_keys(run_dir: pathlib.Path) -> list[tuple[str, int, int]]:
    """Every ``(actor, episode, step)`` in a run's store (episode files and open chunks), in order,
    as :meth:`EpisodeStore.recover` reads it: leftover chunks of an episode whose file exists (a
    learner stopped between writing the file and removing them) are not counted. For checks that
    nothing is stored twice."""
    keys, episodes_dir = [], pathlib.Path(run_dir) / "episodes"
    for path in sorted(episodes_dir.glob("*.npz")):
        episode = read_episode(path)
        if "actor" in episode.metadata:
            keys += [(episode.metadata["actor"], episode.metadata["episode"], t) for t in range(len(episode))]
    for path in sorted((pathlib.Path(run_dir) / "store" / "partial").glob("*/ep*/c*.npz")):
        actor, episode = path.parent.parent.name, int(path.parent.name[2:])
        if not (episodes_dir / episode_name(actor, episode)).exists():
            keys += read_chunk(path).keys()
    return keys
