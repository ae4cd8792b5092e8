"""The managers a node hosts: claiming their names, one subscription per manager
(``ge.<ns>.mgr.<M>.*``: one subject per kind of operation, one subscription for all of them,
so a call never overtakes an earlier notify from the same connection), serving each request
by the protocol's operation table (refusing an operation that came on the subject of another
kind), answering, and letting go."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from nats.aio.msg import Msg

from .. import aio
from .._errors import GenEventError, NameTaken
from .._tracing import incoming
from ._durable import Consumer, claim_when_free
from ._durable_api import Durable
from ._errors import MalformedMessage, NotEncodable, PayloadTooLarge
from ._link import Link, sync
from ._names import Names
from ._protocol import KINDS, OPERATIONS, HandlerNames, Supervising, error_reply, text_of
from ._throttle import Throttle
from ._wire import VERSION, Codec, Reply, check_name

__all__ = ("Serving",)

log = logging.getLogger("genevent.nats")

#: the longest the serving keeps the event loop before it yields (seconds; at the latest
#: after _PACE frames): however fast frames arrive, the lease renewal, heartbeats and the
#: other managers' requests get their turn, and nats-py's reader (which takes at most 64 KiB
#: off the socket per turn) keeps up, so that replies to this node are not stuck behind them
_SLICE = 0.001
_PACE = 64


class _Hosted:
    """One hosted manager, as the operations see it."""

    __slots__ = (
        "_serving",
        "bounded",
        "busy",
        "claimed",
        "durable",
        "handlers",
        "idle",
        "mgr",
        "name",
        "revision",
        "sub",
        "supervision",
        "watcher",
    )

    def __init__(self, serving: Serving, name: str, mgr: aio.EventManager[Any]) -> None:
        self._serving = serving
        self.name = name
        self.mgr = mgr
        self.handlers = serving.handlers
        self.supervision = serving.supervision
        self.sub: Any = None
        self.revision = 0  # the claim to free when it stops (-1: none, the name was lost)
        self.claimed = 0  # the claim's revision, named in the "stopped" notice
        self.watcher: asyncio.Task[None] | None = None
        self.durable: Consumer | None = None  # its durable notifies' consumer, if any
        self.bounded = False  # a bounded mailbox under "block": notify waits for room
        self.busy = 0  # requests being served (the subscription's callback is running)
        self.idle = asyncio.Event()

    def refuse(self, what: str, exc: MalformedMessage, count: int = 1) -> None:
        self._serving.refuse(what, self.name, exc, count)

    async def stop(self) -> None:
        await self.stop_consumer()
        await self.mgr.stop()
        await self._serving.unhost(self.name)

    async def stop_consumer(self) -> None:
        """Stop taking durable events before the manager stops: an event taken by a stopped
        manager would be given back and count towards ``max_deliver``."""
        if self.durable is not None:
            await self.durable.stop()


class Serving:
    """The hosting side of a node."""

    def __init__(
        self,
        link: Link,
        names: Names,
        handlers: HandlerNames,
        max_frame: int | None,
        supervision: Supervising,
    ) -> None:
        self._link = link
        self._names = names
        self.handlers = handlers
        self.supervision = supervision
        self._max_frame = max_frame
        self.hosted: dict[str, _Hosted] = {}
        self._leaving: dict[str, asyncio.Event] = {}
        #: tasks still letting go of a manager (the node waits for them when it closes)
        self.background: set[asyncio.Task[Any]] = set()
        #: frames refused as malformed (or too large) since the start
        self.refused = 0
        #: a few warnings a second, however many frames are refused
        self._throttle = Throttle(time.monotonic)
        self._report: asyncio.TimerHandle | None = None
        self._paced = 0
        self._yielded = time.monotonic()

    async def start(
        self,
        name: str,
        maxsize: int | None,
        overflow: Literal["block", "drop_newest", "drop_oldest", "raise"],
        timing: bool,
        durable: Durable | None = None,
        standby: bool = False,
        setup: Callable[[aio.EventManager[Any]], Awaitable[None]] | None = None,
    ) -> aio.EventManager[Any]:
        """Start a manager, claim ``name`` (waiting for it if ``standby``), run ``setup`` on
        it and serve it, its durable notifies too if ``durable`` (see ``Node.start_manager``)."""
        link = self._link
        check_name(name)
        link.check_up()
        if name in self.hosted:
            raise NameTaken(name, link.id)
        mgr: aio.EventManager[Any] = aio.start(maxsize=maxsize, overflow=overflow, timing=timing)
        # its cluster name, for its stats, repr and crash reports; not registered in this
        # process's names (genevent.whereis), where another manager may hold it
        mgr.name = name
        try:
            if standby:
                revision = await claim_when_free(self._names, link, name)
            else:
                revision = await self._names.claim(name)
        except BaseException:
            await mgr.stop()
            raise
        hosted = _Hosted(self, name, mgr)
        hosted.revision = hosted.claimed = revision
        hosted.bounded = maxsize is not None and overflow == "block"
        self.hosted[name] = hosted
        link.where[name] = link.id
        try:
            if setup is not None:  # its handlers, before the first request or durable event
                await setup(mgr)
            # one subscription for every kind: one caller's requests stay in their order
            hosted.sub = await link.nc.subscribe(
                f"{link.pfx}.mgr.{name}.*", cb=self._server(hosted)
            )
            await sync(link.nc)  # the server has the subscription: requests reach it
            if durable is not None:  # bound only now that the name is ours
                hosted.durable = Consumer(link, name, mgr, durable)
                await hosted.durable.start()
        except BaseException:
            await mgr.stop()
            await self.unhost(name)
            raise
        hosted.watcher = asyncio.get_running_loop().create_task(self._watch_stop(hosted))
        return mgr

    async def stop_all(self) -> None:
        """Stop every hosted manager and stop serving it."""
        for hosted in list(self.hosted.values()):
            await hosted.stop_consumer()
            with contextlib.suppress(GenEventError):
                if hosted.mgr.is_running:
                    await hosted.mgr.stop()
            await self.unhost(hosted.name)

    async def _watch_stop(self, hosted: _Hosted) -> None:
        await hosted.mgr.wait_stopped()
        await self.unhost(hosted.name)

    async def unhost(self, name: str) -> None:
        """Stop serving ``name``: free its claim, unsubscribe, tell the monitors."""
        hosted = self.hosted.pop(name, None)
        if hosted is None:  # someone else is un-hosting it: return when they are done
            leaving = self._leaving.get(name)
            if leaving is not None:
                await leaving.wait()
            return
        link = self._link
        leaving = self._leaving[name] = asyncio.Event()
        try:
            if link.where.get(name) == link.id:
                del link.where[name]
            current = asyncio.current_task()
            if hosted.watcher is not None and hosted.watcher is not current:
                hosted.watcher.cancel()
            if hosted.durable is not None:  # no more durable events before the name is free
                await hosted.durable.stop()
            if self._names.is_open and link.nc.is_connected and hosted.revision >= 0:
                with contextlib.suppress(Exception):
                    await self._names.release(name, hosted.revision)
            # unsubscribing cancels the subscription's task, which may be serving the very
            # request that stopped the manager: a task of its own waits until it answered
            task = asyncio.get_running_loop().create_task(self._unsubscribe(hosted))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        finally:
            del self._leaving[name]
            leaving.set()

    async def _unsubscribe(self, hosted: _Hosted) -> None:
        link = self._link
        while hosted.busy:
            hosted.idle.clear()
            await hosted.idle.wait()
        if hosted.sub is not None:
            try:
                # a drain, not an unsubscribe: the requests that arrived before it are still
                # served (each told the manager is gone), none is left to its caller's timeout
                await hosted.sub.drain()
            except Exception:
                with contextlib.suppress(Exception):
                    await hosted.sub.unsubscribe()
        with contextlib.suppress(Exception):
            if link.nc.is_connected:
                await sync(link.nc)  # the server stopped routing to it before monitors hear
        notice = {"node": link.id, "reason": "noproc", "rev": hosted.claimed}
        notice_data = json.dumps(notice).encode()
        with contextlib.suppress(Exception):
            await link.nc.publish(f"{link.pfx}.down.{hosted.name}", notice_data)

    async def verify_names(self) -> None:
        """Stop serving every name another node claimed while our lease had lapsed."""
        node_id = self._link.id
        for name, hosted in list(self.hosted.items()):
            try:
                holder = await self._names.holder(name)
            except Exception:
                continue  # cannot tell now; the next lapse checks again
            if holder == node_id:
                continue
            log.warning(
                "genevent.nats: node %r lost the name %r to %r while its lease had lapsed; "
                "stopping its manager",
                node_id,
                name,
                holder,
            )
            hosted.revision = -1  # never delete the new holder's claim
            await hosted.stop_consumer()
            with contextlib.suppress(GenEventError):
                await hosted.mgr.stop()
            await self.unhost(name)

    # -- requests -----------------------------------------------------------------------------

    def refuse(self, what: str, name: str, exc: MalformedMessage, count: int = 1) -> None:
        """Count ``count`` refused frames (or batch items) and log them, a few lines a second
        at most."""
        self.refused += count
        self._warn("genevent.nats: refused %s for %r: %s", what, name, exc)

    def _warn(self, text: str, *args: object, exc_info: bool = False) -> None:
        if self._throttle.allow():
            self._report_suppressed()
            log.warning(text, *args, exc_info=exc_info)
        elif self._report is None:  # say how many were left out, in a second
            with contextlib.suppress(RuntimeError):  # no running loop: the next line says it
                loop = asyncio.get_running_loop()
                self._report = loop.call_later(1.0, self._report_suppressed)

    def _report_suppressed(self) -> None:
        if self._report is not None:
            self._report.cancel()
            self._report = None
        more = self._throttle.take_suppressed()
        if more:
            log.warning(
                "genevent.nats: %d more warnings suppressed (Node.refused counts every "
                "refused frame)",
                more,
            )

    def _server(self, hosted: _Hosted) -> Callable[[Msg], Awaitable[None]]:
        async def serve(msg: Msg) -> None:
            # nats-py runs one subscription's callbacks one after the other: each request is
            # handed to the manager (and a control request answered) before the next one
            hosted.busy += 1
            try:
                headers = msg.headers
                if headers and "traceparent" in headers:  # sent in a trace: served in it
                    with incoming(headers):
                        await self._serve(hosted, msg)
                else:
                    await self._serve(hosted, msg)
            finally:
                hosted.busy -= 1
                if not hosted.busy:
                    hosted.idle.set()
            # nats-py hands queued frames over without yielding: yield now and then
            self._paced += 1
            if self._paced >= _PACE or time.monotonic() - self._yielded >= _SLICE:
                await asyncio.sleep(0)
                self._paced = 0
                self._yielded = time.monotonic()

        return serve

    async def _serve(self, hosted: _Hosted, msg: Msg) -> None:
        link = self._link
        data = msg.data
        reply_to = msg.reply
        codec = link.json_codec if Codec.is_json(data) else link.mp_codec
        max_frame = self._max_frame
        if max_frame is not None and len(data) > max_frame:
            self.refused += 1
            err = PayloadTooLarge(f"a {len(data)}-byte frame; this node takes {max_frame}")
            self._answer(reply_to, self._error(err), codec)
            return
        try:
            req = codec.decode_request(data)
            op = OPERATIONS.get(req.op)
            if op is None:
                raise MalformedMessage(f"unknown operation {req.op!r}")
            kind = msg.subject.rpartition(".")[2]
            if kind != op.kind:  # the subject is what NATS permissions allowed
                raise MalformedMessage(
                    f"{req.op!r} is a {op.kind} operation: it does not come on the "
                    f"{kind if kind in KINDS else repr(kind)} subject"
                )
            if req.op == "batch":  # its items are checked one by one
                refused = await op.run(hosted, req, None, codec)  # the error for a long tail
                done = Reply(v=VERSION, n=link.id) if refused is None else self._error(refused)
                self._answer(reply_to, done, codec)
                return
            body = codec.from_wire(req.body)
        except MalformedMessage as exc:
            hosted.refuse("a frame", exc)
            self._answer(reply_to, self._error(exc), codec)
            return
        try:
            result = await op.run(hosted, req, body, codec)
            rep = Reply(v=VERSION, ok=codec.to_wire(result), n=link.id)
        except (GenEventError, MalformedMessage) as exc:
            rep = self._error(exc)
        except Exception as exc:  # never let a request crash the node
            self._warn("genevent.nats: %s on %r failed", req.op, hosted.name, exc_info=True)
            rep = Reply(v=VERSION, err=type(exc).__name__, msg=text_of(exc), n=link.id)
        self._answer(reply_to, rep, codec)

    def _error(self, exc: Exception) -> Reply:
        return error_reply(exc, self._link.id, self.handlers.by_class)

    def _answer(self, reply_to: str, rep: Reply, codec: Codec) -> None:
        if not reply_to:
            return
        link = self._link
        try:
            payload = link.encode(rep, codec)
        except (NotEncodable, PayloadTooLarge) as exc:
            payload = link.encode(self._error(exc), codec)
        link.post(reply_to, "", payload)
