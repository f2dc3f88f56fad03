"""``robot-rl import-bag`` end to end: bags written here with rosbags (sqlite3 and MCAP) from a MuJoCo car
driven by car_lap's expert, imported, and compared with what the live env recorded at the same states."""

import dataclasses
import pathlib

import numpy as np
import pytest

rosbags = pytest.importorskip("rosbags", reason="the ros extra (rosbags) is not installed")

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import get_types_from_msg, get_typestore, Stores  # noqa: E402

import robot_rl  # noqa: E402
from drivers.ros2 import bag_reader  # noqa: E402
from drivers.ros2.bag_episodes import write_all  # noqa: E402
from drivers.ros2.bag_import import BagImport, import_bag  # noqa: E402
from drivers.ros2.bag_reader import BagError  # noqa: E402
from drivers.ros2.families import Frames, family_messages  # noqa: E402
from drivers.ros2.images import compressed_image_message, image_message  # noqa: E402
from drivers.ros2.msg_dicts import serialize, typestore  # noqa: E402
from robot_rl.cli import COMMANDS, load_plugin_commands, main  # noqa: E402
from robot_rl.data import read_episode  # noqa: E402
from tasks.car.base import CarTask  # noqa: E402

STEPS = 30
T0_NS = 1_700_000_000_000_000_000
PERIOD_NS = 50_000_000  # car_lap's 20 Hz
MS = 1_000_000
CAR = family_messages("car")


@dataclasses.dataclass
class Drive:
    """A live car_lap run: states 0..STEPS, the commands sent, and what the env recorded."""

    spec: object
    states: list
    commands: list
    pixel_obs: list
    state_obs: list
    actions: np.ndarray
    rewards: np.ndarray


@pytest.fixture(scope="module")
def drive() -> Drive:
    env = robot_rl.make("car_lap", backend="sim", obs="pixels")
    base = env.unwrapped
    obs, _ = env.reset(seed=3)
    states, commands, pixel_obs, state_obs, actions, rewards = [base.state], [], [obs], [], [], []
    state_obs.append(base.task.observe(base.state, "state"))
    for _ in range(STEPS):
        before = base.state
        obs, reward, terminated, truncated, info = env.step(base.task.expert(before))
        assert not (terminated or truncated)
        # The command the car received, from the executed action (the car family's linear mapping).
        commands.append(CarTask.action_to_command(base.task, info["executed_action"], before, base.backend.spec))
        states.append(base.state)
        pixel_obs.append(obs)
        state_obs.append(base.task.observe(base.state, "state"))
        actions.append(info["executed_action"])
        rewards.append(reward)
    spec = base.backend.spec
    env.close()
    return Drive(spec, states, commands, pixel_obs, state_obs, np.array(actions), np.array(rewards))


def tick_ns(k: int) -> int:
    return T0_NS + k * PERIOD_NS


def car_messages(drive: Drive, command_role: str = "ackermann", skip_commands: range = range(0)) -> list:
    """``(topic, type, receive time, message)``: the state k stamped at tick k and received 2 ms later,
    the command sent after it 1 ms after the tick (so tick k + 2 ms holds state k and command k)."""
    topics = {t.role: t for t in (*CAR.state_topics, *CAR.command_topics)}
    out = []
    for k, state in enumerate(drive.states):
        for role, message in CAR.state_to_messages(state, drive.spec, tick_ns(k), Frames()).items():
            if role != "battery":  # the sim has no battery (nan)
                out.append(("/" + topics[role].default_name, topics[role].typename, tick_ns(k) + 2 * MS, message))
    for k, command in enumerate(drive.commands):
        if k not in skip_commands:
            message = CAR.command_to_message(command, drive.spec, command_role, tick_ns(k) + MS, Frames())
            out.append(("/" + topics[command_role].default_name, topics[command_role].typename, tick_ns(k) + MS,
                        message))
    return out


def camera_messages(drive: Drive, compressed: bool) -> list:
    """The front camera frame of each state, published at twice the observed size (the import shrinks it)."""
    out = []
    for k, obs in enumerate(drive.pixel_obs):
        big = np.repeat(np.repeat(obs["front"], 2, axis=0), 2, axis=1)
        message = compressed_image_message(big, tick_ns(k), "front", fmt="png") if compressed else \
            image_message(big, tick_ns(k), "front")
        typename = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        out.append(("/camera/front/image_raw", typename, tick_ns(k) + 2 * MS, message))
    return out


def write_bag(path: pathlib.Path, plugin: StoragePlugin, messages: list, store=None,
              definitions: bool = True) -> pathlib.Path:
    """A rosbag2 bag of ``messages`` (``(topic, type, time, dict)``), written with rosbags; without
    ``definitions`` it stores no message definitions (as Humble's sqlite3 storage)."""
    store = store or typestore("humble")
    no_definition = {} if definitions else {"msgdef": "", "rihs01": "RIHS01_" + "0" * 64}
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, typename, _, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, typename, typestore=store, **no_definition)
        for topic, typename, time_ns, message in sorted(messages, key=lambda m: m[2]):
            writer.write(connections[topic], time_ns, serialize(store, typename, message))
    return path


