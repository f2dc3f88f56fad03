"""`robot-rl launch` runs any family's task: the puck family (sim/puck + tasks/puck, only new files)
with a learner and an actor as subprocesses, stored and replayed like pick_cube."""

import re

from distributed_helpers import TINY, Proc, free_ports
from robot_rl.data import read_episodes


def test_launch_runs_the_puck_family(tmp_path):
    ports = free_ports()
    launch = Proc("launch", ["launch", "--task", "puck_reach", "--actors", "1", *TINY, "--env-kwargs", "max_episode_steps=20",
                             "--out", str(tmp_path), "--name", "puck", "--steps", "100000", "--learning-starts", "32",
                             "--eval-every", "600", "--eval-episodes", "1", "--threads", "1", "--actor-max-hz", "0",
                             "--bind", f"tcp://127.0.0.1:{ports[0]}", "--weights-bind", f"tcp://127.0.0.1:{ports[1]}"], tmp_path)
    try:
        launch.wait_for(r"\[learner\] eval at \d+ transitions", 120)  # learned and evaluated in the learner's sim
        launch.wait_for(r"\[actor-0\] actor actor-0: running the learner's weights", 60)
        assert launch.interrupt(timeout_s=40) == 130
    finally:
        launch.cleanup()
    text = launch.text
    assert "Traceback" not in text and re.search(r"\[learner\] updates \d+ ", text), text[-6000:]  # the whole traceback
    episodes, errors = read_episodes(tmp_path / "puck" / "episodes", task="puck_reach")
    finished = [e for e in episodes if not e.metadata["partial"]]
    assert not errors and len(finished) >= 3
    assert all(e.observations["state"].shape[1] == 6 and e.actions.shape[1] == 2 for e in finished)
    assert (tmp_path / "puck" / "eval.csv").read_text().count("\n") >= 2 and (tmp_path / "puck" / "curve.png").exists()
