"""Peer authentication and encryption with ZeroMQ CURVE (``zmq.auth``).

Key layout made by :func:`generate_keys` (``robot-rl keys --out DIR``)::

    DIR/learner.key            learner public key   (copy to every robot)
    DIR/learner.key_secret     learner secret key   (stays on the learner machine, mode 0600)
    DIR/actor.key              actor public key
    DIR/actor.key_secret       actor secret key     (copy to the robot, mode 0600)
    DIR/authorized_actors/actor.key   public keys the learner accepts (drop more *.key here)

The learner runs :func:`start_authenticator` (a ZAP handler that accepts only the public keys in
``authorized_actors/`` and logs every rejected peer as a WARNING on the
``robot_rl.transport.auth`` logger), then makes its sockets with :func:`make_server_socket` or
:func:`secure_server`. An actor calls :func:`secure_client` before ``connect``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import re
import shutil
import tempfile
import time
from typing import Any, Iterable

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

LOG = logging.getLogger(__name__)
LEARNER = "learner"
"""Name of the learner's key pair (``learner.key``, ``learner.key_secret``)."""
DEFAULT_ACTOR = "actor"
"""Name of the default actor key pair."""
AUTHORIZED_DIR = "authorized_actors"
"""Sub-directory of the keys directory holding the actor public keys the learner accepts."""
_ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOW = "create keys with `robot-rl keys --out DIR` (a robot needs learner.key and its actor .key_secret from it)"


# ------------------------------------------------------------------------------------ key files


def _targets(directory: pathlib.Path, actors: Iterable[str]) -> list[pathlib.Path]:
    out = [directory / f"{LEARNER}.key", directory / f"{LEARNER}.key_secret"]
    for name in actors:
        out += [directory / f"{name}.key", directory / f"{name}.key_secret", directory / AUTHORIZED_DIR / f"{name}.key"]
    return out


def _check_names(actors: tuple[str, ...]) -> None:
    if not actors:
        raise ValueError("name at least one actor key pair")
    for name in actors:
        if not _NAME.match(name) or name == LEARNER:
            raise ValueError(f"actor key name {name!r} must be letters, digits, '_', '-' or '.' (and not {LEARNER!r})")
    if len(set(actors)) != len(actors):
        raise ValueError(f"actor key names repeat: {list(actors)}")


def generate_keys(directory: os.PathLike | str, actors: Iterable[str] = (DEFAULT_ACTOR,), force: bool = False) -> list[pathlib.Path]:
    """Create the learner key pair, one pair per actor name, and authorize those actors.

    Returns the files written. Secret files are mode 0600 from the start (written in a private
    temporary directory, then renamed into place). Raises FileExistsError naming an existing key
    file unless ``force``; with ``force`` those files are replaced (actors holding the old keys
    are then rejected). Other files in ``authorized_actors/`` are left alone.
    """
    directory, actors = pathlib.Path(directory), tuple(actors)
    _check_names(actors)
    targets = _targets(directory, actors)
    if not force:
        for path in targets:
            if path.exists():
                raise FileExistsError(f"{path} already exists; pass --force to replace the keys (actors with the old keys will be rejected)")
    (directory / AUTHORIZED_DIR).mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".keys-", dir=directory))  # mode 0700
    try:
        for name in (LEARNER, *actors):
            public, secret = zmq.auth.create_certificates(staging, name)
            os.chmod(secret, 0o600)
            os.chmod(public, 0o644)
        for name in actors:
            shutil.copyfile(staging / f"{name}.key", staging / f"authorized-{name}.key")
        sources = [staging / f"{LEARNER}.key", staging / f"{LEARNER}.key_secret"]
        for name in actors:
            sources += [staging / f"{name}.key", staging / f"{name}.key_secret", staging / f"authorized-{name}.key"]
        for source, target in zip(sources, targets):
            os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets


def _load(path: pathlib.Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise FileNotFoundError(f"missing CURVE key file {path}; {_HOW}")
    public, secret_key = zmq.auth.load_certificate(path)
    if secret and secret_key is None:
        raise ValueError(f"{path} holds no secret key; use the .key_secret file made by `robot-rl keys`")
    return public, secret_key


# ------------------------------------------------------------------------------------ server side


class _ZapLog(logging.LoggerAdapter):
    """The authenticator's log, sent to our logger, with each rejected peer raised to WARNING.

    pyzmq's authenticator logs each request (``version: ..., address: ...``) and then
    ``DENIED (CURVE) domain=... client_key=...`` at DEBUG; we turn the latter into
    ``rejected client at ADDRESS (unknown CURVE key KEY)``, once per key and address every
    :attr:`repeat_s` seconds (a refused client reconnects every ~100 ms).
    """

    repeat_s = 60.0

    def __init__(self, logger: logging.Logger, authorized: pathlib.Path):
        super().__init__(logger, {})
        self.authorized, self.address = authorized, "?"
        self._last_warned: dict[tuple[str, str], float] = {}

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = str(msg)
        if text.startswith("version:") and len(args) >= 4:
            self.address = str(args[3])
        if not text.startswith("DENIED"):
            super().log(level, msg, *args, **kwargs)
            return
        if text.startswith("DENIED (CURVE)") and args:
            key = args[-1].decode(errors="replace") if isinstance(args[-1], bytes) else str(args[-1])
            detail = f"unknown CURVE key {key}"
        else:
            detail = text
        now, seen = time.monotonic(), (self.address, detail)
        if now - self._last_warned.get(seen, -math.inf) < self.repeat_s:
            super().log(logging.DEBUG, "rejected client at %s (%s) again", self.address, detail)
            return
        if len(self._last_warned) > 1024:  # many distinct strangers: forget, stay bounded
            self._last_warned.clear()
        self._last_warned[seen] = now
        self.logger.warning("rejected client at %s (%s); to accept it, add its public .key file to %s",
                            self.address, detail, self.authorized)


def _authorized_dir(keys_dir: os.PathLike | str) -> pathlib.Path:
    authorized = pathlib.Path(keys_dir) / AUTHORIZED_DIR
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise FileNotFoundError(f"no authorized actor keys in {authorized} (*.key files); {_HOW}")
    return authorized


def start_authenticator(context: zmq.Context, keys_dir: os.PathLike | str) -> ThreadAuthenticator:
    """Start a ZAP handler on ``context`` that accepts only the keys in ``authorized_actors/``.

    Start it before binding the server sockets, and ``stop()`` it when done. Rejected peers are
    logged as WARNING on ``robot_rl.transport.auth``. After adding key files, call
    ``authenticator.configure_curve(domain="*", location=str(keys_dir / "authorized_actors"))``
    to reload them.
    """
    authorized = _authorized_dir(keys_dir)
    authenticator = ThreadAuthenticator(context, log=_ZapLog(LOG, authorized))
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(authorized))
    LOG.info("CURVE authenticator accepts %d actor key(s) from %s", len(list(authorized.glob("*.key"))), authorized)
    return authenticator


