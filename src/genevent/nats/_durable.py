"""Durable notifies through JetStream: events that survive the death of the node handling them.

Subjects and names (``ns`` is the namespace, ``M`` a manager name)::

    ge.<ns>.dur.<M>.notify  a durable notify to M; the last token is the operation's kind, so
                            the NATS permission that lets a client notify durably is a
                            notify-kind permission (``ge.<ns>.dur.*.notify``)
    stream  GE_<ns>         captures ge.<ns>.dur.>, file storage, duplicates dropped within
                            two minutes by the ``Nats-Msg-Id`` header
    consumer mgr_<M>        the durable pull consumer of M: explicit acks, one event in flight

The publisher returns once JetStream stored the event (:class:`DurableAck`). The node that
holds the name ``M`` (and only it: the consumer is bound after the claim) takes one event at a
time, delivers it with ``sync_notify`` semantics and acks it after every handler ran. A handler
that crashes is removed, as in gen_event, and the event is still acked. Delivery is
at-least-once: an event in flight when its node died is delivered again after ``ack_wait``.
While the handlers run, JetStream is told every half ``ack_wait`` that the event is in
progress, so a slow handler does not get it twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)

from .. import aio
from .._errors import CallTimeout, GenEventError, ManagerNotRunning, NameTaken
from .._handler import EventHandler
from .._tracing import incoming, outgoing
from ._connect import cancel_until_done
from ._denials import stream_subjects
from ._durable_api import Durable, DurableAck, DurableStats
from ._errors import MalformedMessage, TransportDown
from ._link import Link
from ._names import Names, replica_counts, too_few_servers
from ._throttle import Throttle
from ._wire import Codec, Request

__all__ = (
    "Consumer",
    "claim_when_free",
    "consumer_name",
    "durable_subject",
    "publish",
    "replay",
    "setup_of",
    "stream_name",
)

log = logging.getLogger("genevent.nats")

DUPLICATE_WINDOW: Final = 120.0
"""Seconds within which a second publish with the same message id is dropped by JetStream."""

_DEAD_KEPT: Final = 100
"""How many dead letters' stream sequences a consumer's stats keep (the newest)."""

_A_DAY: Final = 86400.0

_BIND_FOR: Final = 30.0
"""How long a consumer keeps trying to bind through JetStream's passing errors (seconds)."""

_POLL: Final = 1.0
"""How long one fetch waits for an event before it asks again (seconds)."""


_GIVE_BACK: Final = 1
"""How long stopping waits for the nak of the event it interrupted (seconds)."""


def stream_name(ns: str) -> str:
    """The JetStream stream of the namespace ``ns``'s durable notifies."""
    return f"GE_{ns}"


def durable_subject(prefix: str, name: str) -> str:
    """The subject of durable notifies to the manager ``name`` (``prefix``: ``ge.<ns>``)."""
    return f"{prefix}.dur.{name}.notify"


def consumer_name(name: str) -> str:
    """The durable consumer of the manager ``name``."""
    return f"mgr_{name}"


# -- publishing -------------------------------------------------------------------------------


async def publish(
    link: Link, name: str, env: Request, msg_id: str | None, timeout: float | None
) -> DurableAck:
    """Store the notify ``env`` for ``name`` in the namespace's stream (created if missing);
    wait ``timeout`` seconds at most for the acknowledgement (None: a day)."""
    link.check_up()
    data = link.encode(env)  # NotEncodable / PayloadTooLarge before anything is sent
    msg_id = msg_id or _IDS.next()
    subject = durable_subject(link.pfx, name)
    wait = _A_DAY if timeout is None else timeout
    headers = {"Nats-Msg-Id": msg_id}
    if link.traced:  # the trace context is stored with the event: its handling joins it
        headers.update(outgoing() or {})
    for attempt in (1, 2):
        try:
            # JetStream's publish, without its client-side objects: what the stream answers
            # is read here (an ack, or an error)
            # (a denied publish fails at once: the server refuses it without an answer)
            request = link.nc.request(subject, data, timeout=wait, headers=headers)
            reply = await link.denials.guarded((subject,), request)
        except nats.errors.NoRespondersError:
            # no stream, or (in a cluster) none with a leader right now
            if attempt == 2:
                raise TransportDown(
                    f"no JetStream stream took {subject!r} {_retry(msg_id)}"
                ) from None
            try:
                await link.denials.guarded(
                    stream_subjects(stream_name(link.ns)), ensure_stream(link)
                )
            except (nats.errors.Error, TimeoutError) as exc:
                raise TransportDown(
                    f"JetStream is not available: {exc!r} {_retry(msg_id)}"
                ) from None
            continue
        except nats.errors.TimeoutError:
            raise TransportDown(
                f"JetStream did not acknowledge a durable notify to {name!r} in {wait} s "
                f"{_retry(msg_id)}"
            ) from None
        except nats.errors.Error as exc:
            raise TransportDown(f"a durable notify failed: {exc!r} {_retry(msg_id)}") from None
        return _ack(reply.data, msg_id)
    raise AssertionError("unreachable")  # pragma: no cover


