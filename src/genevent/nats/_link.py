"""A node's NATS connection: one writer that sends everything in the order it was posted
(several notifies to one manager batched into a frame), requests and their replies (a reply
from another node than the name's holder is ignored), and what the node learned about where
managers run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json as _json
import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from .._checks import check_timeout
from .._errors import CallTimeout, GenEventError
from .._tracing import choice, outgoing
from ._denials import Denials, matches
from ._errors import (
    MalformedMessage,
    ManagerNotFound,
    PayloadTooLarge,
    PermissionDenied,
    TransportDown,
)
from ._protocol import error_from, kind_of, subject
from ._throttle import Throttle
from ._wire import MAX_BATCH, VERSION, Codec, Reply, Request, TypeRegistry

__all__ = ("MAX_LEASE", "Link", "Pending", "Throttled", "lease_in", "sync")

_WHOLE: Final = ""
"""The reply of a queued frame that is a batch already (``notify_many``'s): the writer sends
it as it is (a notify's reply is None: the writer may put it in a batch with the next)."""

log = logging.getLogger("genevent.nats")


MAX_LEASE: Final = 86_400.0
"""The longest lease a node's record may claim (a day): a longer one, or one that is not a
positive finite number, is read as the reader's own."""


def lease_in(record: bytes | None, default: float) -> float:
    """The lease a node's lease record (``{"lease": seconds, ...}``) names, or ``default``
    for a record that names none, or nothing a lease can be (inf, nan, zero, negative, more
    than :data:`MAX_LEASE`)."""
    try:
        lease = float(_json.loads(record or b"")["lease"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return default
    if not math.isfinite(lease) or not 0 < lease <= MAX_LEASE:
        return default
    return lease


class Throttled:
    """A warning logged at most five times a second (the rest counted, not logged)."""

    __slots__ = ("_bucket",)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = Throttle(clock, rate=5.0, burst=5.0)

    def warn(self, fmt: str, *args: Any) -> None:
        """Log ``fmt % args`` on the ``genevent.nats`` logger unless the quota is spent."""
        if self._bucket.allow():
            log.warning(fmt, *args)


class Pending:
    """A request waiting for its reply."""

    __slots__ = ("checked", "fut", "name", "node", "subject")

    def __init__(
        self, fut: asyncio.Future[Reply], name: str, node: str | None, subject: str
    ) -> None:
        self.fut = fut
        self.name = name
        #: the node addressed (the name's holder when the request was sent), if known
        self.node = node
        self.subject = subject
        #: the names bucket was read since the request was sent (``node`` is its holder)
        self.checked = False


class Link:
    """The connection, the outgoing queue and the requests in flight of one node."""

    def __init__(
        self, ns: str, node_id: str, types: TypeRegistry, json: bool, lease: float
    ) -> None:
        self.ns = ns
        self.id = node_id
        self.lease = lease
        self.codec = Codec(types, json=json)
        self.json_codec = self.codec if json else Codec(types, json=True)
        self.mp_codec = Codec(types, json=False) if json else self.codec
        self.nc: Client = Client()
        self.pfx = f"ge.{ns}"
        self.inbox = ""
        self.closing = False
        self.pending: dict[str, Pending] = {}
        #: JetStream operations in flight that a denied publish fails at once
        self.denials = Denials()
        self.where: dict[str, str] = {}  # manager name -> node id (from claims and replies)
        self.seen: dict[str, tuple[float, float]] = {}  # node id -> (last heartbeat, lease)
        #: how to find the node serving a name the link does not know yet (set by the node)
        self.locate: Callable[[str], Awaitable[str | None]] | None = None
        #: replies ignored because another node than the name's holder sent them
        self.ignored_replies = 0
        self._checks: set[asyncio.Task[None]] = set()
        self._warn = Throttled()
        self._tokens = itertools.count(1)
        # (subject, reply, frame, headers): reply None for a notify (the writer may batch it),
        # _WHOLE for a batch frame, sent as it is; headers None, or the W3C trace context of
        # the span current when it was sent (see genevent.tracing)
        self._out: deque[tuple[str, str | None, bytes, dict[str, str] | None]] = deque()
        #: whether requests carry the current trace context (genevent.tracing.enable() was
        #: in force when the node started)
        self.traced = choice(None)[0]
        self._out_ready = asyncio.Event()
        # the bytes a batch adds around its items: the envelope, the longest array header
        # (msgpack) and a separator per item (JSON)
        self._batch_envelope = len(self.codec.encode(Request(v=VERSION, op="batch", body=[]))) + 4
        self._batch_item = 1 if json else 0

    async def open(self, servers: str | list[str], options: dict[str, Any]) -> None:
        """Connect to NATS."""
        try:
            await self.nc.connect(servers, **options)
        except BaseException:
            # nats-py leaves the socket of a refused connection (bad credentials) open
            with contextlib.suppress(Exception):
                await self.nc.close()
            transport = getattr(self.nc, "_transport", None)
            if transport is not None:
                transport.close()
            raise

    async def listen(self) -> None:
        """Subscribe to this node's replies (under the connection's ``inbox_prefix``, by
        default ``_INBOX_ge.<ns>.<node id>``)."""
        self.inbox = self.nc.new_inbox()
        await self.nc.subscribe(self.inbox + ".*", cb=self._on_reply)

    def lease_record(self) -> bytes:
        """This node's lease record: its lease time (readers judge its liveness by it), pid
        and host."""
        info = {"lease": self.lease, "pid": os.getpid(), "host": socket.gethostname()}
        return _json.dumps(info).encode()

    def learn(self, name: str, node: str) -> None:
        """The manager ``name`` runs on ``node``."""
        self.where[name] = node
        if node != self.id:  # its own lease is never watched: no heartbeat of it comes back
            self.seen.setdefault(node, (time.monotonic(), self.lease))

    # -- the caller's side --------------------------------------------------------------------

    def check_up(self) -> None:
        """Raise :class:`TransportDown` unless the node is open and connected."""
        if self.closing:
            raise TransportDown(f"node {self.id!r} is closed")
        if not self.nc.is_connected:
            raise TransportDown(f"node {self.id!r} is not connected to NATS")

    def limit(self) -> int:
        """The largest frame the server takes."""
        return int(self.nc.max_payload or 1024 * 1024)

    def encode(self, env: Request | Reply, codec: Codec | None = None) -> bytes:
        """``env`` as a frame, or :class:`PayloadTooLarge`."""
        data = (codec or self.codec).encode(env)
        if len(data) > self.limit():
            raise PayloadTooLarge(
                f"a {len(data)}-byte frame is larger than the server's max_payload "
                f"({self.limit()} bytes)"
            )
        return data

    def post(
        self,
        subject: str,
        reply: str | None,
        payload: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a frame for the writer."""
        self._out.append((subject, reply, payload, headers))
        self._out_ready.set()

    def publish(self, name: str, env: Request) -> None:
        """Fire and forget (notify, info)."""
        self.check_up()
        headers = outgoing() if self.traced else None
        self.post(subject(self.pfx, name, "notify"), None, self.encode(env), headers)

    def publish_many(self, name: str, envs: list[Request]) -> None:
        """Fire and forget a batch (``notify_many``): ``envs`` in order, as few frames as the
        server's max_payload allows (one, if they fit), queued at once. Every envelope is
        encoded first, so a :class:`PayloadTooLarge` or a codec error sends nothing."""
        self.check_up()
        subj = subject(self.pfx, name, "notify")
        items = [self.encode(env) for env in envs]
        headers = outgoing() if self.traced else None
        per_item = self._batch_item
        room = self.limit() - self._batch_envelope
        group: list[bytes] = []
        size = 0
        for item in items:
            if group and (size + len(item) + per_item > room or len(group) == MAX_BATCH):
                self._post_group(subj, group, headers)
                group, size = [], 0
            group.append(item)
            size += len(item) + per_item
        if group:
            self._post_group(subj, group, headers)

    def _post_group(self, subj: str, group: list[bytes], headers: dict[str, str] | None) -> None:
        if len(group) == 1:  # a notify frame of its own (the writer may batch it with others)
            self.post(subj, None, group[0], headers)
            return
        frame = self.codec.encode(
            Request(v=VERSION, op="batch", body=list(map(msgspec.Raw, group)))
        )
        self.post(subj, _WHOLE, frame, headers)

    async def request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        """Send ``env`` to the manager ``name`` and return the reply's result."""
        timeout = check_timeout(timeout)  # as the local manager: refused before it is sent
        self.check_up()
        payload = self.encode(env)
        node = self.where.get(name)
        if node is None and self.locate is not None:
            try:  # best effort: knowing the node lets a lapsed lease fail the request early
                node = await self.locate(name)
            except GenEventError:
                raise
            except Exception:
                node = None
            self.check_up()
        token = str(next(self._tokens))
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        to = subject(self.pfx, name, kind_of(env.op))
        self.pending[token] = Pending(fut, name, node, to)
        self.post(to, f"{self.inbox}.{token}", payload, outgoing() if self.traced else None)
        try:
            if timeout is None:
                rep = await fut
            else:
                try:
                    rep = await asyncio.wait_for(fut, timeout)
                except TimeoutError:
                    raise CallTimeout(f"{what} to {name!r}", timeout) from None
        finally:
            self.pending.pop(token, None)
        if rep.n is not None:
            self.learn(name, rep.n)
        if rep.err is not None:
            raise error_from(rep, name)
        return self.codec.from_wire(rep.ok)

    def expect(self, about: str, node: str, subj: str) -> tuple[str, asyncio.Future[Reply]]:
        """A reply token and the future its reply (from ``node`` only) resolves, for a request
        of this node's own making to ``subj`` (``about`` names it in errors). The caller posts
        the request with the reply subject ``<inbox>.<token>`` and pops the token from
        :attr:`pending` when done. The future fails with :class:`NodeDown` if ``node`` is
        declared down, :class:`ManagerNotFound` if nobody listens on ``subj``."""
        token = str(next(self._tokens))
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[token] = Pending(fut, about, node, subj)
        return token, fut

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[-1]
        pending = self.pending.get(token)
        if pending is None or pending.fut.done():
            return  # a late reply (the caller timed out) or a stray message
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            pending.fut.set_exception(ManagerNotFound(pending.name))
            return
        try:
            rep = self.codec.decode_reply(msg.data)
        except MalformedMessage as exc:
            if pending.node is None:  # nobody to wait for instead
                pending.fut.set_exception(exc)
            else:  # a node that holds the name answers in form: this one is not its reply
                self.ignored_replies += 1
                self._warn.warn(
                    "genevent.nats: %s ignored a malformed reply about %r: %s",
                    self.id,
                    pending.name,
                    exc,
                )
            return
        if pending.node is None or rep.n == pending.node:
            pending.fut.set_result(rep)
            return
        if pending.checked:  # the bucket was read once for this request: no second lookup
            self._ignore(pending, rep)
            return
        # another node answered: the name may have moved since; the names bucket says
        task = asyncio.get_running_loop().create_task(self._check_reply(pending, rep))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check_reply(self, pending: Pending, rep: Reply) -> None:
        """Accept a reply from another node than the one addressed only if that node holds
        the name now; ignore (and count) it otherwise: the real reply still comes."""
        try:
            holder = await self.locate(pending.name) if self.locate is not None else None
        except Exception:
            holder = None
        if pending.fut.done():
            return
        pending.checked = True
        if holder is not None:
            pending.node = holder
        if holder is not None and holder == rep.n:
            pending.fut.set_result(rep)
            return
        self._ignore(pending, rep)

    def _ignore(self, pending: Pending, rep: Reply) -> None:
        self.ignored_replies += 1
        self._warn.warn(
            "genevent.nats: %s ignored a reply about %r from %r: the name is held by %r",
            self.id,
            pending.name,
            rep.n,
            pending.node,
        )

    def denied(self, subject: str) -> None:
        """The server refused this node's publish to ``subject``: fail the requests sent
        there, and the JetStream operations that use it, with :class:`PermissionDenied`."""
        # nats-py reports the subject in lower case: a request sent to it in any case matches
        # (the rule the JetStream guards apply), unless one was sent to exactly that subject
        waiting = [p for p in self.pending.values() if not p.fut.done()]
        matched = [p for p in waiting if p.subject == subject] or [
            p for p in waiting if matches(p.subject, subject) is not None
        ]
        for pending in matched:
            pending.fut.set_exception(PermissionDenied(pending.subject))
        failed = bool(matched)
        if not self.denials.deny(subject) and not failed:
            self._warn.warn("genevent.nats: %s may not publish to %r", self.id, subject)

    def fail_all(self, exc: GenEventError) -> None:
        """Fail every request in flight with ``exc``."""
        for pending in list(self.pending.values()):
            if not pending.fut.done():
                pending.fut.set_exception(exc)

    # -- the writer ---------------------------------------------------------------------------

    async def writer(self) -> None:
        """Send what is posted, for as long as the node runs."""
        # one writer, so everything this node publishes leaves in the order it was posted
        while True:
            await self._out_ready.wait()
            self._out_ready.clear()
            await self.flush_out()

    async def flush_out(self) -> None:
        """Send everything posted so far."""
        out = self._out
        while out:
            subject, reply, payload, headers = out.popleft()  # reply "" (_WHOLE): a batch
            if reply is None and out and out[0][1] is None and out[0][0] == subject:
                # several notifies to one manager are queued: one frame carries them, in order
                # (those sent in one trace context: a frame has one)
                payload = self._batch(subject, payload, headers)
            try:
                await self.nc.publish(subject, payload, reply=reply or "", headers=headers)
            except Exception as exc:
                if reply:
                    pending = self.pending.get(reply.rsplit(".", 1)[-1])
                    if pending is not None and not pending.fut.done():
                        pending.fut.set_exception(_transport_error(exc))
                else:
                    log.warning("genevent.nats: a publish to %s failed: %r", subject, exc)

    def _batch(self, subject: str, first: bytes, headers: dict[str, str] | None) -> bytes:
        """``first`` and the notifies to ``subject`` queued after it, in one frame no larger
        than the server takes (a frame that does not fit with the batch around it goes
        alone)."""
        out = self._out
        per_item = self._batch_item
        room = self.limit() - self._batch_envelope
        size = len(first) + per_item
        if size > room or not out:
            return first
        frames = [msgspec.Raw(first)]
        while (
            out
            and out[0][1] is None
            and out[0][0] == subject
            and out[0][3] == headers
            and len(frames) < MAX_BATCH
        ):
            nxt = out[0][2]
            if size + len(nxt) + per_item > room:
                break
            out.popleft()
            frames.append(msgspec.Raw(nxt))
            size += len(nxt) + per_item
        if len(frames) == 1:
            return first
        return self.codec.encode(Request(v=VERSION, op="batch", body=frames))


async def sync(nc: Client) -> None:
    """Return once the server has processed everything ``nc`` sent so far.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, ahead of commands still
    in the client's buffer (a SUBSCRIBE, say), so its PONG can come back before the server saw
    them. Write the buffer out first."""
    flush_pending = getattr(nc, "_flush_pending", None)
    if flush_pending is not None:
        await flush_pending(force_flush=True)
    await nc.flush()


def _transport_error(exc: Exception) -> GenEventError:
    if isinstance(exc, nats.errors.MaxPayloadError):
        return PayloadTooLarge(str(exc) or "larger than the server's max_payload")
    return TransportDown(f"publish failed: {exc!r}")
