"""An actor's outbox on disk: every chunk is written here before it is sent, deleted once acked.

Layout of a spool directory (one per actor id)::

    <seq:012d>.msg     one transitions message, exactly the bytes sent (``messages.pack``)
    counters.json      {"next_seq", "next_episode", "transitions_produced", "weights_version"}

Both are written atomically (temp file, fsync, rename, directory fsync): the message file first,
then the counters. A restarted actor therefore continues the seq and episode numbering, resends
the files still here, and ``transitions_produced`` counts exactly the steps in chunks that reached
this directory (a crash between the two writes is repaired by :meth:`Spool.open`, which counts
message files newer than the counters). Chunks not yet spooled when the process dies (at most
the actor's queue plus the chunk being filled) are lost and were never counted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

from robot_rl.files import atomic_write, fsync_directory, fsync_file, remove_temp_files
from robot_rl.transport import MessageError, Transitions, unpack

log = logging.getLogger(__name__)
COUNTERS = "counters.json"


@dataclasses.dataclass
class Counters:
    next_seq: int = 0
    """Seq of the next chunk this actor will produce."""
    next_episode: int = 0
    """Episode id a (re)started actor begins with: one past the last episode spooled."""
    transitions_produced: int = 0
    """Env steps in chunks that reached the spool, over every run of this actor id."""
    weights_version: int = -1
    """Newest weights version the actor had loaded when it last wrote a chunk."""


def message_path(directory: pathlib.Path, seq: int) -> pathlib.Path:
    return directory / f"{seq:012d}.msg"


class Spool:
    """The spool directory of one actor; used by the actor's network thread only."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = pathlib.Path(directory)
        self.counters = Counters()
        self._counts: dict[int, int] = {}  # seq -> steps, for the files still here
        self._unsynced: list[int] = []  # seqs added with durable=False, not synced yet

    def open(self) -> Counters:
        """Create or reopen the directory; returns the counters to continue from."""
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.directory)
        path = self.directory / COUNTERS
        if path.exists():
            try:
                self.counters = Counters(**json.loads(path.read_text()))
            except (ValueError, TypeError) as err:
                raise ValueError(f"spool counters {path} are unreadable ({err}); move the spool away to start afresh") from err
        for seq in self._seqs_on_disk():
            if seq > self.counters.next_seq:  # after a torn unsynced message: never sent, drop it too
                self._set_aside(message_path(self.directory, seq), "it follows a missing or unreadable message")
                continue
            chunk = self._read_chunk(seq)
            if chunk is None:
                continue
            self._counts[seq] = chunk.count
            if seq == self.counters.next_seq:  # written, but the counters were not updated yet
                self._count(chunk)
        self._write_counters()
        return dataclasses.replace(self.counters)

    def _seqs_on_disk(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.msg") if p.stem.isdigit())

    def _read_chunk(self, seq: int) -> Transitions | None:
        path = message_path(self.directory, seq)
        try:
            chunk = unpack(path.read_bytes())
        except (OSError, MessageError) as err:
            self._set_aside(path, f"it is unreadable ({err})")
            return None
        return chunk if isinstance(chunk, Transitions) else None

    @staticmethod
    def _set_aside(path: pathlib.Path, why: str) -> None:
        log.warning("spool: moving %s aside to %s: %s", path, path.with_suffix(".bad").name, why)
        path.rename(path.with_suffix(".bad"))

    def _count(self, chunk: Transitions) -> None:
        c = self.counters
        c.next_seq = max(c.next_seq, chunk.seq + 1)
        c.next_episode = max(c.next_episode, chunk.episode + 1)
        c.transitions_produced += chunk.count

    def _write_counters(self) -> None:
        text = json.dumps(dataclasses.asdict(self.counters)).encode()
        atomic_write(self.directory / COUNTERS, lambda file: file.write(text))

    # ------------------------------------------------------------------ use
    def add(self, chunk: Transitions, data: bytes, weights_version: int = -1, durable: bool = True) -> None:
        """Write the packed message ``data`` of ``chunk``, then count it.

        ``durable=False`` defers the fsyncs and the counters to :meth:`sync`, which must run
        before the chunk is sent: a batch then costs one fsync per file plus two directory
        fsyncs instead of four fsyncs per chunk."""
        if chunk.seq != self.counters.next_seq:
            raise ValueError(f"spool {self.directory}: chunk seq {chunk.seq} is not the next one ({self.counters.next_seq})")
        atomic_write(message_path(self.directory, chunk.seq), lambda file: file.write(data), durable=durable)
        self._counts[chunk.seq] = chunk.count
        self._count(chunk)
        self.counters.weights_version = weights_version
        if durable:
            self._write_counters()
        else:
            self._unsynced.append(chunk.seq)

    def sync(self) -> int:
        """Make the messages added with ``durable=False`` durable (files, their renames), then the
        counters; returns how many there were."""
        count = len(self._unsynced)
        if count:
            for seq in self._unsynced:
                fsync_file(message_path(self.directory, seq))
            fsync_directory(self.directory)
            self._unsynced.clear()
            self._write_counters()
        return count

    def read(self, seq: int) -> bytes:
        return message_path(self.directory, seq).read_bytes()

    def has(self, seq: int) -> bool:
        return seq in self._counts

    def pending(self) -> list[int]:
        """Seqs of the messages here (not acked yet), in order."""
        return sorted(self._counts)

    def pending_transitions(self) -> int:
        return sum(self._counts.values())

    def drop_through(self, seq: int) -> int:
        """Delete the messages up to ``seq`` (acked); returns how many were deleted."""
        done = [s for s in self._counts if s <= seq]
        for s in done:
            message_path(self.directory, s).unlink(missing_ok=True)
            del self._counts[s]
        return len(done)
