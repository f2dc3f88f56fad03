"""The actor/learner transport: schema-versioned messages over ZeroMQ, never pickle.

* :mod:`~robot_rl.transport.wire` -- the generic codec (JSON header + raw numpy arrays,
  multipart or packed single frame) and its strict decoder (:class:`MessageError`).
* :mod:`~robot_rl.transport.messages` -- the typed kinds (transitions, weights, acks...).
* :mod:`~robot_rl.transport.handshake` -- ``hello`` contents, compatibility check, bind rules.
* :mod:`~robot_rl.transport.auth` -- CURVE keys and authenticated sockets (imports zmq).
"""

from robot_rl.transport.handshake import (
    DEFAULT_TRANSITIONS_ENDPOINT,
    DEFAULT_WEIGHTS_ENDPOINT,
    ActionSpec,
    ArraySpec,
    Hello,
    check_bind_address,
    compare_hello,
)
from robot_rl.transport.messages import (
    Ack,
    Heartbeat,
    Reject,
    Stats,
    Transitions,
    Weights,
    Welcome,
    decode,
    encode,
    pack,
    unpack,
)
from robot_rl.transport.wire import SCHEMA_VERSION, Message, MessageError, SchemaVersionError

__all__ = [
    "DEFAULT_TRANSITIONS_ENDPOINT",
    "DEFAULT_WEIGHTS_ENDPOINT",
    "SCHEMA_VERSION",
    "Ack",
    "ActionSpec",
    "ArraySpec",
    "Heartbeat",
    "Hello",
    "Message",
    "MessageError",
    "Reject",
    "SchemaVersionError",
    "Stats",
    "Transitions",
    "Weights",
    "Welcome",
    "check_bind_address",
    "compare_hello",
    "decode",
    "encode",
    "pack",
    "unpack",
]
