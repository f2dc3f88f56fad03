"""The learner's store and the actor's spool, in-process: what each keeps across crashes."""

import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest

from distributed_helpers import ACTION_DIM, SPEC, chunk, metadata
from robot_rl.data import read_episode, read_episodes
from robot_rl.distributed import store as store_module
from robot_rl.distributed.bounds import ValueBounds
from robot_rl.distributed.store import EpisodeStore, Status, chunk_path, episode_name, stored_keys, write_chunk
from robot_rl.distributed.spool import Spool, message_path
from robot_rl.transport import messages


def store(tmp_path) -> EpisodeStore:
    s = EpisodeStore(tmp_path, metadata(), SPEC, ACTION_DIM)
    s.recover()
    return s


def test_a_finished_episode_becomes_one_episode_file_and_its_chunks_go(tmp_path):
    s = store(tmp_path)
    for seq, (first, count, final) in enumerate([(0, 4, False), (4, 4, False), (8, 2, True)]):
        outcome = s.accept(chunk("a0", seq, 0, first, count, final))
        assert outcome.status is Status.STORED and outcome.stored_seq == seq
    episode = read_episode(tmp_path / "episodes" / episode_name("a0", 0))
    assert len(episode) == 10 and episode.terminated[-1] and not episode.truncated.any()
    np.testing.assert_array_equal(episode.observations["state"][:, 1], np.arange(11))  # every step once, in order
    assert episode.metadata["actor"] == "a0" and episode.metadata["first_seq"] == 0 and episode.metadata["last_seq"] == 2
    assert episode.metadata["partial"] is False and episode.metadata["source"] == "online"
    assert not list((tmp_path / "store" / "partial").rglob("*.npz"))
    assert s.transitions_stored == 10


def test_an_episode_too_large_to_keep_in_memory_is_joined_from_its_chunk_files(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_EPISODE_BYTES_IN_MEMORY", 100)  # the first chunk holds 92 bytes, two 172
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 4))
    assert s.open_episode("a0").chunks is not None
    s.accept(chunk("a0", 1, 0, 4, 4))
    assert s.open_episode("a0").chunks is None
    s.accept(chunk("a0", 2, 0, 8, 2, final=True))
    episode = read_episode(tmp_path / "episodes" / episode_name("a0", 0))
    np.testing.assert_array_equal(episode.observations["state"][:, 1], np.arange(11))


def test_duplicates_are_acked_not_stored_and_gaps_are_neither(tmp_path):
    s = store(tmp_path)
    assert s.accept(chunk("a0", 0, 0, 0, 3)).status is Status.STORED
    again = s.accept(chunk("a0", 0, 0, 0, 3))
    assert again.status is Status.DUPLICATE and again.stored_seq == 0
    gap = s.accept(chunk("a0", 2, 0, 6, 3))
    assert gap.status is Status.GAP and gap.stored_seq == 0 and "expected 1" in gap.reason
    assert s.transitions_stored == 3
    assert len(list((tmp_path / "store" / "partial" / "a0").rglob("c*.npz"))) == 1


def test_chunks_that_do_not_continue_the_episode_or_fit_the_spaces_are_refused(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 3))
    skipped = s.accept(chunk("a0", 1, 0, 5, 3))
    assert skipped.status is Status.INVALID and "continues at step 3" in skipped.reason
    wide = chunk("a0", 1, 0, 3, 3)
    wide = type(wide)(**{**wide.__dict__, "observations": {"state": np.zeros((3, 7), np.float32)}})
    assert "obs" in s.accept(wide).reason or "observation" in s.accept(wide).reason
    assert s.accept(chunk("bad/id", 0, 0, 0, 3)).status is Status.INVALID
    assert s.stored_seq("a0") == 0 and s.transitions_stored == 3


def test_a_newer_episode_closes_the_unfinished_one_as_truncated(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 4))
    s.accept(chunk("a0", 1, 0, 4, 4))
    outcome = s.accept(chunk("a0", 2, 3, 0, 2))  # the actor was killed and restarted (episodes 1, 2 never spooled)
    assert outcome.status is Status.STORED and [p.name for p in outcome.episodes] == [episode_name("a0", 0)]
    episode = read_episode(tmp_path / "episodes" / episode_name("a0", 0))
    assert len(episode) == 8 and episode.truncated[-1] and not episode.terminated.any()
    assert episode.metadata["partial"] is True
    assert s.open_episode("a0").episode == 3
    assert s.accept(chunk("a0", 3, 0, 8, 2)).status is Status.INVALID  # episode 0 is closed for good