def _retry(msg_id: str) -> str:
    return f"(retry with msg_id={msg_id!r}: an event already stored is not stored twice)"


def _ack(data: bytes, msg_id: str) -> DurableAck:
    """JetStream's answer to a publish: the ack, or :class:`TransportDown` for an error (the
    stream is full, say) or an answer that is not one."""
    try:
        answer = json.loads(data)
        if "error" not in answer:
            seq = answer["seq"]
            if type(seq) is int:
                duplicate = answer.get("duplicate") is True
                return DurableAck(seq, msg_id, duplicate, str(answer["stream"]))
    except (ValueError, KeyError, TypeError):
        pass
    else:
        if "error" in answer:
            raise TransportDown(
                f"JetStream refused a durable notify: {answer['error']} {_retry(msg_id)}"
            )
    raise TransportDown(f"JetStream's answer is not an acknowledgement: {data[:200]!r}")


class _MessageIds:
    """Unique message ids, cheaply: a random prefix per process and a counter."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._count = itertools.count()

    def next(self) -> str:
        pid = os.getpid()
        if pid != self._pid:  # a new process (forked): a prefix of its own
            self._pid, self._prefix = pid, uuid.uuid4().hex
        return f"{self._prefix}-{next(self._count)}"


_IDS: Final = _MessageIds()


async def ensure_stream(link: Link) -> None:
    """Create the namespace's stream unless it exists: three replicas when the server is part
    of a cluster (fewer if the cluster has fewer servers), else one."""
    js = link.nc.jetstream()
    stream = stream_name(link.ns)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.stream_info(stream)
        return
    for replicas in replica_counts(link.nc):
        config = StreamConfig(
            name=stream,
            subjects=[f"{link.pfx}.dur.>"],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=DUPLICATE_WINDOW,
            discard=DiscardPolicy.NEW,
        )
        try:
            await js.add_stream(config)
            return
        except nats.js.errors.APIError as exc:
            if too_few_servers(exc) and replicas > 1:
                continue  # fewer servers than replicas: fewer replicas
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.stream_info(stream)  # created meanwhile by another node: fine
                return
            raise
    await js.stream_info(stream)  # raises if it could not be made


# -- consuming --------------------------------------------------------------------------------


async def claim_when_free(names: Names, link: Link, name: str) -> int:
    """Claim ``name`` as soon as no live node holds it (checked every fifth of the lease).
    JetStream's passing errors (a bucket without a leader for a moment, in a cluster that lost
    a server) and a reconnection mean: try again; a closed node raises
    :class:`TransportDown`."""
    while True:
        if link.closing:
            link.check_up()  # raises
        if link.nc.is_connected:
            try:
                return await names.claim(name)
            except NameTaken:
                pass
            except (nats.errors.Error, TimeoutError, TransportDown) as exc:
                log.debug("genevent.nats: a standby's claim of %r failed, again: %r", name, exc)
        await asyncio.sleep(link.lease / 5)


class Consumer:
    """The durable consumer of one hosted manager: takes its events one at a time, delivers
    each with ``sync_notify`` semantics, acks it after every handler ran."""

    def __init__(self, link: Link, name: str, mgr: aio.EventManager[Any], options: Durable) -> None:
        self._link = link
        self._name = name
        self._mgr = mgr
        self._options = options
        self.stats = DurableStats()
        self._dead: collections.deque[int] = collections.deque(maxlen=_DEAD_KEPT)
        self._subs: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._throttle = Throttle(time.monotonic)
        self._floor = 0  # the last event earlier holders of the name acknowledged
        self._since = 0  # the live manager saw the events after this one (replay: all)
        self._giving_back: set[asyncio.Task[None]] = set()  # naks of events in flight
        self._psub: Any = None  # the pull subscription, once bound
        self._asked = 0.0  # when its last pull request was sent (the loop's clock)
        self._turn = asyncio.Lock()  # held while taking an event, or while adding a handler

    async def start(self) -> None:
        """Bind the durable consumer (creating the stream and the consumer if missing), replay
        if asked, then serve the events in a task of its own. JetStream's passing errors (no
        leader for a moment) are retried for :data:`_BIND_FOR` seconds at most; a request the
        server's permissions refuse raises :class:`PermissionDenied` at once."""
        link, name = self._link, self._name
        stream, durable = stream_name(link.ns), consumer_name(name)
        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"
        self._subs.append(await link.nc.subscribe(advisory, cb=self._on_dead_letter))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BIND_FOR
        pause = 0.05
        while True:
            if link.closing:
                link.check_up()  # raises
            try:
                info = await self._bind(stream, durable)
                break
            except (nats.errors.Error, TimeoutError) as exc:
                if loop.time() + pause > deadline:
                    raise TransportDown(
                        f"could not bind the durable consumer of {name!r}: {exc!r}"
                    ) from None
                log.debug("genevent.nats: binding %r's durable consumer, again: %r", name, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        self._floor = (info.ack_floor.stream_seq if info.ack_floor else 0) or 0
        if self._options.replay:
            self.stats.replayed = await replay(link, name, self._mgr, until=self._floor)
        else:  # the events earlier holders acknowledged never reached this manager
            self._since = self._floor
        psub = self._psub = await link.nc.jetstream().pull_subscribe_bind(durable, stream)
        self._subs.append(psub)
        self._task = loop.create_task(self._run(psub))

    async def _bind(self, stream: str, durable: str) -> Any:
        link, opts = self._link, self._options
        await link.denials.guarded(stream_subjects(stream), ensure_stream(link))
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=opts.ack_wait,
            max_deliver=opts.max_deliver,
            max_ack_pending=1,  # one event in flight: durable events keep their order
            filter_subject=durable_subject(link.pfx, self._name),
        )
        add = link.nc.jetstream().add_consumer(stream, config)
        return await link.denials.guarded(stream_subjects(stream), add)

    async def stop(self) -> None:
        """Stop taking events (the consumer stays, for the next holder of the name)."""
        task, self._task = self._task, None
        if task is not None:  # cancelled again until it ends (a fetch waits with wait_for)
            await cancel_until_done(task)
        if self._giving_back:  # the event in flight, given back: best effort, bounded
            await asyncio.wait(set(self._giving_back), timeout=_GIVE_BACK)
        if task is not None and self._psub is not None:
            await self._give_back_late(self._psub, self._asked + _POLL)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def _give_back_late(self, psub: Any, until: float) -> None:
        """Give back what the server hands the cancelled fetch's pull request before it expires
        (at ``until`` on the loop's clock, or when the server says it ended): unread, such an
        event would wait for ``ack_wait`` before the next holder of the name could have it."""
        loop = asyncio.get_running_loop()
        sub = getattr(psub, "_sub", None)  # nats-py's subscription under the pull one
        while sub is not None and (left := until - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except Exception:  # expired (timeout), or the link is gone: nothing more comes
                return
            if not (msg.reply or "").startswith("$JS.ACK."):
                return  # a status (the request expired or was ended): nothing more comes
            self.stats.retried += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(msg.nak(), _GIVE_BACK)

    async def _run(self, psub: Any) -> None:
        failures = 0
        while True:
            async with self._turn:  # no event is taken while a handler is being added
                failed = await self._take(psub)
            if failed is None:
                failures = 0
                continue
            # the link is down or closing: try again, slower, without holding the turn
            failures += 1
            self._warn("genevent.nats: durable fetch for %r failed: %r", failed)
            await asyncio.sleep(min(0.05 * failures, _POLL))

    async def _take(self, psub: Any) -> Exception | None:
        """Take and handle one event, if one comes within :data:`_POLL`; return the error of
        a failed fetch (None otherwise)."""
        self._asked = asyncio.get_running_loop().time()
        try:
            msgs = await psub.fetch(1, timeout=_POLL)
        except nats.errors.TimeoutError:
            return None  # let a handler being added have its turn
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return exc
        for msg in msgs:
            await self._handle(msg)
        return None

    async def _handle(self, msg: Msg) -> None:
        link, stats = self._link, self.stats
        try:
            body = _decode(link, msg.data)
        except MalformedMessage as exc:
            stats.undecodable += 1
            self._warn("genevent.nats: refused a durable event for %r: %s", exc)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        meta = msg.metadata
        # however long the handlers take, JetStream is told the event is being worked on:
        # only a node that dies mid-event has it delivered again (after ack_wait)
        loop = asyncio.get_running_loop()
        alive = loop.create_task(self._in_progress(msg))
        # a task of its own: stopping need not wait for the handlers (a waiting sync_notify
        # is not cut short by a cancellation)
        if msg.headers and "traceparent" in msg.headers:  # notified in a trace: handled in it
            with incoming(msg.headers):
                notify = loop.create_task(self._mgr.sync_notify(body))
        else:
            notify = loop.create_task(self._mgr.sync_notify(body))
        try:
            await asyncio.shield(notify)
        except asyncio.CancelledError:  # stopping: the event goes back now, not after ack_wait
            notify.add_done_callback(_retrieve)
            stats.retried += 1
            self._give_back(msg)
            raise
        except (ManagerNotRunning, GenEventError) as exc:  # stopping, mailbox full: later
            stats.retried += 1
            self._warn("genevent.nats: durable event for %r given back: %r", exc)
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._options.nak_delay)
            return
        else:  # counted at once: the handlers' effects and the stats agree
            stats.handled += 1
            stats.last_seq = meta.sequence.stream
            if meta.num_delivered > 1:
                stats.redelivered += 1
        finally:
            await cancel_until_done(alive)
        with contextlib.suppress(Exception):  # a lost ack: delivered again, at least once
            await msg.ack()

    def _give_back(self, msg: Msg) -> None:
        """Nak ``msg`` without delay in a task :meth:`stop` waits for (a little, at most)."""

        async def nak() -> None:
            with contextlib.suppress(Exception):
                await msg.nak()
                await self._link.nc.flush(timeout=_GIVE_BACK)

        task = asyncio.get_running_loop().create_task(nak())
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def _in_progress(self, msg: Msg) -> None:
        """Tell JetStream every half ``ack_wait`` that ``msg`` is still being handled."""
        every = self._options.ack_wait / 2
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # the link is down: the next one, or ack_wait
                await msg.in_progress()

    async def add_replayed(self, handler: Any, args: Any, timeout: float | None = None) -> int:
        """Add ``handler`` to the manager after it saw every durable event the manager saw:
        built in a manager aside, fed the stream, then handed over into the live manager the
        way ``swap_handler`` hands a state over. Return how many events it was fed. If the
        turn and the replay take more than ``timeout`` seconds (None: no limit), raise
        :class:`TransportDown` when the link is down, else :class:`CallTimeout`; the handler
        is then not added."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._turn.acquire()
        except TimeoutError:
            raise self._late(timeout) from None
        try:  # no durable event in flight: the live ones come after
            upto = max(self.stats.last_seq, self._floor)
            aside: aio.EventManager[Any] = aio.start()
            try:
                await aside.add_handler(handler, args)
                limit = asyncio.timeout_at(deadline)
                try:
                    async with limit:
                        feed = replay(
                            self._link,
                            self._name,
                            aside,
                            until=upto,
                            after=self._since,
                            skip=frozenset(self._dead),  # never handled here
                        )
                        count = await feed
                except TimeoutError as exc:
                    if limit.expired():
                        raise self._late(timeout) from None
                    raise TransportDown(f"a replay of {self._name!r} failed: {exc!r}") from None
                state = await aside.delete_handler(handler, "replayed")
            finally:
                await aside.stop()
            carrier = (_Carrier, object())
            await self._mgr.add_handler(carrier, state)
            await self._mgr.swap_handler(carrier, "replayed", handler, args)
        finally:
            self._turn.release()
        return count

    def _late(self, timeout: float | None) -> GenEventError:
        what = f"adding a replayed handler to {self._name!r}"
        if not self._link.nc.is_connected:
            return TransportDown(f"{what}: the link is down")
        return CallTimeout(what, timeout or 0.0)

    async def _on_dead_letter(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            seq = int(advisory["stream_seq"])
        except (ValueError, KeyError, TypeError):
            return
        self.stats.dead_letters += 1
        self._dead.append(seq)
        self.stats.dead_letter_seqs = list(self._dead)
        log.warning(
            "genevent.nats: durable event #%d for %r reached max_deliver (%s deliveries): "
            "a dead letter, it is not delivered again",
            seq,
            self._name,
            advisory.get("deliveries"),
        )

    def _warn(self, text: str, exc: object) -> None:
        if self._throttle.allow():
            log.warning(text, self._name, exc)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Read the end of a notify given up on (so that asyncio does not log it as lost)."""
    if not task.cancelled():
        task.exception()


