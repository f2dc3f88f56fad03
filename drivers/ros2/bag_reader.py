"""Reading a rosbag2 recording (sqlite3 or MCAP, a bag directory or one ``.db3``/``.mcap`` file) by role.

Two passes over the bag, so memory holds only what an import keeps: :func:`index_bag` reads every
selected topic's receive times (the bag's log time, integer ns) and checks its message type;
:func:`read_messages` then deserializes only the messages the alignment picked and hands each, as a
message dict (:mod:`drivers.ros2.msg_dicts`), to a converter (a camera frame is shrunk to the
observation's size at once). Messages are decoded with the bag's own message definitions (what
``ros2 bag record`` stores in MCAP, and in sqlite3 from Iron on); a bag without them (Humble's sqlite3)
is decoded with our typestore of its ROS distro. Every problem -- a missing topic, a message type the
role does not take, an unknown type, a truncated or corrupt file -- is a :class:`BagError` naming the
file or the topic.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sqlite3
import struct
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from drivers.ros2.msg_dicts import DISTROS, Message, deserialize, typestore

Progress = Callable[[str], None]
PROGRESS_EVERY_S = 2.0


class BagError(ValueError):
    """A bag that cannot be imported; the message names the file or the topic and what is wrong."""


@dataclasses.dataclass(frozen=True)
class TopicChoice:
    """Which bag topic plays a role.

    Attributes:
        role: the role (``"odom"``, ``"ackermann"``, ``"camera/front"``, ``"episode"``...).
        topic: the absolute topic name in the bag (``"/car/odom"``).
        typenames: the message types the role takes (rosbags form ``"nav_msgs/msg/Odometry"``).
        required: a bag without this topic cannot be imported (else the role is left out).
    """

    role: str
    topic: str
    typenames: tuple[str, ...]
    required: bool = True


@dataclasses.dataclass(frozen=True)
class BagIndex:
    """What :func:`index_bag` found: per role the topic's type and its messages' receive times.

    Attributes:
        path: the bag.
        choices: role -> the topic chosen for it (only the roles found in the bag).
        typenames: role -> the message type the bag carries on that topic.
        times_ns: role -> ``(N,)`` int64 receive times, sorted.
        order: role -> ``(N,)`` position of each sorted message in the bag's reading order.
        distro: the ROS distro whose typestore decodes messages the bag has no definition for.
    """

    path: pathlib.Path
    choices: Mapping[str, TopicChoice]
    typenames: Mapping[str, str]
    times_ns: Mapping[str, np.ndarray]
    order: Mapping[str, np.ndarray]
    distro: str

    @property
    def start_ns(self) -> int:
        """The receive time of the first message read (0 if none)."""
        return min((int(t[0]) for t in self.times_ns.values() if len(t)), default=0)


# ----------------------------------------------------------------------------- opening
def _reader(path: pathlib.Path):
    from rosbags.rosbag2 import Reader

    if not path.exists():
        raise BagError(f"{path}: no such bag (a rosbag2 directory, or a .db3 or .mcap file)")
    try:
        return Reader(path)
    except Exception as err:  # rosbags: ReaderError, or an unrecognized file suffix
        raise BagError(f"{path}: not a rosbag2 bag: {err}") from err


def _read_errors() -> tuple[type[BaseException], ...]:
    """What rosbags raises on a truncated or corrupt bag (its own ReaderError, or the storage's)."""
    from rosbags.rosbag2 import ReaderError
    from rosbags.typesys import TypesysError

    return ReaderError, TypesysError, sqlite3.Error, OSError, EOFError, struct.error, KeyError, IndexError, \
        AssertionError


def _where(path: pathlib.Path) -> str:
    """The bag and, for a bag directory, its storage files (what a truncated bag's error must name)."""
    if not path.is_dir():
        return str(path)
    files = sorted(p.name for p in path.iterdir() if p.suffix in (".db3", ".mcap", ".zstd"))
    return f"{path} (storage files: {', '.join(files) or 'none'})"


def _opened(path: pathlib.Path, reader: Any) -> Any:
    try:
        reader.open()
    except _read_errors() as err:
        raise BagError(f"{_where(path)}: cannot open the bag (truncated or corrupt?): {type(err).__name__}: {err}") \
            from err
    return reader


# ----------------------------------------------------------------------------- pass 1: index
def index_bag(path: str | pathlib.Path, choices: Sequence[TopicChoice], distro: str | None = None,
              progress: Progress | None = None) -> BagIndex:
    """Check the bag carries every required topic with a type its role takes; read the receive times.

    Args:
        path: a rosbag2 directory (``metadata.yaml`` + storage files) or one ``.db3``/``.mcap`` file.
        choices: the roles and their topics.
        distro: ``humble`` or ``jazzy``: the typestore for messages the bag has no definition for
            (default: the bag's ``ros_distro``, else humble).
        progress: called now and then with a progress line (long bags).
    """
    path = pathlib.Path(path)
    reader = _opened(path, _reader(path))
    try:
        found = _connections(path, reader, choices)
        distro = _distro(distro, reader)
        chosen = [conn for conns in found.values() for conn in conns]
        role_of = {conn.id: role for role, conns in found.items() for conn in conns}
        times: dict[str, list[int]] = {role: [] for role in found}
        for _, conn, time_ns in _reading(path, reader, chosen, progress, "indexing"):
            times[role_of[conn.id]].append(time_ns)
    finally:
        reader.close()
    sorted_times, order = {}, {}
    for role, values in times.items():
        array = np.asarray(values, dtype=np.int64)
        order[role] = np.argsort(array, kind="stable")
        sorted_times[role] = array[order[role]]
    typenames = {role: conns[0].msgtype for role, conns in found.items()}
    by_role = {c.role: c for c in choices}
    return BagIndex(path, {role: by_role[role] for role in found}, typenames, sorted_times, order, distro)


def _connections(path: pathlib.Path, reader: Any, choices: Sequence[TopicChoice]) -> dict[str, list]:
    """role -> the bag's connections of its topic; a missing required topic or a wrong type is a BagError."""
    by_topic: dict[str, list] = {}
    for conn in reader.connections:
        by_topic.setdefault(conn.topic, []).append(conn)
    roles_of: dict[str, list[str]] = {}
    for choice in choices:
        roles_of.setdefault(choice.topic, []).append(choice.role)
    shared = {topic: roles for topic, roles in roles_of.items() if len(roles) > 1}
    if shared:
        raise ValueError(f"one topic per role: {', '.join(f'{t} is given for {r}' for t, r in shared.items())}")
    found = {}
    for choice in choices:
        conns = by_topic.get(choice.topic)
        if not conns:
            if choice.required:
                raise BagError(f"{path}: no topic {choice.topic!r} (role {choice.role!r}) in the bag; its topics: "
                               f"{', '.join(sorted(f'{t} ({c[0].msgtype})' for t, c in by_topic.items()))}")
            continue
        types = sorted({conn.msgtype for conn in conns})
        if len(types) != 1 or types[0] not in choice.typenames:
            raise BagError(f"{path}: topic {choice.topic!r} (role {choice.role!r}) carries {' and '.join(types)}; "
                           f"the role takes {' or '.join(choice.typenames)}")
        found[choice.role] = conns
    return found


def _distro(distro: str | None, reader: Any) -> str:
    chosen = distro or reader.ros_distro or "humble"
    if chosen not in DISTROS:
        if distro is None:  # a bag from another distro: its definitions (if any) decode it; else humble's
            return "humble"
        raise BagError(f"unknown ROS 2 distro {chosen!r}; known: {list(DISTROS)}")
    return chosen


def _reading(path: pathlib.Path, reader: Any, connections: list, progress: Progress | None,
             what: str) -> Iterator[tuple[bytes, Any, int]]:
    """``(raw, connection, time_ns)`` of the chosen connections, in the bag's order; a storage error
    mid-way (a truncated file) is a BagError naming the file."""
    total = sum(conn.msgcount for conn in connections) or 1
    last, count = time.monotonic(), 0
    messages = reader.messages(connections=connections)
    while True:
        try:
            conn, time_ns, raw = next(messages)
        except StopIteration:
            return
        except _read_errors() as err:
            raise BagError(f"{_where(path)}: cannot read the bag after {count} messages (truncated or corrupt?): "
                           f"{type(err).__name__}: {err}") from err
        count += 1
        if progress is not None and time.monotonic() - last > PROGRESS_EVERY_S:
            last = time.monotonic()
            progress(f"{what} {path.name}: {count}/{total} messages ({100 * count // total}%)")
        yield raw, conn, int(time_ns)


# ----------------------------------------------------------------------------- pass 2: messages
def bag_typestore(path: pathlib.Path, connections: Sequence[Any], distro: str):
    """A fresh rosbags typestore holding the definitions the bag carries for ``connections``, plus our
    typestore of ``distro`` (ackermann_msgs included) for the types the bag does not define."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, TypesysError, get_types_from_idl, get_types_from_msg, get_typestore

    types: dict = {}
    undefined = []
    try:
        for conn in connections:
            if conn.msgdef.format == MessageDefinitionFormat.MSG and conn.msgdef.data:
                types.update(get_types_from_msg(conn.msgdef.data, conn.msgtype))
            elif conn.msgdef.format == MessageDefinitionFormat.IDL and conn.msgdef.data:
                for part in conn.msgdef.data.split("=" * 80 + "\n"):
                    if part.strip():
                        types.update(get_types_from_idl(part.split("\n", 1)[1] if part.startswith("IDL: ") else part))
            else:
                undefined.append(conn.msgtype)
        ours = _with_nested(typestore(distro).fielddefs, undefined)
        types.update({name: fields for name, fields in ours.items() if name not in types})
        store = get_typestore(Stores.EMPTY)
        store.register(types)
    except (TypesysError, ValueError, IndexError) as err:
        raise BagError(f"{path}: the bag's message definitions cannot be read: {type(err).__name__}: {err}") from err
    for conn in connections:
        if conn.msgtype not in store.fielddefs:
            raise BagError(f"{path}: topic {conn.topic!r} carries {conn.msgtype}, an unknown message type (the bag "
                           f"stores no definition of it and ROS 2 {distro} has none)")
    return store


def _with_nested(fielddefs: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The definitions of ``names`` and of every message type nested in them (rosbags' fielddefs:
    name -> (constants, [(field, (node type, detail))]); node type 2 names a message, 3/4 are arrays)."""
    found: dict[str, Any] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in found or name not in fielddefs:
            continue
        found[name] = fielddefs[name]
        for _, (kind, detail) in fielddefs[name][1]:
            if int(kind) == 2:
                pending.append(detail)
            elif int(kind) in (3, 4) and int(detail[0][0]) == 2:
                pending.append(detail[0][1])
    return found


def read_messages(index: BagIndex, wanted: Mapping[str, np.ndarray], convert: Callable[[str, Message], Any],
                  progress: Progress | None = None) -> dict[str, dict[int, Any]]:
    """Deserialize the messages ``wanted`` (role -> indices into ``index.times_ns[role]``) and convert each.

    Returns role -> {sorted index: ``convert(role, message dict)``}. A message that does not decode,
    or that ``convert`` rejects (``ValueError``), is a BagError naming the topic and its time.
    """
    wanted_reading = {role: {int(index.order[role][i]): int(i) for i in np.unique(picks)}
                      for role, picks in wanted.items() if len(picks)}
    out: dict[str, dict[int, Any]] = {role: {} for role in wanted_reading}
    reader = _opened(index.path, _reader(index.path))
    try:
        conns = [c for c in reader.connections if any(c.topic == index.choices[r].topic for r in wanted_reading)]
        store = bag_typestore(index.path, conns, index.distro)
        role_of = {c.id: r for c in conns for r in wanted_reading if c.topic == index.choices[r].topic}
        seen = {role: 0 for role in wanted_reading}
        for raw, conn, time_ns in _reading(index.path, reader, conns, progress, "decoding"):
            role = role_of[conn.id]
            position, seen[role] = seen[role], seen[role] + 1
            if position in wanted_reading[role]:
                out[role][wanted_reading[role][position]] = _converted(index, role, conn, raw, time_ns, store, convert)
    finally:
        reader.close()
    return out


def _converted(index: BagIndex, role: str, conn: Any, raw: bytes, time_ns: int, store: Any,
               convert: Callable[[str, Message], Any]) -> Any:
    try:
        return convert(role, deserialize(store, conn.msgtype, raw))
    except ValueError as err:
        raise BagError(f"{index.path}: topic {conn.topic!r} (role {role!r}), message at {time_ns} ns: {err}") from err
