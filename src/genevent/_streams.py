"""Event streams: ``async for event in mgr.stream()`` (asyncio), ``for event in
mgr.stream()`` (threads).

A stream is an ordinary handler (``(StreamFeed, stream)`` in ``which_handlers``) that copies
the events it wants into the stream's own bounded buffer; the consumer takes them from there.
It starts when ``stream()`` is called: the feed is installed ahead of anything notified after
the call, so nothing notified after it is missed. It ends cleanly when the manager stops, when
the feed is deleted, or when the consumer leaves its loop (or calls ``close()``); if the feed
crashed (a ``where`` predicate raised, or the buffer overflowed under ``"raise"``), the
consumer gets that error after the events buffered before it.

Overflow (the same policies as mailboxes; default ``"drop_oldest"``, counted in
:attr:`counts`): ``"drop_oldest"`` and ``"drop_newest"`` keep the manager going whatever the
consumer does; ``"raise"`` ends the stream with :class:`~genevent.MailboxFull`; ``"block"``
makes the manager wait for the consumer, which stalls every handler of the manager: use it
only when the consumer must see every event and is known to keep up.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

from ._core import Args, Crashed, ExitReason, Remove, Stopped
from ._errors import GenEventError, MailboxFull
from ._functions import check_filter
from ._handler import EventHandler
from ._overflow import Action, Counts, OverflowPolicy, check_bound

__all__ = ("AsyncEventStream", "EventStream", "StreamFeed")

E = TypeVar("E")

_DEFAULT_MAXSIZE = 10_000


class _Stream(Generic[E]):
    """What both stream flavours share: the filter, the bound, the counts, the end."""

    feed_class: type[StreamFeed]

    def __init__(
        self,
        event_type: type[Any] | tuple[type[Any], ...] | None,
        where: Callable[[Any], object] | None,
        maxsize: int | None,
        overflow: OverflowPolicy,
    ) -> None:
        check_bound(maxsize, overflow)
        check_filter(event_type, where)  # InvalidHandler (a TypeError), as for subscribe
        self.event_type = event_type
        self.where = where
        self.maxsize = maxsize
        self.overflow: OverflowPolicy = overflow
        #: what happened to the events offered to this stream (sent, handled, dropped, ...)
        self.counts = Counts()
        self._buf: deque[Any] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self._closed = False
        #: its manager is stopping: a full ``"block"`` stream no longer waits for room (the
        #: event is dropped, counted), since the stop would wait on a consumer that may never
        #: read; the stream ends at the stop
        self._stopping = False
        #: the handler reference the stream is installed under
        self.ref: tuple[type[StreamFeed], _Stream[E]] = (self.feed_class, self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} buffered={len(self._buf)} ended={self._ended}>"

    def wants(self, event: Any) -> bool:
        et, where = self.event_type, self.where
        return (et is None or isinstance(event, et)) and (where is None or bool(where(event)))

    def _take(self) -> tuple[bool, Any]:
        """``(True, event)``, or ``(False, None)`` at the end (raising the feed's error)."""
        if self._buf:
            self.counts.handled += 1
            return True, self._buf.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return False, None

    def _offer_now(self, event: Any) -> Action:
        """Put ``event`` in the buffer if the policy lets it in now (never waits)."""
        action = self.counts.offer(len(self._buf), self.maxsize, self.overflow)
        if action is Action.ACCEPT:
            self._buf.append(event)
        elif action is Action.DROP_OLDEST:
            self._buf.popleft()
            self._buf.append(event)
        elif action is Action.REFUSE:
            raise MailboxFull(self, self.maxsize or 0)
        return action

    def _deliver(self, event: Any) -> None:  # pragma: no cover - each flavour has its own
        raise NotImplementedError

    def _wake_consumer(self) -> None:  # pragma: no cover - each flavour has its own
        raise NotImplementedError

    def manager_stopping(self) -> None:  # pragma: no cover - each flavour has its own
        """Its manager began to stop (any thread): stop waiting for room."""
        raise NotImplementedError

    def manager_stopped(self) -> None:
        """Its manager stopped: the stream ends (if its feed did not end it already, say its
        subscription was refused by the stop) and its consumer is woken."""
        if not self._ended:
            self._end(Stopped())
            self._wake_consumer()

    def _drop_arriving(self) -> None:
        """A full ``"block"`` stream of a stopping manager: the arriving event is dropped."""
        self.counts.sent += 1
        self.counts.dropped += 1

    def _end(self, reason: ExitReason) -> None:
        self._ended = True
        if isinstance(reason, Crashed):
            exc = reason.exception
            self._error = exc if isinstance(exc, GenEventError) else _stream_error(exc)


def _stream_error(exc: BaseException) -> BaseException:
    err = GenEventError(f"the stream's feed crashed: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


class StreamFeed(EventHandler[Any, Any, Any]):
    """The handler a stream installs: copies wanted events into the stream's buffer."""

    def init(self, stream: _Stream[Any], /) -> None:
        """Keep the stream."""
        self.stream = stream

    def handle_event(self, event: Any, /) -> Remove[Any] | None:
        """Offer a wanted event to the buffer (under its overflow policy)."""
        stream = self.stream
        if stream._closed:
            return Remove()
        if stream.wants(event):
            stream._deliver(event)
        return None

    def terminate(self, reason: ExitReason, /) -> None:
        """End the stream (with the feed's error, if it crashed)."""
        self.stream._end(reason)
        self.stream._wake_consumer()

    def format_status(self) -> dict[str, Any]:
        """Crash reports show the stream's filter and counts, not its buffer."""
        s = self.stream
        return {"event_type": s.event_type, "maxsize": s.maxsize, "counts": s.counts}


class _AsyncBlockingFeed(StreamFeed):
    """The feed of an asyncio stream under ``"block"``: waits (stalling its manager) for room."""

    async def handle_event(self, event: Any, /) -> Remove[Any] | None:  # type: ignore[override]
        """Wait for room, then buffer the event."""
        stream = self.stream
        assert isinstance(stream, AsyncEventStream)
        if stream.wants(event):
            while not stream._closed and stream._full():
                if stream._stopping:  # its manager stops: waiting could last for ever
                    stream._drop_arriving()
                    return None
                await stream._wait_room()
            if stream._closed:
                return Remove()
            stream._deliver(event)
        return None if not stream._closed else Remove()


# ---------------------------------------------------------------------------- asyncio


class AsyncEventStream(_Stream[E]):
    """``async for event in mgr.stream(...)``: see :mod:`genevent.aio`'s ``stream``. Also an
    async context manager (``async with mgr.stream() as events:``) that closes it on exit."""

    feed_class = StreamFeed

    def __init__(
        self,
        manager: Any,
        event_type: type[Any] | tuple[type[Any], ...] | None = None,
        where: Callable[[Any], object] | None = None,
        maxsize: int | None = _DEFAULT_MAXSIZE,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> None:
        if overflow == "block":
            self.feed_class = _AsyncBlockingFeed
        super().__init__(event_type, where, maxsize, overflow)
        self._manager = manager
        self._loop = manager.loop
        self._item: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        manager._install_stream(self)

    def _full(self) -> bool:
        return self.maxsize is not None and len(self._buf) >= self.maxsize

    async def _wait_room(self) -> None:
        self._room = self._loop.create_future()
        await self._room

    def _deliver(self, event: Any) -> None:
        self._offer_now(event)  # under "block" the feed waited for room first
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        fut, self._item = self._item, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _wake_producer(self) -> None:
        fut, self._room = self._room, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def manager_stopping(self) -> None:
        """Its manager began to stop (from its loop): stop waiting for room."""
        self._stopping = True
        self._wake_producer()

    def __aiter__(self) -> AsyncIterator[E]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[E]:
        try:
            while True:
                event = await self._next()
                if event is _END:
                    return
                yield event
        finally:
            self.close()

    async def _next(self) -> Any:
        """The next event, or the end marker once the stream ended."""
        while True:
            more, event = self._take()
            if more:
                self._wake_producer()
                return event
            if self._ended or self._closed:
                return _END
            self._item = self._loop.create_future()
            await self._item

    def close(self) -> None:
        """Stop the stream: its feed is removed with the next event or at once, what is
        buffered is dropped (counted), and iteration ends. Idempotent; safe from any task."""
        if self._closed:
            return
        self._closed = True
        self.counts.dropped += len(self._buf)
        self._buf.clear()
        self._wake_producer()
        self._wake_consumer()
        self._manager._remove_stream(self)

    async def __aenter__(self) -> AsyncEventStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- threads


class EventStream(_Stream[E]):
    """``for event in mgr.stream(...)``: see :mod:`genevent.threads`' ``stream``. Also a
    context manager that closes it on exit. Iterate it from one thread."""

    feed_class = StreamFeed

    def __init__(
        self,
        manager: Any,
        event_type: type[Any] | tuple[type[Any], ...] | None = None,
        where: Callable[[Any], object] | None = None,
        maxsize: int | None = _DEFAULT_MAXSIZE,
        overflow: OverflowPolicy = "drop_oldest",
        timeout: float | None = None,
    ) -> None:
        super().__init__(event_type, where, maxsize, overflow)
        self._manager = manager
        self._cond = threading.Condition(threading.Lock())
        manager.add_handler(self.ref, Args(self), timeout=timeout)

    def _deliver(self, event: Any) -> None:
        with self._cond:
            if self.overflow == "block":
                while not self._closed and self.maxsize is not None:
                    if len(self._buf) < self.maxsize:
                        break
                    if self._stopping:  # its manager stops: waiting could last for ever
                        self._drop_arriving()
                        return
                    self._cond.wait()
                if self._closed:
                    return
            self._offer_now(event)
            self._cond.notify_all()

    def _wake_consumer(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def manager_stopping(self) -> None:
        """Its manager began to stop (any thread): stop waiting for room."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[E]:
        try:
            while True:
                with self._cond:
                    while True:
                        more, event = self._take()
                        if more:
                            self._cond.notify_all()  # room for a blocked feed
                            break
                        if self._ended or self._closed:
                            return
                        self._cond.wait()
                yield event
        finally:
            self.close()

    def close(self) -> None:
        """Stop the stream: its feed is removed, what is buffered is dropped (counted), and
        iteration ends. Idempotent; safe from any thread but the manager's own."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self.counts.dropped += len(self._buf)
            self._buf.clear()
            self._cond.notify_all()
        self._manager._remove_stream(self)

    def __enter__(self) -> EventStream[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END: Any = object()
