"""``robot-rl serve-robot``: run a registered backend on the robot PC and serve it to one actor at
a time over ZeroMQ (:mod:`robot_rl.remote.server`). Light at import: ZeroMQ, the backend and its
device library are imported when the command runs.

The rig file's ``[serve]`` table says what to serve (flags win over it)::

    [serve]
    backend = "fr3"                  # a registered backend (`robot-rl envs`)
    family = "arm"
    bind = "tcp://192.168.1.20:5570" # not loopback: needs bind_remote = true and keys
    bind_remote = true
    keys = "/etc/robot_rl/keys"      # from `robot-rl keys`; its learner pair is this server's
    client_timeout_s = 0.5           # a silent client gets the robot stopped after this
    # task = "pick_cube"             # build the backend for this task's scene (simulators)

    [serve.options]                  # the backend's options (fields of its config)

A backend whose config has a ``rig`` field (the FR3) reads its own table from the same file.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

SERVE_FIELDS = {"backend", "family", "task", "obs", "bind", "bind_remote", "keys", "client_timeout_s", "max_message_mb",
                "options"}


@dataclasses.dataclass
class ServeRobot:
    """Serve a robot's backend to an actor on another machine over ZeroMQ (CURVE keys, deadlines,
    one client at a time); the actor uses it as the `remote` backend. What to serve comes from the
    rig file's [serve] table; these flags win over it."""

    rig: pathlib.Path
    """The rig file: its [serve] table, and the backend's own table (e.g. [arm.fr3])."""
    backend: str | None = None
    """The backend to serve (`robot-rl envs` lists them); default: [serve] backend."""
    family: str | None = None
    """Its family; default: [serve] family, else arm."""
    task: str | None = None
    """Build the backend for this task's scene (simulators); clients running another task are refused."""
    bind: str | None = None
    """Where to listen; default: [serve] bind, else tcp://127.0.0.1:5570 (loopback)."""
    bind_remote: bool = False
    """Allow a non-loopback --bind (needs --keys)."""
    keys: pathlib.Path | None = None
    """Keys directory from `robot-rl keys` (its learner pair is this server's; authorized_actors/ the clients)."""
    client_timeout_s: float | None = None
    """A client silent this long gets the robot stopped (and loses it to the next client); default 0.5."""

    def settings(self) -> dict[str, Any]:
        """The [serve] table with the flags given applied; unknown fields are named."""
        from robot_rl.rig import check_fields, read_rig_table

        table = read_rig_table(self.rig, "serve", missing_ok=True)
        check_fields(table, SERVE_FIELDS, self.rig, "serve")
        flags = {name: getattr(self, name) for name in ("backend", "family", "task", "bind", "keys", "client_timeout_s")}
        settings = {"family": "arm", "obs": "state", "options": {}, **table, **{k: v for k, v in flags.items() if v is not None}}
        settings["bind_remote"] = self.bind_remote or bool(table.get("bind_remote", False))
        if not settings.get("backend"):
            raise ValueError(f"name the backend to serve: --backend NAME or [serve] backend = ... in {self.rig}")
        return settings

    def run(self) -> int:
        from robot_rl.distributed.commands import setup_process
        from robot_rl.remote.protocol import DEFAULT_ENDPOINT, DEFAULT_MAX_MESSAGE_BYTES
        from robot_rl.remote.server import RobotServer

        settings = self.settings()
        setup_process()
        backend = build_backend(settings, self.rig)
        server = RobotServer(backend, settings["family"], settings.get("task"), settings.get("bind", DEFAULT_ENDPOINT),
                             settings["bind_remote"], settings.get("keys"), settings.get("client_timeout_s", 0.5),
                             int(settings.get("max_message_mb", DEFAULT_MAX_MESSAGE_BYTES / 2**20) * 2**20))
        try:
            server.serve(on_ready=lambda endpoint: print(f"serve-robot: ready at {endpoint}", flush=True))
        except KeyboardInterrupt:
            print("serve-robot: interrupted; the robot is stopped and closed", flush=True)
        return 0


def build_backend(settings: dict[str, Any], rig: pathlib.Path) -> Any:
    """The unconnected backend ``settings`` name (for its task's scene, if one is named)."""
    from robot_rl import registry

    family, name = settings["family"], settings["backend"]
    entry = registry.backends(family).get((family, name))
    if entry is None:
        known = sorted(n for _, n in registry.backends(family))
        raise ValueError(f"no backend {name!r} in the {family} family; known: {known}")
    if entry.batched:
        raise ValueError(f"backend {name!r} is a batched simulator; serve-robot serves one robot")
    task = None
    if settings.get("task"):
        task_entry = registry.lookup(settings["task"])
        if task_entry.family != family:
            raise ValueError(f"task {task_entry.name!r} is for the {task_entry.family} family, not {family}")
        task = registry.load(task_entry.entry_point)()
    options = dict(settings["options"])
    if "rig" in registry.option_names(entry.config):
        options.setdefault("rig", str(rig))
    return registry.load(entry.entry_point)(task, settings["obs"], **options)