def _require_authenticator(context: zmq.Context) -> None:
    """RuntimeError unless a ZAP handler is bound on ``context`` (else any CURVE client is let in)."""
    probe = context.socket(zmq.REP)
    probe.linger = 0
    try:
        probe.bind(_ZAP_ENDPOINT)
    except zmq.ZMQError:
        probe.close()
        return  # the endpoint is taken: a handler is running
    probe.unbind(_ZAP_ENDPOINT)
    probe.close()
    raise RuntimeError("no CURVE authenticator runs on this context; call start_authenticator(context, keys_dir) "
                       "first (without it any client that knows learner.key is accepted)")


def secure_server(socket: zmq.Socket, keys_dir: os.PathLike | str) -> zmq.Socket:
    """Make ``socket`` (not yet bound) a CURVE server with the learner's key pair; returns it.

    Requires :func:`start_authenticator` on the socket's context (RuntimeError otherwise).
    """
    public, secret = _load(pathlib.Path(keys_dir) / f"{LEARNER}.key_secret", secret=True)
    _require_authenticator(socket.context)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return socket


def make_server_socket(context: zmq.Context, kind: int, keys_dir: os.PathLike | str) -> zmq.Socket:
    """A new CURVE server socket of ``kind`` (``zmq.ROUTER``, ``zmq.PUB``...), ready to bind."""
    socket = context.socket(kind)
    try:
        return secure_server(socket, keys_dir)
    except BaseException:
        socket.close(linger=0)
        raise


def peer_key(frame: zmq.Frame) -> str:
    """The CURVE public key (Z85 text) that authenticated the connection ``frame`` came on, as the
    authenticator reported it (ZAP ``User-Id``); "" on a socket without CURVE."""
    try:
        return frame.get("User-Id") or ""
    except zmq.ZMQError:  # no ZAP handler ran for this connection (no --keys)
        return ""


# ------------------------------------------------------------------------------------ client side


def secure_client(socket: zmq.Socket, keys_dir: os.PathLike | str, actor: str = DEFAULT_ACTOR) -> zmq.Socket:
    """Give ``socket`` (not yet connected) the actor key pair ``actor`` and the learner's public key.

    Needs ``<actor>.key_secret`` and ``learner.key`` in ``keys_dir``; returns the socket.
    """
    keys_dir = pathlib.Path(keys_dir)
    public, secret = _load(keys_dir / f"{actor}.key_secret", secret=True)
    server_public, _ = _load(keys_dir / f"{LEARNER}.key", secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
    return socket


# ------------------------------------------------------------------------------------------- CLI


@dataclasses.dataclass
class Keys:
    """Create CURVE key pairs so the learner and actors encrypt and authenticate their traffic."""

    out: pathlib.Path = pathlib.Path("keys")
    """Directory for the key files (created)."""
    actors: tuple[str, ...] = (DEFAULT_ACTOR,)
    """Names of the actor key pairs to create; the learner accepts each of them."""
    force: bool = False
    """Replace existing key files (actors holding the old keys are then rejected)."""

    def run(self) -> int:
        written = generate_keys(self.out, self.actors, force=self.force)
        for path in written:
            print(f"wrote {path}{'  (secret, mode 0600)' if path.name.endswith('.key_secret') else ''}")
        actor = self.actors[0]
        print(f"\nLearner machine: keep {self.out / (LEARNER + '.key_secret')} and {self.out / AUTHORIZED_DIR}/ "
              "(copy more actors' public .key files there to accept them).")
        print(f"Robot (actor) machine: copy {self.out / (LEARNER + '.key')} and {self.out / (actor + '.key_secret')} "
              "into its keys directory, e.g.")
        print(f"    scp {self.out / (LEARNER + '.key')} {self.out / (actor + '.key_secret')} robot:robot_rl_keys/")
        print("Never copy learner.key_secret off the learner machine.")
        return 0