def test_recovery_continues_open_episodes_and_per_actor_numbering(tmp_path):
    s = store(tmp_path)
    for seq, args in enumerate([(0, 0, 5, True), (1, 0, 3, False), (1, 3, 3, False)]):
        s.accept(chunk("a0", seq, *args))
    s.accept(chunk("a1", 0, 0, 0, 2))
    (tmp_path / "episodes" / ".episode.tmp").write_bytes(b"half")  # a crashed write
    again = EpisodeStore(tmp_path, metadata(), SPEC, ACTION_DIM)
    recovered = again.recover()
    assert len(recovered.episodes) == 1 and len(recovered.chunks) == 3
    assert again.stored_seq("a0") == 2 and again.stored_seq("a1") == 0 and again.stored_seq("a2") == -1
    assert again.transitions_stored == 5 + 6 + 2
    assert again.accept(chunk("a0", 3, 1, 6, 2, final=True)).status is Status.STORED
    assert not (tmp_path / "episodes" / ".episode.tmp").exists()
    keys = stored_keys(tmp_path)
    assert len(keys) == len(set(keys)) == 5 + 8 + 2


def test_an_episode_file_wins_over_leftover_chunks_after_a_crash(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 3))
    s.accept(chunk("a0", 1, 0, 3, 3, final=True))
    leftover = tmp_path / "store" / "partial" / "a0" / "ep000000"
    write_chunk(chunk_path(leftover, 0), chunk("a0", 0, 0, 0, 3))  # as if the clean-up never ran
    assert len(stored_keys(tmp_path)) == 6  # read as recovery reads it: the leftover is not counted again
    again = EpisodeStore(tmp_path, metadata(), SPEC, ACTION_DIM)
    recovered = again.recover()
    assert not leftover.exists() and not recovered.chunks
    assert again.transitions_stored == 6 and again.stored_seq("a0") == 1


def test_a_final_chunk_on_disk_without_its_episode_file_is_finished_on_recovery(tmp_path):
    directory = tmp_path / "store" / "partial" / "a0" / "ep000004"
    write_chunk(chunk_path(directory, 0), chunk("a0", 7, 4, 0, 3))
    write_chunk(chunk_path(directory, 3), chunk("a0", 8, 4, 3, 2, final=True))
    s = EpisodeStore(tmp_path, metadata(), SPEC, ACTION_DIM)
    recovered = s.recover()
    episodes, _ = read_episodes(tmp_path / "episodes")
    assert [len(e) for e in episodes] == [5] and s.stored_seq("a0") == 8 and not directory.exists()
    assert [c.seq for c in recovered.chunks] == [7, 8] and s.transitions_stored == 5  # still replayed, counted once


def test_a_stopped_actor_has_its_open_episode_closed_only_when_all_of_it_arrived(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 3))
    assert s.close_stopped("a0", last_seq=1) is None  # seq 1 is still on its way
    path = s.close_stopped("a0", last_seq=0)
    assert path.name == episode_name("a0", 0) and read_episode(path).truncated[-1]
    assert s.finalize_stale() == []


# ------------------------------------------------------------------------------ spool
def spooled(spool: Spool, seq: int, episode: int, first_step: int, count: int, final: bool = False) -> bytes:
    c = chunk("a0", seq, episode, first_step, count, final)
    data = messages.pack(c)
    spool.add(c, data, weights_version=seq)
    return data


