"""``robot-rl import-bag``: a rosbag2 recording of teleoperation -> robot_rl episode files.

1. The env is built as ``robot-rl record`` builds it (task + registered backend or rig, never
   connected): its spec, control rate, observation and action spaces and metadata.
2. The bag's topics are chosen per role (the family's :class:`~drivers.ros2.messages_common.Topic`
   defaults under ``--namespace``, or ``--topics ROLE=/topic``), their types checked, their receive
   times read (:mod:`drivers.ros2.bag_reader`).
3. The streams are aligned to the control rate (:mod:`drivers.ros2.bag_align`: zero-order hold of
   the newest message at or before each tick; stale or missing required messages split).
4. Each run of ticks is replayed through a :class:`~robot_rl.env.RobotEnv` over a
   :class:`~drivers.ros2.bag_replay.ReplayBackend`: the task starts an episode at the recorded state,
   and observations, executed actions (the recorded command mapped by ``task.command_to_action``),
   rewards and episode ends are the env's, exactly as when recording live. An episode ends where the
   run ends (truncated), at the task's time limit or its own end; the next starts at that tick.
5. All or nothing: every episode is built in memory first, then written into a temporary directory
   beside ``--out`` and moved in; on any error nothing of this import is left behind.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable, Mapping

import numpy as np

from drivers.ros2.bag_align import AlignReport, Segment, align, bool_boundaries, split_boundaries
from drivers.ros2.bag_episodes import Unstartable, segment_episodes, segment_ticks, write_all
from drivers.ros2.bag_reader import BagError, BagIndex, TopicChoice, index_bag, read_messages
from drivers.ros2.bag_replay import ReplayBackend
from drivers.ros2.msg_dicts import NS_PER_S, Message
from robot_rl.data import EpisodeRecorder

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
EPISODE_TYPES = ("std_msgs/msg/Bool", "std_msgs/msg/Empty")
EPISODE_ROLE = "episode"
CAMERA_PREFIX = "camera/"
SOURCE = "ros2_bag"


@dataclasses.dataclass(frozen=True)
class BagImport:
    """What to import and how (the fields of ``robot-rl import-bag``, :mod:`drivers.ros2.bag_command`).

    Attributes:
        bag: a rosbag2 directory, or one ``.db3``/``.mcap`` file.
        task, backend, obs: the env whose episodes these become (the backend gives the spec only).
        out: the episode directory (created; numbering continues after existing files).
        topics: role -> topic, overriding the family's default topic names.
        cameras: camera name -> image topic (``sensor_msgs/Image`` or ``CompressedImage``).
        namespace: prefix of the default (relative) topic names.
        command: the command role (default: the first of the family's command roles in the bag).
        rate_hz: the tick rate (default: the task's control rate); stored as the episodes' ``control_hz``.
        episode_topic: a ``std_msgs/Bool`` (True: an episode runs) or ``std_msgs/Empty`` (each
            message starts a new episode) topic of episode boundaries.
        episode_gap_s: a command older than this ends the episode (a pause in the teleoperation).
        max_age_s: a state or camera message older than this at a tick is stale (the run splits there).
        human: the bag is teleoperation: every step is stored as a human intervention (as
            ``robot-rl record`` stores a teleop device's).
        distro: the ROS 2 distro of messages the bag carries no definition of (default: the bag's).
        options: env options (``--env-kwargs``, ``rig=``).
    """

    bag: pathlib.Path
    task: str
    out: pathlib.Path
    backend: str = "sim"
    obs: str = "state"
    topics: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cameras: Mapping[str, str] = dataclasses.field(default_factory=dict)
    namespace: str = "/"
    command: str | None = None
    rate_hz: float | None = None
    episode_topic: str | None = None
    episode_gap_s: float = 2.0
    max_age_s: float = 0.25
    human: bool = True
    distro: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("episode_gap_s", "max_age_s") + (("rate_hz",) if self.rate_hz is not None else ()):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")


@dataclasses.dataclass
class ImportSummary:
    """What an import wrote, and what it left out."""

    files: list[pathlib.Path]
    steps: int
    successes: int
    report: AlignReport
    unstartable: Unstartable
    rate_hz: float


# ----------------------------------------------------------------------------- topics
def resolve_topic(namespace: str, name: str) -> str:
    """An absolute topic name: ``name`` as is if absolute, else under ``namespace``."""
    return name if name.startswith("/") else "/" + "/".join(p for p in (*namespace.split("/"), name) if p)


def topic_choices(settings: BagImport, family: Any, spec: Any) -> list[TopicChoice]:
    """The roles to read: the family's state and command topics, the cameras (pixels), the episode topic."""
    known = {t.role for t in (*family.state_topics, *family.command_topics)}
    unknown = sorted(set(settings.topics) - known)
    if unknown:
        raise ValueError(f"--topics: unknown role(s) {unknown} for the {family.family} family; roles: {sorted(known)}")
    alternatives = [t.role for t in family.command_topics if not t.required]
    if settings.command is not None and settings.command not in alternatives:
        raise ValueError(f"--command {settings.command!r}: the {family.family} family's alternative command roles "
                         f"are {alternatives or 'none (it reads all of its command roles)'}")
    name = lambda role, default: resolve_topic(settings.namespace, settings.topics.get(role, default))  # noqa: E731
    choices = [TopicChoice(t.role, name(t.role, t.default_name), (t.typename,), t.required) for t in family.state_topics]
    choices += [TopicChoice(t.role, name(t.role, t.default_name), (t.typename,), t.required or t.role == settings.command)
                for t in family.command_topics if t.required or settings.command in (None, t.role)]
    choices += camera_choices(settings, spec)
    if settings.episode_topic:
        choices.append(TopicChoice(EPISODE_ROLE, resolve_topic(settings.namespace, settings.episode_topic),
                                   EPISODE_TYPES, True))
    return choices


def camera_choices(settings: BagImport, spec: Any) -> list[TopicChoice]:
    """With ``--obs pixels``, one image topic per camera of the spec (default ``camera/<name>/image_raw``)."""
    if settings.obs != "pixels":
        if settings.cameras:
            raise ValueError("--cameras: camera images are observed only with --obs pixels")
        return []
    unknown = sorted(set(settings.cameras) - set(spec.cameras))
    if unknown:
        raise ValueError(f"--cameras: the backend observes cameras {sorted(spec.cameras)}, not {unknown}")
    return [TopicChoice(CAMERA_PREFIX + cam, resolve_topic(settings.namespace, settings.cameras.get(
        cam, f"camera/{cam}/image_raw")), IMAGE_TYPES, True) for cam in spec.cameras]


def command_roles(index: BagIndex, family: Any) -> tuple[str, ...]:
    """The command roles a tick's command is made of: the family's required ones (the arm's pose target
    and gripper), else the first of its alternatives the bag carries (the car's ackermann or cmd_vel)."""
    required = tuple(t.role for t in family.command_topics if t.required)
    if required:
        return required
    for topic in family.command_topics:
        if topic.role in index.choices:
            return (topic.role,)
    looked = [f"{c.topic} ({c.role})" for c in index.choices.values() if c.role in {t.role for t in family.command_topics}]
    raise BagError(f"{index.path}: no command topic in the bag; looked for {', '.join(looked) or 'none'} "
                   f"(--topics ROLE=/topic names another)")


# ----------------------------------------------------------------------------- converting messages
def converter(spec: Any) -> Callable[[str, Message], Any]:
    """role, message dict -> what a tick keeps: a camera frame at the spec's size, the episode flag,
    else the message dict itself (states and commands are made per tick from the messages held)."""

    def convert(role: str, message: Message) -> Any:
        if role.startswith(CAMERA_PREFIX):
            return camera_frame(message, spec.cameras[role[len(CAMERA_PREFIX):]].shape)
        if role == EPISODE_ROLE:
            return bool(message["data"]) if "data" in message else None
        return message

    return convert


def camera_frame(message: Message, shape: tuple[int, int, int]) -> np.ndarray:
    """An Image or CompressedImage dict -> RGB ``uint8`` of ``shape`` (resized with area averaging, no crop)."""
    import cv2

    from drivers.ros2.images import compressed_image_from_message, image_from_message

    frame = compressed_image_from_message(message) if "format" in message else image_from_message(message)
    if frame.shape[:2] != shape[:2]:
        frame = cv2.resize(frame, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame, dtype=np.uint8)


# ----------------------------------------------------------------------------- the import
def import_bag(settings: BagImport, progress: Callable[[str], None] = print) -> ImportSummary:
    """Import ``settings.bag`` into ``settings.out`` (module docstring); a BagError or ValueError
    naming the file or topic, and nothing written, for a bag that cannot be imported."""
    import robot_rl
    from drivers.ros2.families import family_messages

    options = dict(settings.options) | ({"control_hz": settings.rate_hz} if settings.rate_hz else {})
    env = robot_rl.make(settings.task, backend=settings.backend, obs=settings.obs, **options).unwrapped
    try:
        family = family_messages(env.task.family)
        index = index_bag(settings.bag, topic_choices(settings, family, env.backend.spec), settings.distro, progress)
        cmds = command_roles(index, family)
        convert = converter(env.backend.spec)
        segments, report = align_bag(index, family, cmds, settings, env.control_hz, convert)
        progress(report_line(report, env.control_hz))
        if not segments:
            raise BagError(f"{settings.bag}: no usable ticks: {report_line(report, env.control_hz)}")
        data = read_messages(index, wanted_messages(segments), convert, progress)
        episodes, unstartable = replay_segments(env, family, cmds, segments, data, settings, index, progress)
        if not episodes:
            raise BagError(f"{settings.bag}: the task {settings.task!r} could begin no episode at any of the "
                           f"{report.used} usable ticks; the first error: {unstartable.reason}")
        files = write_all(episodes, settings.out)
    finally:
        env.close()
    return ImportSummary(files, sum(len(e) for e in episodes), sum(e.success for e in episodes), report,
                         unstartable, env.control_hz)


def align_bag(index: BagIndex, family: Any, cmds: tuple[str, ...], settings: BagImport, rate_hz: float,
              convert: Callable[[str, Message], Any]) -> tuple[list[Segment], AlignReport]:
    """The segments of usable ticks: required roles, max ages (the commands' is the episode gap), boundaries."""
    unused = {t.role for t in family.command_topics} - set(cmds) | {EPISODE_ROLE}
    times = {role: t for role, t in index.times_ns.items() if role not in unused}
    required = [role for role in times if role in cmds or index.choices[role].required]
    max_age_ns = {role: round((settings.episode_gap_s if role in cmds else settings.max_age_s) * NS_PER_S)
                  for role in times}
    return align(times, required, round(NS_PER_S / rate_hz), max_age_ns, episode_boundaries(index, convert))


def episode_boundaries(index: BagIndex, convert: Callable[[str, Message], Any]) -> list:
    """The markers of the episode topic (none without one): Bool starts/ends, Empty splits."""
    if EPISODE_ROLE not in index.times_ns:
        return []
    times = index.times_ns[EPISODE_ROLE]
    if index.typenames[EPISODE_ROLE] == "std_msgs/msg/Empty":
        return split_boundaries(times)
    values = read_messages(index, {EPISODE_ROLE: np.arange(len(times))}, convert)[EPISODE_ROLE]
    return bool_boundaries(times, [values[i] for i in range(len(times))])


def wanted_messages(segments: list[Segment]) -> dict[str, np.ndarray]:
    """role -> the indices of the messages some usable tick holds."""
    picks = {role: np.concatenate([s.picks[role] for s in segments]) for role in segments[0].picks}
    return {role: np.unique(p[p >= 0]) for role, p in picks.items()}


def replay_segments(env: Any, family: Any, cmds: tuple[str, ...], segments: list[Segment],
                    data: Mapping[str, Mapping[int, Any]], settings: BagImport, index: BagIndex,
                    progress: Callable[[str], None]) -> tuple[list, Unstartable]:
    """Every segment's episodes (:func:`~drivers.ros2.bag_episodes.segment_episodes`), printing one line each."""
    from robot_rl.env import RobotEnv
    from robot_rl.human.recording import robot_env_metadata

    metadata = robot_env_metadata(env, settings.backend, SOURCE) | import_metadata(settings, index, cmds, env.control_hz)
    recorder = EpisodeRecorder(metadata)
    state_roles = [r for r in segments[0].picks if r not in cmds and not r.startswith(CAMERA_PREFIX)]
    cameras = {role[len(CAMERA_PREFIX):]: role for role in segments[0].picks if role.startswith(CAMERA_PREFIX)}
    make_env = lambda replay: RobotEnv(replay, env.task, obs=env.obs_mode, control_hz=env.control_hz)  # noqa: E731
    episodes, unstartable = [], Unstartable()
    for segment in segments:
        ticks = segment_ticks(segment, data, family, env.backend.spec, state_roles, cmds, cameras, str(settings.bag))
        replay = ReplayBackend(env.backend, ticks.states, ticks.commands, ticks.frames, 1.0 / env.control_hz)
        for episode in segment_episodes(make_env, replay, recorder, segment.ticks_ns, settings.human, len(episodes),
                                        unstartable):
            start_s = (episode.metadata["bag_start_ns"] - index.start_ns) / NS_PER_S
            progress(f"episode {len(episodes) + 1}: {len(episode)} steps from {start_s:.2f} s into the bag, "
                     f"{'success' if episode.success else 'no success'} ({episode.metadata['end_reason']})")
            episodes.append(episode)
    return episodes, unstartable


def import_metadata(settings: BagImport, index: BagIndex, cmds: tuple[str, ...], rate_hz: float) -> dict[str, Any]:
    """What every episode of this import records about its origin."""
    topics = {role: {"topic": index.choices[role].topic, "type": index.typenames[role]} for role in index.choices}
    alignment = {"hold": "newest message at or before each tick (receive time)", "max_age_s": settings.max_age_s,
                 "episode_gap_s": settings.episode_gap_s}
    return {"bag": str(pathlib.Path(settings.bag).resolve()), "bag_rate_hz": float(rate_hz), "bag_topics": topics,
            "bag_command_roles": list(cmds), "bag_alignment": alignment}


def report_line(report: AlignReport, rate_hz: float) -> str:
    """One line: ticks on the grid, used, and why the others were not."""
    stale = ", ".join(f"{role} {n}" for role, n in report.stale.items() if n)
    return (f"aligned at {rate_hz:g} Hz: {report.ticks} ticks, {report.used} used; stale or missing: "
            f"{stale or 'none'}; outside episodes: {report.outside}; lone ticks: {report.lone}")
