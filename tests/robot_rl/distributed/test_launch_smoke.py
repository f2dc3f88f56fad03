"""`robot-rl launch`: one learner and one sim actor as subprocesses, merged output, Ctrl-C stops all."""

import os
import re
import time

from distributed_helpers import TINY, Proc, free_ports
from robot_rl.data import read_episodes
from robot_rl.distributed.store import stored_keys


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_launch(tmp_path) -> Proc:
    """`robot-rl launch` of one fast sim actor and a tiny learner, writing <tmp_path>/run."""
    ports = free_ports()
    return Proc("launch", ["launch", "--task", "pick_cube", "--actors", "1", *TINY, "--env-kwargs", "max_episode_steps=20",
                           "--out", str(tmp_path), "--name", "run", "--steps", "100000", "--learning-starts", "32",
                           "--no-eval", "--threads", "1", "--actor-max-hz", "0", "--bind", f"tcp://127.0.0.1:{ports[0]}",
                           "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path,
                ignore_sigint=True)  # as a script's background job starts it (`robot-rl launch ... &`)


def test_launch_runs_learner_and_actor_and_ctrl_c_stops_them_all(tmp_path):
    launch = start_launch(tmp_path)
    try:
        launch.wait_for(r"\[learner\] updates \d+ .*transitions (1\d\d|[2-9]\d\d|\d{4,})/", 90)  # >= 100 stored
        pids = [int(p) for p in re.findall(r"\[launch\] started \S+ \(pid (\d+)\)", launch.text)]
        assert launch.interrupt(timeout_s=40) == 130
    finally:
        launch.cleanup()
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    text = launch.text
    assert "[actor-0] actor actor-0: connected to the learner" in text
    assert re.search(r"\[learner\] \d\d:\d\d:\d\d INFO actor 'actor-0' connected", text)
    assert "[learner] done:" in text and "[actor-0] actor actor-0 stopped:" in text
    assert text.index("[actor-0] actor actor-0 stopped:") < text.index("[learner] done:")  # actors flush first
    assert "0 spooled and not yet acked" in text and "INFO actor 'actor-0' stopped" in text
    assert (tmp_path / "run" / "keys" / "learner.key_secret").exists()
    assert (tmp_path / "run" / "spool" / "actor-0" / "counters.json").exists()
    episodes, errors = read_episodes(tmp_path / "run" / "episodes", task="pick_cube")
    finished = [e for e in episodes if not e.metadata["partial"]]
    assert not errors and len(finished) >= 4 and all(len(e) == 20 and e.truncated[-1] for e in finished)
    assert sum(len(e) for e in episodes) == len(set(stored_keys(tmp_path / "run")))  # all closed: nothing left open
    assert "Traceback" not in text


def test_children_of_a_killed_launch_stop_instead_of_running_on(tmp_path):
    launch = start_launch(tmp_path)
    pids: list[int] = []
    try:
        launch.wait_for(r"\[learner\] updates \d+ ", 90)
        pids = [int(p) for p in re.findall(r"\[launch\] started \S+ \(pid (\d+)\)", launch.text)]
        launch.kill9()  # launch cannot forward anything now
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pids) == 2 and not any(alive(pid) for pid in pids), "the learner/actor outlived a SIGKILLed launch"
    finally:
        launch.cleanup()
        for pid in pids:
            if alive(pid):
                os.kill(pid, 9)
    keys = stored_keys(tmp_path / "run")
    assert keys and len(keys) == len(set(keys))  # what was stored stays readable, once each
