"""`robot-rl launch` restarts a learner that died (with --resume) while its actors keep running,
checkpoints by time as well as by updates, and stops everything in order on SIGTERM even when it
was started as a script's background job (SIGINT ignored)."""

import os
import re
import signal

from distributed_helpers import TINY, Proc, alive, counters, free_ports, wait_until
from robot_rl.distributed.store import stored_keys


def test_a_killed_learner_is_restarted_with_resume_and_says_how_many_updates_were_lost(tmp_path):
    ports = free_ports()
    launch = Proc("launch", ["launch", "--task", "pick_cube", "--actors", "1", *TINY, "--env-kwargs", "max_episode_steps=20",
                             "--out", str(tmp_path), "--name", "run", "--steps", "100000", "--learning-starts", "32",
                             "--no-eval", "--threads", "1", "--actor-max-hz", "50", "--checkpoint-every", "100000",
                             "--checkpoint-every-s", "1", "--bind", f"tcp://127.0.0.1:{ports[0]}",
                             "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path, ignore_sigint=True)
    run = tmp_path / "run"
    try:
        launch.wait_for(r"\[learner\] updates \d+ ", 90)
        wait_until(lambda: (run / "checkpoint.pt").exists(), 30, "a checkpoint by time (--checkpoint-every-s 1)")
        pids = dict(re.findall(r"\[launch\] started (\S+) \(pid (\d+)\)", launch.text))
        os.kill(int(pids["learner"]), signal.SIGKILL)
        launch.wait_for(r"\[launch\] learner exited with -9; restarting it with --resume", 30)
        match = launch.wait_for(r"\[learner\] resumed .*: checkpoint at update (\d+).*; (no|\d+) updates? since then (was|were) lost", 90)
        launch.wait_for(r"resumed[\s\S]*\[learner\] updates \d+ ", 60)  # trains again
        assert alive(int(pids["actor-0"]))  # the actor kept running
        assert launch.interrupt(timeout_s=60, sig=signal.SIGTERM) == 130
    finally:
        launch.cleanup()
    text = launch.text
    assert match and "Traceback" not in text
    assert "SIGKILL" not in text, text[-3000:]  # every process stopped in order
    assert "[actor-0] actor actor-0 stopped:" in text and "0 spooled and not yet acked" in text and "[learner] done:" in text
    keys = stored_keys(run)
    assert len(keys) == len(set(keys)) == counters(run / "spool" / "actor-0")["transitions_produced"]
