"""The errors of the NATS layer, under :class:`genevent.GenEventError` like every other.

::

    GenEventError
     +-- InvalidName (ValueError)          a manager or node name NATS cannot carry as a token
     +-- ManagerNotFound (LookupError)     nobody serves that manager name
     +-- NodeDown (ConnectionError)        the node hosting the manager died (lease expired)
     +-- TransportDown (ConnectionError)   our own NATS connection is down
     |    +-- ConnectFailed                a node's first connection did not come up
     +-- PayloadTooLarge (ValueError)      a frame larger than the server or node accepts
     +-- MalformedMessage (ValueError)     bytes that are not a valid envelope (either side)
     +-- NotEncodable (TypeError)          a value the wire cannot carry (unregistered type, ...)
     +-- PermissionDenied (PermissionError) the NATS server refused this node's publish
     +-- RemoteError                       a remote error with no local class (kind + text)
     +-- GroupIncomplete                   members of a group did not confirm a sync_notify
                                           (genevent.nats.GroupIncomplete, in _group.py)

Errors the hosting node raises for a request (``HandlerNotFound``, ``HandlerCrashed``,
``CallNotSupported``, ``ManagerNotRunning``, ...) come back as the *same* local classes; an
exception raised inside a remote handler travels as a :class:`RemoteException` (its class name
and text, never the object).
"""

from __future__ import annotations

from .._errors import GenEventError

__all__ = (
    "ConnectFailed",
    "InvalidName",
    "MalformedMessage",
    "ManagerNotFound",
    "NodeDown",
    "NotEncodable",
    "PayloadTooLarge",
    "PermissionDenied",
    "RemoteError",
    "RemoteException",
    "TransportDown",
)


class InvalidName(GenEventError, ValueError):
    """A manager, node or namespace name must match ``[A-Za-z0-9_-]{1,64}``."""


class ManagerNotFound(GenEventError, LookupError):
    """No node serves a manager under that name (NATS answered "no responders", or the
    cluster's name table has no such manager)."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"no node serves the manager {name!r}{detail}")
        #: the manager name
        self.name = name


class NodeDown(GenEventError, ConnectionError):
    """The node hosting the manager stopped renewing its lease while the request was in
    flight. The request may or may not have been handled."""

    def __init__(self, name: str, node: str) -> None:
        super().__init__(f"node {node!r} hosting the manager {name!r} is down")
        #: the manager name
        self.name = name
        #: the node id
        self.node = node


class TransportDown(GenEventError, ConnectionError):
    """This node's NATS connection is down (disconnected, reconnecting or closed). Requests
    fail at once instead of waiting; hosted managers serve again after the reconnect."""


class ConnectFailed(TransportDown):
    """A node's first connection to NATS did not come up: no server listens there, it refused
    the credentials, TLS failed, or nothing answered within ``connect_timeout``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        #: why: ``"refused"`` (no server listens), ``"auth"``, ``"tls"`` or ``"timeout"``
        self.reason = reason


class PayloadTooLarge(GenEventError, ValueError):
    """An encoded frame is larger than the NATS server's ``max_payload`` or the receiving
    node's ``max_frame``."""


class MalformedMessage(GenEventError, ValueError):
    """Bytes that do not decode to a valid envelope of a known version (or a reply the
    caller cannot decode). Nothing of it reached a handler."""


class NotEncodable(GenEventError, TypeError):
    """A value the wire cannot carry: an object of an unregistered class, a set, a dict key
    that is not plain data, ... Register dataclasses and msgspec Structs by name."""


class PermissionDenied(GenEventError, PermissionError):
    """The NATS server refused to take a request from this node: the connection's user may not
    publish on the request's subject (``ge.<ns>.mgr.<M>.<kind>``, ``ge.<ns>.dur.<M>.notify``,
    or a JetStream or KV subject the node uses on the caller's behalf: a name claim, a group's
    membership, a durable consumer). Raised as soon as the server reports the refusal, not
    after a timeout. Nothing was delivered."""

    def __init__(self, subject: str, detail: str = "") -> None:
        super().__init__(f"the NATS server denied the publish to {subject!r}{detail}")
        #: the subject the server refused
        self.subject = subject


class RemoteError(GenEventError):
    """An error the remote node reported that has no local class here."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        #: the remote error's kind (its class name)
        self.kind = kind
        #: its text
        self.message = message


class RemoteException(Exception):
    """Stands for an exception raised inside a remote handler (``HandlerCrashed.cause``,
    ``HandlerInitFailed.cause``, ...): its class name and text cross the wire, not the object."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        #: the remote exception's class name (``"ValueError"``)
        self.type_name = type_name
        #: ``str()`` of the remote exception
        self.message = message