def storage_file(bag: pathlib.Path) -> pathlib.Path:
    return next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))


def settings(bag, out, **kwargs) -> BagImport:
    return BagImport(bag=bag, task="car_lap", out=out, **kwargs)


def quiet(line: str) -> None:
    pass


# ----------------------------------------------------------------------------- imports that work
def test_a_sqlite3_bag_imports_as_the_episode_the_live_env_recorded(drive, tmp_path, monkeypatch):
    monkeypatch.setattr(bag_reader, "PROGRESS_EVERY_S", 0.0)  # a progress line per message, as if the bag were long
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, car_messages(drive) + camera_messages(drive, False),
                    definitions=False)  # decoded with our Humble typestore
    lines = []
    summary = import_bag(settings(bag, tmp_path / "out", obs="pixels"), lines.append)
    assert [p.name for p in summary.files] == ["episode_000000.npz"] and summary.steps == STEPS
    episode = read_episode(summary.files[0], task="car_lap")
    assert len(episode) == STEPS and episode.truncated[-1] and not episode.terminated.any()
    np.testing.assert_allclose(episode.observations["state"], [o["state"] for o in drive.pixel_obs], atol=1e-5)
    np.testing.assert_array_equal(episode.observations["front"], [o["front"] for o in drive.pixel_obs])
    np.testing.assert_allclose(episode.actions, drive.actions, atol=1e-5)
    np.testing.assert_allclose(episode.rewards, drive.rewards, rtol=1e-4, atol=1e-5)
    assert episode.intervention.all()
    meta = episode.metadata
    assert meta["source"] == "ros2_bag" and meta["bag"] == str(bag.resolve()) and meta["control_hz"] == 20.0
    assert meta["bag_topics"]["ackermann"] == {"topic": "/cmd/ackermann",
                                               "type": "ackermann_msgs/msg/AckermannDriveStamped"}
    assert meta["bag_start_ns"] == tick_ns(0) + 2 * MS and meta["end_reason"] == "end_of_recording"
    assert any(line.startswith("aligned at 20 Hz: 31 ticks, 31 used") for line in lines)
    assert "indexing bag: 154/154 messages (100%)" in lines and "decoding bag: 154/154 messages (100%)" in lines


def test_an_mcap_file_with_twist_commands_splits_at_the_episode_topic(drive, tmp_path):
    flags = [("/episode", "std_msgs/msg/Bool", tick_ns(k) + 2 * MS, {"data": value})
             for k, value in ((0, True), (12, False), (16, True))]
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP, car_messages(drive, "cmd_vel") + flags)
    summary = import_bag(settings(storage_file(bag), tmp_path / "out", episode_topic="episode"), quiet)
    first, second = (read_episode(p) for p in summary.files)
    assert (len(first), len(second)) == (11, STEPS - 16)  # ticks 0..11 and 16..30; 12..15 are outside
    np.testing.assert_allclose(first.observations["state"], drive.state_obs[:12], atol=1e-5)
    np.testing.assert_allclose(first.actions, drive.actions[:11], atol=1e-5)
    np.testing.assert_allclose(second.actions, drive.actions[16:], atol=1e-5)
    np.testing.assert_allclose(second.observations["state"][:, :4], np.array(drive.state_obs[16:])[:, :4], atol=1e-5)
    assert second.metadata["bag_topics"]["cmd_vel"]["type"] == "geometry_msgs/msg/Twist"


def test_a_pause_in_the_commands_holds_the_last_one_then_splits(drive, tmp_path):
    messages = car_messages(drive, skip_commands=range(10, 20)) + camera_messages(drive, True)
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP, messages)
    summary = import_bag(settings(bag, tmp_path / "out", obs="pixels", episode_gap_s=0.21), quiet)
    first, second = (read_episode(p) for p in summary.files)
    # Command 9 (sent 1 ms before tick 9) is held up to 210 ms: ticks 10..13; at tick 14 it is stale.
    assert (len(first), len(second)) == (13, STEPS - 20)
    np.testing.assert_allclose(first.actions[:10], drive.actions[:10], atol=1e-5)
    np.testing.assert_allclose(first.actions[10:], np.repeat(drive.actions[9:10], 3, axis=0), atol=1e-5)
    np.testing.assert_array_equal(second.observations["front"], [o["front"] for o in drive.pixel_obs[20:]])
    assert summary.report.stale["ackermann"] == 6


# ----------------------------------------------------------------------------- bad bags: clear error, no files
@pytest.fixture
def out_with_a_file(tmp_path) -> pathlib.Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    return out


def assert_untouched(out: pathlib.Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not list(out.parent.glob(".out.import-*"))


def test_a_missing_topic_is_named_and_nothing_is_written(drive, tmp_path, out_with_a_file):
    messages = [m for m in car_messages(drive) if m[0] != "/drive_state"]
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, messages)
    with pytest.raises(BagError, match=r"no topic '/drive_state' \(role 'drive_state'\)"):
        import_bag(settings(bag, out_with_a_file), quiet)
    assert_untouched(out_with_a_file)


