"""ManagerCore: gen_event's handler list as a pure, synchronous state machine.

Theory of operation
-------------------
A runtime (asyncio, threads, later a network transport) owns a mailbox and takes one message at
a time. For each message it runs one of the core's *procedures*: a generator that yields
effects (:mod:`._effects`) and returns the reply for the caller, or raises the typed error the
caller must get. The runtime performs each effect (calls user code, tells an owner, watches an
owner, logs a report) and sends user code's outcome back into the generator. Because every
procedure is a generator, the asyncio runtime can await coroutine callbacks and the thread
runtime can run the very same procedure without an event loop.

Rules of this package
~~~~~~~~~~~~~~~~~~~~~
1. Everything that changes the handler table lives in this package (the table and the
   requests here, restarts in :mod:`._restarting`); nothing in it calls user code, blocks,
   reads a clock, creates a task or thread, locks, logs or serialises. (The standard library's
   ``inspect`` and ``weakref`` are used to read handler classes, :mod:`._classes`; they run no
   user code.) The other modules: :mod:`._entry` (one installed handler),
   :mod:`._callbacks` (the building blocks that yield user code's invocations),
   :mod:`._departures` (how handlers left, for :class:`HandlerNotFound`).
2. The table is consistent before every ``yield``: an effect may re-enter the runtime (an owner
   callback may ``notify``), so a departing handler is unlinked before its ``terminate`` runs.

Invariants (each pinned by tests)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
1. Handlers are kept newest first; events, infos and stop visit them in that order.
2. Every procedure returns or raises exactly once: each request gets exactly one answer.
3. A handler that leaves gets exactly one ``terminate`` (none if its ``init`` failed); if it was
   supervised, its owner then gets exactly one notice, after that ``terminate`` ran.
4. A swap hands the old ``terminate`` result to the new ``init``; an API swap puts the new
   handler first, a swap a handler asked for keeps its place; both keep the owner unless the
   API call was ``swap_sup_handler``.
5. After any failure the table is consistent and the manager goes on.

Isolated handlers
~~~~~~~~~~~~~~~~~
A runtime may give a handler a *lane* (its own mailbox, run by a task or thread of the
runtime's): an opaque object with ``post(event)`` and ``post_info(message)``, which queue and
return None. The entry's ``event_fn``/``info_fn`` are then those, so every dispatch path (the
hot loop, :meth:`ManagerCore.notify`, :meth:`ManagerCore.info`) just queues; the lane runs the
handler's own callbacks and brings what changes the table back to the manager, which applies
it with :meth:`ManagerCore.event_result` / :meth:`ManagerCore.call_result` in mailbox order.
The other callbacks (the class, ``init``, ``terminate``, ``format_status``) are yielded as
:class:`Invoke` with ``via=lane``. A handler that replaces it (a swap, a restart) keeps the
lane, and with it the events queued behind the one that made it leave.

The hot path
~~~~~~~~~~~~
``notify`` must cost little more than a method call per handler, so runtimes may dispatch a plain
event themselves: iterate :attr:`ManagerCore.event_targets` (a tuple rebuilt only when the table
changes), call each bound ``handle_event``, and enter the core (:meth:`ManagerCore.event_result`)
only when a callback raised or returned something other than ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any

from .._errors import (
    CallNotSupported,
    Departure,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    TerminateFailed,
    _name,
)
from . import _restarting
from ._callbacks import get_state, late_call_result, start, tell, terminate
from ._classes import check_class, handler_key
from ._departures import close_to, left_for, remember
from ._effects import (
    Effect,
    Invoke,
    Outcome,
    Procedure,
    Raised,
    Report,
    Returned,
    Settle,
    Unwatch,
    Watch,
)
from ._entry import Entry, OnExit
from ._instructions import NO_ARGS, NO_HANDOFF, Remove, Swap, is_plain_reply, misuse_hint
from ._reasons import (
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    OwnerExited,
    RemovedItself,
    StartFailed,
    Stopped,
    Swapped,
)
from ._restart import Restart

__all__ = ("ManagerCore",)


class ManagerCore:
    """The handler list of one event manager, with gen_event's rules for every request.

    ``manager`` is an opaque label put into owner notices; ``allow_async`` says whether handler
    methods may be coroutine functions (the thread runtime refuses them)."""

    #: how many departures (:class:`~genevent.Departure`) a manager remembers, newest kept, so
    #: that :class:`HandlerNotFound` can say why an id that was installed is not any more
    DEPARTURES_KEPT = 16
    #: at most this many installed ids (of the class asked for, or of its name) are compared
    #: with a missing one to suggest a close one
    SUGGEST_AMONG = 256

    def __init__(
        self,
        manager: Any = None,
        *,
        allow_async: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.manager = manager
        self.allow_async = allow_async
        #: the runtime's monotonic clock, read only to apply restart intensities (the core
        #: itself never reads a clock: the runtime passes one in)
        self.clock = clock
        self.entries: list[Entry] = []  # newest first
        #: the entries by reference (read-only outside the core; :meth:`find` also takes
        #: unhashable references)
        self.by_ref: dict[Any, Entry] = {}
        self._owners: dict[Any, int] = {}
        #: number of installed handlers with at least one coroutine method (isolated ones,
        #: which the manager never awaits, not counted)
        self.async_count = 0
        #: number of installed isolated handlers (with a lane)
        self.isolated = 0
        #: isolated entries installed or removed since the runtime last looked (it takes the
        #: list, then serves or closes their lanes: see ``genevent._lanes.reap``), so that a
        #: table edit costs the runtime nothing for the other isolated handlers; None when
        #: there are none (made on first use: a manager without isolated handlers stays small)
        self.lane_edits: list[Entry] | None = None
        #: :attr:`event_targets` when fresh, None when the table changed since (hot loops read
        #: ``core.cached_targets or core.event_targets`` to skip the property call)
        self.cached_targets: tuple[tuple[Entry, Callable[[Any], Any]], ...] | None = ()
        #: True once :meth:`stop` ran
        self.stopped = False
        #: True from the moment the runtime began to stop (:meth:`begin_stop`): a restart
        #: whose ``init`` fails is not tried again
        self.stopping = False
        #: True once no handler may be restarted at all (a stop that drops the backlog, or
        #: the final :meth:`stop`)
        self.restarts_off = False
        #: handlers whose restart ``init`` failed, waiting for their next attempt (a
        #: :class:`Retry`): reference -> (the entry that left, the reason it last left for)
        self.retrying: dict[Any, tuple[Entry, ExitReason]] = {}
        #: the last :attr:`DEPARTURES_KEPT` handlers that left (reference -> how and when,
        #: oldest first), for :meth:`not_found`; None until one left
        self.departed: dict[Any, Departure] | None = None
        # -- metrics: counted on slow paths here; the runtimes count requests and events with
        # :meth:`count_request` / :meth:`count_events`, or (their drain loops' hot path) by
        # adding a batch to ``events``
        #: events handled
        self.events = 0
        #: info messages handled
        self.infos = 0
        #: control requests handled
        self.requests = 0
        #: handlers that crashed or returned a bad value, in all and per reference
        self.crashes = 0
        self.crashes_by_ref: dict[Any, int] | None = None  # made at the first crash
        #: restarts done by restart policies
        self.restarts = 0
        #: when set (by a runtime that times callbacks), ``wrap_event(entry, fn)`` gives what
        #: the hot path calls instead of a plain handler's bound ``handle_event``
        self.wrap_event: Callable[[Entry, Callable[[Any], Any]], Callable[[Any], Any]] | None = None
        #: when set (a traced manager), what makes the class a handler is instantiated from
        self.wrap_class: Callable[[type], type] | None = None

    # -- counters: written here (and restarts in ``_restarting``), read by ``genevent._metrics``

    def count_request(self, events: int = 0) -> None:
        """A control request was handled (or passed on to an isolated handler's lane);
        ``events``: the events it handled itself (a ``sync_notify``'s one). The runtimes' drain
        loops add their batches of events to :attr:`events` themselves (one addition per
        batch: the hot path)."""
        self.requests += 1
        if events:
            self.events += events

    def count_events(self, n: int) -> None:
        """``n`` events were handled outside a drain loop's batch."""
        self.events += n

    def _count_crash(self, ref: Any) -> None:
        """The handler installed under ``ref`` crashed or returned a bad value."""
        self.crashes += 1
        by_ref = self.crashes_by_ref
        if by_ref is None:
            by_ref = self.crashes_by_ref = {}
        by_ref[ref] = by_ref.get(ref, 0) + 1

    # -- queries -----------------------------------------------------------------------------

    def which_handlers(self) -> list[Any]:
        """The installed handler references, newest first (OTP's ``which_handlers``)."""
        return [e.ref for e in self.entries]

    def find(self, ref: Any) -> Entry | None:
        """The entry installed under ``ref``, or None."""
        try:
            return self.by_ref.get(ref)
        except TypeError:  # unhashable reference: never installed
            return None

    @property
    def event_targets(self) -> tuple[tuple[Entry, Callable[[Any], Any]], ...]:
        """``(entry, bound handle_event)`` for every handler, newest first; cached until the
        table changes. The tuple is a snapshot: a handler swapped in during an event is not in
        it, so it does not see that event (docs/semantics.md A17)."""
        targets = self.cached_targets
        if targets is None:
            wrap = self.wrap_event
            if wrap is None:
                targets = tuple([(e, e.event_fn) for e in self.entries])
            else:
                targets = tuple(
                    (e, e.event_fn if e.event_is_async or e.lane else wrap(e, e.event_fn))
                    for e in self.entries
                )
            self.cached_targets = targets
        return targets

    def not_found(self, ref: Any, *, suggest: bool = True) -> HandlerNotFound:
        """The :class:`HandlerNotFound` for ``ref``: how and how many events ago it left if
        this manager remembers it, else (``suggest``) an installed reference close to it. Reads
        :attr:`departed` with one ``dict.get``, so a lane may call it from its own thread with
        ``suggest=False``."""
        departed = self.departed
        left = None
        if departed:
            try:
                left = departed.get(ref)
            except TypeError:  # unhashable: never installed
                left = None
        if left is not None:
            return HandlerNotFound(ref, left, max(self.events - left.at_event, 0))
        return HandlerNotFound(
            ref,
            suggestion=close_to((e.ref for e in self.entries), ref, self.SUGGEST_AMONG)
            if suggest
            else None,
        )

    def _note_left(self, ref: Any, how: str, summary: str) -> None:
        """Remember that ``ref`` left (see :attr:`departed`), forgetting the oldest beyond
        :attr:`DEPARTURES_KEPT`."""
        left = Departure(ref, how, summary, self.events)
        self.departed = remember(self.departed, left, self.DEPARTURES_KEPT)

    def owners(self) -> list[Any]:
        """The owners that currently own at least one handler."""
        return list(self._owners)

    # -- table edits (no user code) ----------------------------------------------------------

    def _insert(self, index: int, entry: Entry) -> Generator[Effect, Any, None]:
        if self._link(index, entry):
            yield Watch(entry.owner)

    def _link(self, index: int, entry: Entry) -> bool:
        """Put ``entry`` in the table at ``index``; True if its owner must now be watched
        (its first handler here), which the caller yields."""
        entry.events_at = self.events
        self.entries.insert(index, entry)
        self.by_ref[entry.ref] = entry
        if self.departed:  # back: what it left for no longer applies
            self.departed.pop(entry.ref, None)
        self.cached_targets = None
        if entry.is_async:
            self.async_count += 1
        if entry.lane is not None:
            self.isolated += 1
            self.note_lane(entry)
        if entry.owner is None:
            return False
        n = self._owners.get(entry.owner, 0)
        self._owners[entry.owner] = n + 1
        return n == 0

    def _unlink(self, entry: Entry) -> int:
        """Take ``entry`` out of the table; return the index it had."""
        index = self.entries.index(entry)
        del self.entries[index]
        del self.by_ref[entry.ref]
        entry.alive = False
        self.cached_targets = None
        if entry.is_async:
            self.async_count -= 1
        if entry.lane is not None:
            self.isolated -= 1
            self.note_lane(entry)
        return index

    def note_lane(self, entry: Entry) -> None:
        """Add ``entry`` (isolated) to :attr:`lane_edits`: its lane is looked at next time."""
        edits = self.lane_edits
        if edits is None:
            self.lane_edits = [entry]
        else:
            edits.append(entry)

    def _release_owner(self, owner: Any) -> Generator[Effect, Any, None]:
        if owner is None:
            return
        n = self._owners[owner] - 1
        if n:
            self._owners[owner] = n
        else:
            del self._owners[owner]
            yield Unwatch(owner)

    # -- leaving ------------------------------------------------------------------------------

    def _leave(
        self, entry: Entry, reason: ExitReason, message: Any = None, callback: str | None = None
    ) -> Generator[Effect, Any, tuple[bool, Any]]:
        """Remove ``entry`` for ``reason``: unlink, terminate, report a failure (naming the
        ``callback`` that failed), tell the owner."""
        self._unlink(entry)
        result = yield from terminate(entry, reason)
        if type(reason) is Crashed or type(reason) is BadReturn:
            self._count_crash(entry.ref)
            yield Report("crash", entry.ref, entry.instance, message, reason, callback)
        restart = entry.restart
        if restart is not None and restart.wants(reason):
            restarted, reason = yield from _restarting.restart(self, entry, restart, reason)
            if restarted:
                return result  # same owner, still watched; nobody is told of a restart
        yield from _restarting.gone_for_good(self, entry, reason, callback)
        return result

    def retry_restart(self, ref: Any) -> Procedure:
        """The time for another attempt to restart ``ref`` came (a :class:`Retry` the runtime
        scheduled): try again, or give up for good (see :func:`._restarting.retry_restart`)."""
        return _restarting.retry_restart(self, ref)

    # -- requests ----------------------------------------------------------------------------

    def add_handler(
        self,
        ref: Any,
        args: Any = NO_ARGS,
        owner: Any = None,
        on_exit: OnExit | None = None,
        restart: Restart | None = None,
        lane: Any = None,
    ) -> Procedure:
        """``add_handler`` / ``add_sup_handler`` (when ``owner`` is given): init, install first.
        ``restart`` (see :mod:`._restart`) says when it is added again after it left;
        ``lane`` makes it an isolated handler (see the module documentation)."""
        cls = handler_key(ref)
        if self.find(ref) is not None:
            raise HandlerExists(ref)
        if restart is not None and self.clock is None:
            raise ValueError("restart policies need a clock: this runtime gave the core none")
        instance, info = yield from start(
            ref, args, NO_HANDOFF, False, lane, self.allow_async, cls, self.wrap_class
        )
        # init may have re-entered (a notify is queued, never run inline), so re-check.
        if self.find(ref) is not None:
            raise HandlerExists(ref)
        entry = Entry(ref, instance, info, owner, on_exit, lane)
        entry.restart = restart
        if self._link(0, entry):  # _insert, without a generator of its own
            yield Watch(owner)

    def delete_handler(self, ref: Any, args: Any = None) -> Procedure:
        """``delete_handler``: terminate with :class:`Deleted`, return terminate's result."""
        entry = self.find(ref)
        if entry is None:
            handler_key(ref)  # InvalidHandler for something that is not a reference at all
            raise self.not_found(ref)
        ok, result = yield from self._leave(entry, Deleted(args))
        if not ok:
            raise TerminateFailed(ref, result) from result
        return result

    def swap_handler(
        self,
        old: Any,
        args1: Any,
        new: Any,
        args2: Any = NO_ARGS,
        *,
        sup: bool = False,
        owner: Any = None,
        on_exit: OnExit | None = None,
    ) -> Procedure:
        """``swap_handler`` / ``swap_sup_handler`` (``sup=True``; the caller's ``owner`` and
        ``on_exit`` take over). The new handler goes first; it is installed even if ``old`` is
        missing (its ``init`` gets ``handoff=NO_HANDOFF``); ``old`` is gone even if the new
        ``init`` fails. The new handler takes over ``old``'s lane if it was isolated."""
        handler_key(old)
        handler_key(new)
        existing = self.find(new)
        old_entry = self.find(old)
        if existing is not None and existing is not old_entry:
            raise HandlerExists(new)
        if not sup:
            owner = old_entry.owner if old_entry is not None else None
            on_exit = old_entry.on_exit if old_entry is not None else None
        handoff: Any = NO_HANDOFF
        if old_entry is not None:
            reason = Swapped(args1, new, owner)
            self._unlink(old_entry)
            self._note_left(old, "swapped", f"it was swapped for {_name(new)} (swap_handler)")
            _, handoff = yield from terminate(old_entry, reason)
            yield from tell(old_entry, reason, self.manager)
        # the old owner is released only after the new entry is in, so that an owner that stays
        # is not unwatched and watched again in between
        old_owner = old_entry.owner if old_entry is not None else None
        lane = old_entry.lane if old_entry is not None else None
        try:
            instance, info = yield from start(
                new, args2, handoff, True, lane, self.allow_async, wrap=self.wrap_class
            )
            if self.find(new) is not None:  # installed meanwhile by re-entrant code
                raise HandlerExists(new)
        except (HandlerInitFailed, HandlerExists):
            yield from self._release_owner(old_owner)
            raise
        yield from self._insert(0, Entry(new, instance, info, owner, on_exit, lane))
        yield from self._release_owner(old_owner)

    def call(self, ref: Any, request: Any) -> Procedure:
        """``call``: the handler's reply; removal or swap it asked for happens first."""
        entry = self.find(ref)
        if entry is None:
            handler_key(ref)  # InvalidHandler for something that is not a reference at all
            raise self.not_found(ref)
        if entry.call_fn is None:
            raise CallNotSupported(ref)
        out = yield Invoke(entry.call_fn, (request,), entry.call_is_async, via=entry.lane)
        return (yield from self.call_result(entry, out, request))

    def call_result(self, entry: Entry, out: Outcome | None, request: Any) -> Procedure:
        """Act on ``handle_call``'s outcome; return the reply or raise the caller's error.
        The classes :class:`Remove` and :class:`Swap` themselves (a forgotten ``()``) are a
        bad return, never a reply. (An isolated handler's outcome may arrive after the handler
        left by another request: the caller then gets the reply or the error, and nothing
        else happens.)"""
        if not entry.alive:
            return late_call_result(entry, out)
        if type(out) is Returned:
            value = out.value
            if is_plain_reply(value):
                return value  # nothing else happens
        if self.isolated and entry.lane is None:  # the table changes: see _settle
            yield from self._settle()
            if not entry.alive:
                return late_call_result(entry, out)
        if type(out) is Raised:
            exc = out.exception
            yield from self._leave(entry, Crashed(exc), request, "handle_call")
            raise HandlerCrashed(entry.ref, exc) from exc
        assert type(out) is Returned
        value = out.value
        cls = type(value)
        if cls is Remove:
            yield from self._leave(entry, RemovedItself())
            return value.reply
        if cls is Swap:
            if (yield from self._swap_in_place(entry, value, request)):
                return value.reply
        elif value is not Remove and value is not Swap:
            return value
        yield from self._leave(entry, BadReturn(value), request, "handle_call")
        raise HandlerBadReturn(entry.ref, value, "handle_call", guess=misuse_hint(value))

    def _settle(self) -> Generator[Effect, Any, None]:
        """A handler that is not isolated is about to change the table while isolated handlers
        run: the runtime first lets them get past what was queued before the message being
        handled, applying what they bring back in mailbox order (:class:`Settle`), so that
        every change happens in the order of the messages that caused it."""
        yield Settle()

    def notify(self, event: Any) -> Procedure:
        """``notify``/``sync_notify``: every handler, newest first, sees ``event``.
        (Runtimes usually run the hot path themselves; this is the general form.)"""
        return self._visit(None, event)  # no generator of its own: one frame less per yield

    def notify_rest(
        self,
        entry: Entry,
        out: Outcome,
        event: Any,
        rest: Iterable[tuple[Entry, Callable[[Any], Any]]],
    ) -> Procedure:
        """The rest of an event's dispatch that a runtime began itself on its hot path: apply
        ``out``, the first outcome that was more than ``None`` (``entry``'s), then every
        handler of ``rest`` (the pairs of :attr:`event_targets` after ``entry``) still
        installed sees ``event``, as :meth:`notify` would have shown it."""
        yield from self.event_result(entry, out, event)
        yield from self._visit(rest, event)

    def _visit(
        self, targets: Iterable[tuple[Entry, Callable[[Any], Any]]] | None, event: Any
    ) -> Generator[Effect, Any, None]:
        """Each target (None: :attr:`event_targets`, read when the procedure begins) still
        installed sees ``event``; the core acts on what was more than ``None``."""
        for entry, fn in self.event_targets if targets is None else targets:
            if not entry.alive:
                continue
            out = yield Invoke(fn, (event,), entry.event_is_async)
            if type(out) is not Returned or out.value is not None:
                yield from self.event_result(entry, out, event)

    def info(self, message: Any) -> Procedure:
        """An info message: every handler's ``handle_info``, newest first. A handler without
        ``handle_info`` keeps running; a warning is reported."""
        self.infos += 1
        for entry in list(self.entries):
            if not entry.alive:
                continue
            if entry.info_fn is None:
                yield Report("no_handle_info", entry.ref, entry.instance, message, None)
                continue
            out = yield Invoke(entry.info_fn, (message,), entry.info_is_async)
            if type(out) is not Returned or out.value is not None:
                yield from self.event_result(entry, out, message, "handle_info")

    def event_result(
        self, entry: Entry, out: Outcome | None, message: Any, callback: str = "handle_event"
    ) -> Procedure:
        """Act on what ``handle_event`` (or ``handle_info``: ``callback`` names it, for the
        report) produced (anything but ``None``)."""
        if not entry.alive:
            return
        if type(out) is Returned and out.value is None:
            return
        if self.isolated and entry.lane is None:  # the table changes: see _settle
            yield from self._settle()
            if not entry.alive:
                return
        if type(out) is Raised:
            yield from self._leave(entry, Crashed(out.exception), message, callback)
            return
        assert type(out) is Returned
        value = out.value
        if value is None:
            return
        cls = type(value)
        if cls is Remove:
            yield from self._leave(entry, RemovedItself())
        elif cls is Swap:
            if not (yield from self._swap_in_place(entry, value, message)):
                yield from self._leave(entry, BadReturn(value), message, callback)
        else:
            yield from self._leave(entry, BadReturn(value), message, callback)

    def _swap_in_place(self, entry: Entry, swap: Swap[Any], message: Any) -> Procedure:
        """A swap a handler asked for. Returns False (nothing done) when ``swap`` is malformed;
        True otherwise, even if the new handler failed to start (then it is reported, and the
        owner gets :class:`Swapped` for the old id and :class:`StartFailed` for the new one)."""
        new = swap.handler
        try:
            cls = handler_key(new)
            check_class(cls, self.allow_async)
        except InvalidHandler:
            return False
        existing = self.find(new)
        if existing is not None and existing is not entry:
            return False
        reason = Swapped(swap.args1, new, entry.owner)
        index = self._unlink(entry)
        self._note_left(entry.ref, "swapped", f"it swapped itself for {_name(new)}")
        _, handoff = yield from terminate(entry, reason)
        yield from tell(entry, reason, self.manager)
        try:
            instance, info = yield from start(
                new, swap.args2, handoff, True, entry.lane, self.allow_async, wrap=self.wrap_class
            )
        except HandlerInitFailed as failed:
            cause = failed.cause if failed.cause is not None else BadReturn(failed.returned)
            yield Report("crash", new, None, message, StartFailed(cause), "init")
            yield from tell(entry, StartFailed(cause), self.manager, ref=new)
            yield from self._release_owner(entry.owner)
            return True
        if self.find(new) is None:  # else installed meanwhile by re-entrant code: keep that one
            new_entry = Entry(new, instance, info, entry.owner, entry.on_exit, entry.lane)
            yield from self._insert(min(index, len(self.entries)), new_entry)
        yield from self._release_owner(entry.owner)
        return True

    def get_state(self) -> Procedure:
        """OTP's ``sys:get_state``: ``[(handler, state)]``, newest first (see
        :func:`._callbacks.get_state`)."""
        return get_state(self.entries)

    def owner_down(self, owner: Any, reason: BaseException | None) -> Procedure:
        """``owner`` ended: terminate each handler it owns, newest first, with
        :class:`OwnerExited`; nobody is told and nothing is logged."""
        if owner not in self._owners:
            return
        why = OwnerExited(reason)
        for ref, (entry, _) in list(self.retrying.items()):  # no more attempts: it is gone
            if entry.owner == owner:
                del self.retrying[ref]
                if entry.lane is not None:  # the lane kept for the attempt is let go
                    self.note_lane(entry)
                yield from self._release_owner(owner)
        for entry in [e for e in self.entries if e.owner == owner]:
            if entry.alive:
                self._unlink(entry)
                self._note_left(entry.ref, *left_for(why, None))
                yield from terminate(entry, why)
                yield from self._release_owner(owner)

    def stop(self) -> Procedure:
        """``stop``: terminate every handler, newest first, with :class:`Stopped`; tell owners."""
        self.stopped = self.stopping = self.restarts_off = True
        if self.retrying:  # (no generator made when none waits: the usual stop)
            yield from _restarting.give_up_retries(self)
        while self.entries:
            entry = self.entries[0]
            self._unlink(entry)
            reason = Stopped()
            yield from terminate(entry, reason)
            if entry.on_exit is not None:  # (none made for an unsupervised handler)
                yield from tell(entry, reason, self.manager)
            if entry.owner is not None:
                yield from self._release_owner(entry.owner)

    def begin_stop(self, drop: bool) -> None:
        """The runtime began to stop. While it handles what it accepted before (``drop``
        False), a handler that leaves is still restarted as its policy says, but a restart
        whose ``init`` fails is not tried again; when it drops that backlog, no handler is
        restarted (nothing is left for it to handle). Either way a restart waiting for its
        next attempt will not have one (see :meth:`stop`)."""
        self.stopping = True
        if drop:
            self.restarts_off = True
