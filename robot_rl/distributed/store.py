"""The learner's crash-safe transition store: every chunk on disk before it is acked.

Layout under the run directory::

    store/partial/<actor>/ep<episode:06d>/c<first_step:06d>.npz   one file per received chunk
    episodes/<actor>_ep<episode:06d>.npz                         one finished episode (the episode format)

Each chunk file (:mod:`robot_rl.distributed.chunk_files`) is written atomically (temp file,
fsync, rename, directory fsync) before the chunk is acked. When an episode's ``final`` chunk
arrives its chunks become ONE episode file (``write_episode``; metadata adds ``actor``,
``episode``, ``first_seq``, ``last_seq``, ``partial``, ``source``, ``intervention_steps``) and the
chunk directory is removed. If that write fails (a full disk) the chunk files stay, the episode
is retried by :meth:`EpisodeStore.retry_episode_files` and, failing that, on the next start.

An episode the actor will never finish -- the actor started a newer episode (it was killed and
restarted), or it stopped and said so -- is consolidated the same way with its last step marked
``truncated`` and ``partial: true``: nothing an actor sent is dropped.

Chunks are accepted strictly in the actor's ``seq`` order: ``seq <= stored`` is a duplicate
(acked again, not stored -- if its content matches what was stored under that seq, else it is
refused), ``seq > stored + 1`` a gap (not acked; the actor resends), and within an episode the
steps must continue where the last chunk ended, so each ``(actor, episode, step)`` is stored
exactly once. Values must fit the learner's :class:`~robot_rl.distributed.bounds.ValueBounds`.

On start-up :meth:`EpisodeStore.recover` rebuilds the per-actor state from the files: an episode
file that exists wins over leftover chunks of the same episode (a crash between writing it and
removing them), and ``*.tmp`` files are deleted. A damaged file is skipped; if that loses chunks
its actor had seen acked (and deleted), the actor asks to :meth:`~EpisodeStore.resync`: the
store continues at the actor's first held seq and skips chunks continuing an episode it lost.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import pathlib
import shutil
from typing import Any, Iterable, Mapping

from robot_rl.data import FORMAT_VERSION, Episode, EpisodeFileError, read_episode, write_episode
from robot_rl.data.schema import ObsSpec
from robot_rl.distributed.bounds import ValueBounds, chunk_problem
from robot_rl.distributed.chunk_files import (chunk_digest, chunk_path, episode_name, join_chunks, read_chunk,  # noqa: F401
                                              stored_keys, write_chunk)
from robot_rl.distributed.common import check_actor_id, check_chunk
from robot_rl.files import fsync_directory, fsync_file, remove_temp_files
from robot_rl.transport import Transitions
from robot_rl.transport.handshake import library_version

log = logging.getLogger(__name__)
MAX_EPISODE_BYTES_IN_MEMORY = 64 * 2**20
"""Per open episode: up to this much of its chunks stay in memory for consolidation."""
DIGESTS_PER_ACTOR = 1024
"""Content digests kept per actor, of its newest seqs (an actor resends at most its window, 32)."""


class Status(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # already stored with this content: ack again
    GAP = "gap"  # an earlier chunk is missing: do not ack, the actor resends
    INVALID = "invalid"  # does not fit (steps, spaces, bounds, another content under a stored seq): refuse
    SKIPPED = "skipped"  # after a resync: continues an episode the store lost; acked, not stored


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


class EpisodeStore:
    """Per-actor chunk files and finished episode files under ``run_dir`` (see the module docstring).

    ``metadata`` is the episode-file metadata every episode shares (task, obs_mode, control_hz,
    observation_spec, action_spec, source...). ``bounds``: what values a chunk may hold (None:
    only finite ones). One store per run directory, one process at a time.
    """

    def __init__(self, run_dir: pathlib.Path, metadata: Mapping[str, Any], spec: ObsSpec, action_dim: int,
                 bounds: ValueBounds | None = None) -> None:
        self.episodes_dir = pathlib.Path(run_dir) / "episodes"
        self.partial_dir = pathlib.Path(run_dir) / "store" / "partial"
        self.metadata, self.spec, self.action_dim, self.bounds = dict(metadata), spec, int(action_dim), bounds
        self.metadata.setdefault("format_version", FORMAT_VERSION)
        self.metadata.setdefault("robot_rl_version", library_version())
        self.transitions_stored = 0
        self._stored_seq: dict[str, int] = {}
        self._last_episode: dict[str, int] = {}
        self._open: dict[str, OpenEpisode] = {}
        self._unsynced: list[pathlib.Path] = []  # written with durable=False, not yet synced
        self._digests: dict[str, collections.OrderedDict[int, bytes]] = {}
        self._skipping: set[str] = set()  # resynced actors whose next chunk may continue a lost episode
        self._unwritten: dict[tuple[str, int], tuple[OpenEpisode, bool]] = {}  # episode files a full disk refused

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
                log.warning("store: skipping %s; its steps are not replayed (an actor that had them acknowledged resyncs "
                            "when it connects: the store goes on from what that actor still holds)", err)
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
        Raises OSError when the chunk cannot be written (nothing changed then).
        """
        actor, stored = chunk.actor, self.stored_seq(chunk.actor)
        if chunk.seq <= stored:
            return self._duplicate(chunk, stored)
        if chunk.seq > stored + 1:
            return Outcome(Status.GAP, stored, f"got seq {chunk.seq}, expected {stored + 1}")
        try:
            check_actor_id(actor)
            check_chunk(chunk, self.spec, self.action_dim)
            problem = chunk_problem(self.bounds, chunk)
            if problem:
                raise ValueError(problem)
            if actor in self._skipping and chunk.first_step != 0:
                return self._skip(chunk)
            self._skipping.discard(actor)
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
        return Outcome(Status.STORED, self.stored_seq(actor), episodes=[p for p in written if p is not None])

    def _duplicate(self, chunk: Transitions, stored: int) -> Outcome:
        """A seq already stored: a resend (same content: ack again) or another chunk under that seq (refused)."""
        known = self._digests.get(chunk.actor, {}).get(chunk.seq)
        if known is None:
            return Outcome(Status.INVALID, stored, f"seq {chunk.seq} was stored long ago (the learner holds up to {stored}) "
                                                   "and cannot be compared: a working actor never resends it")
        if known != chunk_digest(chunk):
            return Outcome(Status.INVALID, stored, f"seq {chunk.seq} was already stored with different content: a second "
                                                   "process with this --id, or a replaced --spool?")
        return Outcome(Status.DUPLICATE, stored)

    def _skip(self, chunk: Transitions) -> Outcome:
        log.warning("store: actor %r chunk seq %d continues episode %d, whose start the store lost; acknowledged, not stored",
                    chunk.actor, chunk.seq, chunk.episode)
        self._stored_seq[chunk.actor] = chunk.seq
        self._remember(chunk)
        return Outcome(Status.SKIPPED, chunk.seq, "continues an episode the store lost")

    def _remember(self, chunk: Transitions) -> None:
        digests = self._digests.setdefault(chunk.actor, collections.OrderedDict())
        digests[chunk.seq] = chunk_digest(chunk)
        while len(digests) > DIGESTS_PER_ACTOR:
            digests.popitem(last=False)

    def resync(self, actor: str, first_seq: int) -> tuple[int, int] | None:
        """The actor's spool starts at ``first_seq`` but the store holds only up to an earlier seq
        (it lost chunks the actor saw acked and deleted): continue at ``first_seq``. Returns the
        lost seq range, or None when nothing was missing."""
        stored = self.stored_seq(actor)
        if first_seq <= stored + 1:
            return None
        state = self._open.get(actor)
        if state is not None:
            self._consolidate(state, partial=True)
        self._stored_seq[actor] = first_seq - 1
        self._skipping.add(actor)
        return stored + 1, first_seq - 1

    def sync(self) -> int:
        """Make the chunks accepted with ``durable=False`` durable; returns how many files it synced.
        Raises OSError if that fails (then nothing is forgotten: the next call tries them all again).

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

    def _episode_for(self, chunk: Transitions) -> tuple[OpenEpisode, list[pathlib.Path | None]]:
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
        self._remember(chunk)

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
        closed = [self._consolidate(self._open[a], partial=True) for a in list(actors or self._open) if a in self._open]
        return [path for path in closed if path is not None]

    # ------------------------------------------------------------------ consolidation
    def _consolidate(self, state: OpenEpisode, partial: bool) -> pathlib.Path | None:
        """Write the episode file from the chunks, then remove the chunk files. A write that fails
        (a full disk) keeps them and the episode for :meth:`retry_episode_files`; returns None then."""
        if self._open.get(state.actor) is state:
            del self._open[state.actor]
        path = self.episodes_dir / episode_name(state.actor, state.episode)
        if not path.exists():
            try:
                chunks = state.chunks if state.chunks is not None else self._read_chunks(state.directory)
                write_episode(join_chunks(chunks, self.metadata, partial), self.episodes_dir, name=path.name)
            except OSError as err:
                if (state.actor, state.episode) not in self._unwritten:
                    log.warning("store: cannot write %s (%s); its chunks stay in %s and the file is written when the disk "
                                "has room (retried every few seconds, and at the next start)", path.name, err, state.directory)
                self._unwritten[(state.actor, state.episode)] = (state, partial)
                return None
        self._unwritten.pop((state.actor, state.episode), None)
        self._remove(state.directory)
        return path

    def retry_episode_files(self) -> list[pathlib.Path]:
        """Write the episode files a full disk refused; returns those written now."""
        written = [self._consolidate(state, partial) for state, partial in list(self._unwritten.values())]
        done = [path for path in written if path is not None]
        if done:
            log.info("store: wrote %d episode file(s) the disk had no room for before", len(done))
        return done

    @property
    def unwritten_episodes(self) -> int:
        return len(self._unwritten)

    @staticmethod
    def _remove(directory: pathlib.Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        fsync_directory(directory.parent)