def test_an_unknown_message_type_is_named(drive, tmp_path, out_with_a_file):
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register({name: fields for name, fields in typestore("humble").fielddefs.items() if name.startswith("ackermann")})
    store.register(get_types_from_msg("float64 x\nfloat64 y\n", "acme_msgs/msg/Odom"))
    messages = [m for m in car_messages(drive) if m[0] != "/odom"]
    messages += [("/odom", "acme_msgs/msg/Odom", tick_ns(k), {"x": 1.0, "y": 2.0}) for k in range(3)]
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP, messages, store)
    with pytest.raises(BagError, match=r"topic '/odom' \(role 'odom'\) carries acme_msgs/msg/Odom; the role takes "
                                       r"nav_msgs/msg/Odometry"):
        import_bag(settings(bag, out_with_a_file), quiet)
    assert_untouched(out_with_a_file)


@pytest.mark.parametrize("plugin", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_a_truncated_bag_names_its_file(drive, tmp_path, out_with_a_file, plugin):
    bag = write_bag(tmp_path / "bag", plugin, car_messages(drive))
    file = storage_file(bag)
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size // 2)
    with pytest.raises(BagError, match=rf"{bag} \(storage files: {file.name}\): cannot (open|read) the bag"):
        import_bag(settings(bag, out_with_a_file), quiet)
    assert_untouched(out_with_a_file)


def test_a_bag_without_usable_ticks_is_refused(drive, tmp_path):
    messages = [m for m in car_messages(drive) if m[0] != "/odom" or m[2] < tick_ns(1)]  # odom speaks once
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, messages)
    with pytest.raises(BagError, match="no usable ticks.*stale or missing: odom"):
        import_bag(settings(bag, tmp_path / "out", max_age_s=0.01), quiet)  # one tick, and a step needs two
    assert not (tmp_path / "out").exists()


def test_a_failure_while_writing_removes_what_this_import_wrote(drive, tmp_path, out_with_a_file):
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, car_messages(drive))
    episode = read_episode(import_bag(settings(bag, tmp_path / "first"), quiet).files[0])
    broken = dataclasses.replace(episode, rewards=episode.rewards[:-1])  # fails validation when written
    with pytest.raises(ValueError, match="rewards"):
        write_all([episode, episode, broken], out_with_a_file)
    assert_untouched(out_with_a_file)
    with pytest.raises(ValueError, match="rewards"):
        write_all([episode, broken], tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in write_all([episode], out_with_a_file)] == ["episode_000000.npz"]
    assert [p.name for p in write_all([episode], out_with_a_file)] == ["episode_000001.npz"]  # numbering continues


# ----------------------------------------------------------------------------- the command
def test_robot_rl_import_bag_is_a_plugin_command(drive, tmp_path, capsys):
    assert COMMANDS["import-bag"].__module__ == "drivers.ros2.bag_command"
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, car_messages(drive))
    out = tmp_path / "demos"
    assert main(["import-bag", str(bag), "--task", "car_lap", "--out", str(out)]) == 0
    assert "1 episodes (30 steps" in capsys.readouterr().out
    assert read_episode(out / "episode_000000.npz").metadata["source"] == "ros2_bag"
    assert main(["import-bag", str(tmp_path / "nothing"), "--task", "car_lap", "--out", str(out)]) == 2
    assert "nothing: no such bag" in capsys.readouterr().err
    assert main(["import-bag", str(bag), "--task", "car_lap", "--topics", "odometry=/odom"]) == 2
    assert "unknown role(s) ['odometry']" in capsys.readouterr().err


def test_a_real_backend_gives_its_spec_from_the_rig_file_without_connecting(drive, tmp_path):
    rig = tmp_path / "car.toml"
    rig.write_text('[car.vesc]\nport = "/dev/robot-rl-no-such-vesc"\nmax_steering_rad = 0.3\n')
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, car_messages(drive))
    # The VESC car's spec is read from the rig (never connected: no such port); car_lap itself then
    # refuses a car without a track (or course) to drive on, naming why.
    with pytest.raises(BagError, match="'car_lap' cannot begin an episode at a recorded state: car_lap needs a"):
        import_bag(settings(bag, tmp_path / "out", backend="vesc", options={"rig": str(rig)}), quiet)
    assert not (tmp_path / "out").exists()


def test_a_broken_plugin_command_is_reported_and_none_replaces_a_built_in(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-0.1.dist-info"  # an installed package's metadata, found on sys.path
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[robot_rl.commands]\nbroken = robot_rl_no_such_module:Command\n"
                                           "record = drivers.ros2.bag_command:ImportBag\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    commands, errors = {"record": COMMANDS["record"]}, []
    load_plugin_commands(commands, errors)
    assert commands["record"] is COMMANDS["record"] and commands["import-bag"] is COMMANDS["import-bag"]
    assert "broken" not in commands
    assert any("command 'broken' (robot_rl_no_such_module:Command) of broken-plugin failed to load: "
               "ModuleNotFoundError" in error for error in errors)
    assert any("command 'record'" in error and "already a command" in error for error in errors)