class _Carrier(EventHandler[Any, Any, Any]):
    """Holds a replayed handler's state for the moment it is swapped into a live manager."""

    def init(self, state: Any, /) -> None:
        self.state = state

    def handle_event(self, event: Any, /) -> None:
        return None

    def terminate(self, reason: Any, /) -> Any:
        return self.state


def _decode(link: Link, data: bytes) -> Any:
    codec: Codec = link.json_codec if Codec.is_json(data) else link.mp_codec
    req = codec.decode_request(data)
    if req.op != "notify":
        raise MalformedMessage(f"a durable event is a notify, not {req.op!r}")
    return codec.from_wire(req.body)


# -- replay -----------------------------------------------------------------------------------


async def replay(
    link: Link,
    name: str,
    into: aio.EventManager[Any] | Callable[[Any], Awaitable[None]],
    *,
    until: int | None = None,
    timeout: float = 5.0,
    after: int = 0,
    skip: Collection[int] = (),
) -> int:
    """Deliver the durable events of ``name`` stored in the stream, oldest first, up to the
    stream sequence ``until`` (default: the last one stored now), to ``into``: a manager
    (``sync_notify``) or an async function. Undecodable events are skipped. Return how many
    were delivered. ``after``: start after this stream sequence; ``skip``: stream sequences
    not to deliver. If no event comes for ``timeout`` seconds while some up to ``until`` are
    still stored, the replay raises :class:`TransportDown` (it does not end short)."""
    js = link.nc.jetstream()
    stream, subject = stream_name(link.ns), durable_subject(link.pfx, name)
    if until is None:
        try:
            until = (await js.get_last_msg(stream, subject)).seq or 0
        except nats.js.errors.NotFoundError:
            return 0
    if until <= after:
        return 0
    deliver = into.sync_notify if isinstance(into, aio.EventManager) else into
    start = DeliverPolicy.BY_START_SEQUENCE
    sub = await js.subscribe(
        subject,
        stream=stream,
        ordered_consumer=True,
        deliver_policy=start,
        config=ConsumerConfig(deliver_policy=start, opt_start_seq=after + 1),
    )
    count, seen = 0, after
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout)
            except nats.errors.TimeoutError:
                # the end only if the events left were removed meanwhile; else it stalled
                await _check_nothing_left(js, stream, subject, seen, until, timeout)
                break
            seq = seen = msg.metadata.sequence.stream
            if seq > until:
                break
            try:
                body = _decode(link, msg.data)
            except MalformedMessage:
                body = _SKIP
            if body is not _SKIP and seq not in skip:
                await deliver(body)
                count += 1
            if seq >= until:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return count


