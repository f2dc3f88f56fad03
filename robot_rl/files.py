"""Atomic, durable files: write a temp file in the same directory, fsync, rename, fsync the directory.

A crash leaves the old file (or none) plus at most a ``.<name>.<random>.tmp`` file, which
:func:`remove_temp_files` clears. Checkpoints, classifier files, label chunks, the learner's store
and the actors' spools all write this way.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from typing import Any


def fsync_directory(directory: pathlib.Path) -> None:
    """Make renames in ``directory`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: pathlib.Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: pathlib.Path, write: Any, durable: bool = True) -> pathlib.Path:
    """Write ``path`` through a temp file in its directory: ``write(file)``, fsync, rename, fsync
    the directory. A crash leaves the old file (or none) plus at most a ``.*.tmp`` file.

    ``durable=False`` skips both fsyncs (the rename is still atomic for readers): the caller makes
    a batch of such files durable at once with :func:`fsync_file` on each and
    :func:`fsync_directory` on each directory, and until then must not report them stored. A
    crash before that may leave such a file empty or torn; readers must treat it as unreadable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as file:
            write(file)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)
    return path


def remove_temp_files(directory: pathlib.Path) -> int:
    """Delete the ``.*.tmp`` leftovers of crashed :func:`atomic_write` calls; returns how many."""
    removed = 0
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
