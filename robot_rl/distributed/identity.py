"""Which CURVE key may speak as which actor id: the first key that said hello with an id owns it.

ZeroMQ tells the learner which authorized public key authenticated each connection (the ZAP
``User-Id`` of every frame, :func:`robot_rl.transport.auth.peer_key`). Without this binding any
authorized key could say hello as any actor, make that actor's next chunk look like a duplicate
and close its episode, wedging it for good. The bindings live in ``<run>/store/actor_keys.json``
(``{"actor id": "z85 public key"}``) so they survive a restart; to hand an id to a new key on
purpose, delete its entry. Without ``--keys`` (loopback only) connections carry no key and no id
is bound: any local process may speak as any actor.
"""

from __future__ import annotations

import json
import logging
import pathlib

from robot_rl.files import atomic_write

log = logging.getLogger(__name__)


class ActorKeys:
    """The id -> key bindings of one run (``path``: its JSON file)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self._owners: dict[str, str] = {}
        if self.path.exists():
            try:
                owners = json.loads(self.path.read_text())
                if not isinstance(owners, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in owners.items()):
                    raise ValueError("not an object of strings")
                self._owners = owners
            except (OSError, ValueError) as err:
                log.warning("actor keys: %s is unreadable (%s); ids are bound again to the first key that says hello with them",
                            self.path, err)

    def refusal(self, actor: str, key: str) -> str | None:
        """Why ``key`` may not speak as ``actor`` (None: it may; an empty key is never checked)."""
        owner = self._owners.get(actor)
        if not key or owner is None or owner == key:
            return None
        return (f"actor id {actor!r} belongs to another CURVE key (the first one that said hello with it, recorded in "
                f"{self.path}): start this actor with a new --id, or delete {actor!r} from that file if its key was "
                "replaced on purpose")

    def claim(self, actor: str, key: str) -> bool:
        """Bind ``actor`` to ``key`` if it is not bound yet; True if this call bound it. Raises
        OSError when the binding cannot be written (then nothing is bound)."""
        if not key or actor in self._owners:
            return False
        owners = {**self._owners, actor: key}
        text = json.dumps(owners, indent=1, sort_keys=True).encode()
        atomic_write(self.path, lambda file: file.write(text))
        self._owners = owners
        return True