_SKIP: Final = object()


async def _check_nothing_left(
    js: Any, stream: str, subject: str, seen: int, until: int, timeout: float
) -> None:
    """Raise :class:`TransportDown` unless the stream holds no event of ``subject`` after
    ``seen`` and at or below ``until`` (a replay that waited ``timeout`` s for one)."""
    try:
        left = await js.get_msg(stream, seq=seen + 1, subject=subject, next=True)
    except nats.js.errors.NotFoundError:
        return
    except (nats.errors.Error, TimeoutError) as exc:
        raise TransportDown(
            f"a replay of {subject!r} stalled after #{seen} (until #{until}): {exc!r}"
        ) from None
    if left.seq is not None and left.seq <= until:
        raise TransportDown(
            f"a replay of {subject!r} stalled: no event in {timeout} s after #{seen}, "
            f"though #{left.seq} (until #{until}) is stored"
        )


def setup_of(
    setup: Callable[[aio.EventManager[Any]], Awaitable[None] | None] | None,
) -> Callable[[aio.EventManager[Any]], Awaitable[None]]:
    """``setup`` as an async function (a plain function is called as it is)."""

    async def run(mgr: aio.EventManager[Any]) -> None:
        if setup is not None:
            result = setup(mgr)
            if result is not None:
                await result

    return run
