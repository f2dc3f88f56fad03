"""Recorded robot data: the on-disk episode format (see :mod:`robot_rl.data.episodes`)."""

from robot_rl.data.episodes import (
    FORMAT_VERSION,
    Episode,
    EpisodeFileError,
    EpisodeRecorder,
    read_episode,
    read_episodes,
    write_episode,
)

__all__ = [
    "FORMAT_VERSION",
    "Episode",
    "EpisodeFileError",
    "EpisodeRecorder",
    "read_episode",
    "read_episodes",
    "write_episode",
]