def test_spool_writes_each_message_and_its_counters_atomically(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert spool.open().next_seq == 0
    data = spooled(spool, 0, 0, 0, 4)
    assert message_path(spool.directory, 0).read_bytes() == data == spool.read(0)
    assert json.loads((spool.directory / "counters.json").read_text()) == {
        "next_seq": 1, "next_episode": 1, "transitions_produced": 4, "weights_version": 0}
    assert not list(spool.directory.glob(".*.tmp"))
    with pytest.raises(ValueError, match="not the next one"):
        spool.add(chunk("a0", 5, 0, 4, 1), b"", 0)


def test_spool_drops_what_the_learner_acked(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    for seq in range(4):
        spooled(spool, seq, 0, seq * 2, 2)
    assert spool.drop_through(1) == 2
    assert spool.pending() == [2, 3] and spool.pending_transitions() == 4
    assert sorted(p.name for p in tmp_path.glob("*.msg")) == ["000000000002.msg", "000000000003.msg"]


def test_a_restarted_actor_continues_numbering_and_resends_what_is_left(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    spooled(spool, 0, 0, 0, 3)
    spooled(spool, 1, 0, 3, 3, final=True)
    spooled(spool, 2, 1, 0, 3)
    spool.drop_through(0)
    # A crash between a message file and its counters: the message is there, the counters are not.
    late = chunk("a0", 3, 1, 3, 2)
    message_path(tmp_path, 3).write_bytes(messages.pack(late))
    (tmp_path / ".000000000004.msg.ab12.tmp").write_bytes(b"torn")
    again = Spool(tmp_path)
    counters = again.open()
    assert (counters.next_seq, counters.next_episode, counters.transitions_produced) == (4, 2, 11)
    assert again.pending() == [1, 2, 3] and not list(tmp_path.glob(".*.tmp"))
    assert messages.unpack(again.read(3)).first_step == 3


def test_a_batch_accepted_without_fsync_is_synced_once_and_a_torn_unsynced_chunk_is_resent(tmp_path):
    s = store(tmp_path)
    for seq, (first, count, final) in enumerate([(0, 4, False), (4, 4, False), (8, 2, True), (0, 3, False)]):
        episode = 0 if seq < 3 else 1
        assert s.accept(chunk("a0", seq, episode, first, count, final), durable=False).status is Status.STORED
    assert s.sync() == 1  # episode 0 was consolidated (its episode file is fsynced); episode 1's chunk remains
    assert s.sync() == 0
    s.accept(chunk("a0", 4, 1, 3, 3), durable=False)
    s.accept(chunk("a0", 5, 1, 6, 3), durable=False)
    # a crash before sync(): the middle chunk's file came back empty (its data never reached the disk)
    chunk_path(tmp_path / "store" / "partial" / "a0" / "ep000001", 3).write_bytes(b"")
    again = store(tmp_path)
    assert again.stored_seq("a0") == 3 and again.transitions_stored == 13  # only what precedes the torn file
    assert again.accept(chunk("a0", 4, 1, 3, 3)).status is Status.STORED  # the actor resends from its last ack
    assert again.accept(chunk("a0", 5, 1, 6, 3)).status is Status.STORED
    assert sorted(stored_keys(tmp_path)) == sorted(set(stored_keys(tmp_path))) and len(stored_keys(tmp_path)) == 19


def test_a_spool_batch_is_synced_once_and_a_torn_unsynced_message_drops_the_rest_of_its_batch(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    spooled(spool, 0, 0, 0, 3)
    for seq in (1, 2, 3):
        spool.add(chunk("a0", seq, 0, seq * 3, 3), messages.pack(chunk("a0", seq, 0, seq * 3, 3)), 0, durable=False)
    assert json.loads((tmp_path / "counters.json").read_text())["next_seq"] == 1  # counters wait for sync()
    assert spool.sync() == 3 and spool.sync() == 0
    assert json.loads((tmp_path / "counters.json").read_text())["next_seq"] == 4
    for seq in (4, 5, 6):
        spool.add(chunk("a0", seq, 0, seq * 3, 3), messages.pack(chunk("a0", seq, 0, seq * 3, 3)), 0, durable=False)
    # a crash before sync(): nothing of this batch was sent; message 5's data never reached the disk
    message_path(tmp_path, 5).write_bytes(b"")
    counters = Spool(tmp_path).open()
    assert (counters.next_seq, counters.transitions_produced) == (5, 15)  # 4 is kept; 5 and 6 set aside, never counted
    assert sorted(p.name for p in tmp_path.glob("*.bad")) == ["000000000005.bad", "000000000006.bad"]


# ------------------------------------------------------------------------------ hostile or damaged input
def test_a_resent_seq_is_acked_only_if_it_holds_what_was_stored(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 3))
    s.accept(chunk("a0", 1, 0, 3, 3, final=True))
    assert s.accept(chunk("a0", 1, 0, 3, 3, final=True)).status is Status.DUPLICATE  # a lost ack: resent as it was
    other = s.accept(chunk("a0", 1, 0, 3, 3, final=True, intervention=True))
    assert other.status is Status.INVALID and "different content" in other.reason
    again = store(tmp_path)  # episode 0 is an episode file now: its chunks' contents are not kept
    assert again.accept(chunk("a0", 1, 0, 3, 3, final=True)).status is Status.INVALID
    assert again.stored_seq("a0") == 1 and again.transitions_stored == 6


def test_values_out_of_bounds_are_refused_with_what_and_where(tmp_path):
    bounds = ValueBounds.for_space(type("Box", (), {"low": np.full(ACTION_DIM, -1.0), "high": np.full(ACTION_DIM, 1.0)}))
    s = EpisodeStore(tmp_path, metadata(), SPEC, ACTION_DIM, bounds)
    s.recover()
    big = chunk("a0", 0, 0, 0, 3)
    problems = {"reward 3e+38 at step 1 is outside +-10000": dataclasses.replace(big, reward=np.array([0, 3e38, 0], np.float32)),
                "action[1] 1.5 at step 0 is outside the action space [-1, 1]": dataclasses.replace(big, action=np.array([[0, 1.5]] * 3, np.float32)),
                "observation 'state' 2e+06 at row, column (2, 0) is outside +-1e+06": dataclasses.replace(
                    big, observations={"state": np.array([[0, 0, 0]] * 2 + [[2e6, 0, 0]] * 2, np.float32)})}
    for reason, bad in problems.items():
        outcome = s.accept(bad)
        assert outcome.status is Status.INVALID and reason in outcome.reason, outcome.reason
    assert s.accept(big).status is Status.STORED and s.transitions_stored == 3


def test_a_resync_continues_at_the_actors_first_held_seq_and_skips_what_continues_a_lost_episode(tmp_path):
    s = store(tmp_path)
    s.accept(chunk("a0", 0, 0, 0, 3))
    s.accept(chunk("a0", 1, 0, 3, 3))
    assert s.resync("a0", 2) is None  # nothing missing
    assert s.accept(chunk("a0", 5, 1, 6, 3)).status is Status.GAP
    assert s.resync("a0", 5) == (2, 4)  # seqs 2..4 were lost (acked, then a damaged file)
    assert read_episode(tmp_path / "episodes" / episode_name("a0", 0)).metadata["partial"] is True
    skipped = s.accept(chunk("a0", 5, 1, 6, 3))  # continues episode 1, whose start was lost
    assert skipped.status is Status.SKIPPED and skipped.stored_seq == 5
    assert s.accept(chunk("a0", 5, 1, 6, 3)).status is Status.DUPLICATE
    assert s.accept(chunk("a0", 6, 2, 0, 3)).status is Status.STORED
    assert s.stored_seq("a0") == 6 and s.transitions_stored == 9


def test_an_episode_file_the_disk_has_no_room_for_is_written_once_it_has(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a 1 MB tmpfs to fill (needs root)")
    try:
        s = store(disk)
        s.accept(chunk("a0", 0, 0, 0, 40))
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as file:  # leave about one page: room for a chunk, not for the episode
            file.write(bytes(os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 6000))
        outcome = s.accept(chunk("a0", 1, 0, 40, 1, final=True))
        assert outcome.status is Status.STORED and outcome.episodes == [] and s.unwritten_episodes == 1
        assert not list((disk / "episodes").iterdir()) and (disk / "store" / "partial" / "a0" / "ep000000").exists()
        assert s.retry_episode_files() == [] and s.unwritten_episodes == 1  # still full
        filler.unlink()
        assert [p.name for p in s.retry_episode_files()] == [episode_name("a0", 0)] and s.unwritten_episodes == 0
        assert len(read_episode(disk / "episodes" / episode_name("a0", 0))) == 41
        assert not (disk / "store" / "partial" / "a0" / "ep000000").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
