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

Rules of this file
~~~~~~~~~~~~~~~~~~
1. Everything that changes the handler table lives here; nothing here calls user code, blocks,
   reads a clock, creates a task or thread, locks, logs or serialises. (The standard library's
   ``inspect`` and ``weakref`` are used to read handler classes; they run no user code.)
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

import difflib
import inspect
import weakref
from collections.abc import Callable, Generator
from typing import Any, TypeAlias

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
from .._text import cut, short
from ._effects import (
    Effect,
    Invoke,
    Outcome,
    Raised,
    Report,
    Retry,
    Returned,
    Settle,
    TellOwner,
    Unwatch,
    Watch,
)
from ._instructions import NO_ARGS, NO_HANDOFF, Args, Remove, Swap, is_plain_reply, misuse_hint
from ._reasons import (
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    HandlerExit,
    OwnerExited,
    RemovedItself,
    StartFailed,
    Stopped,
    Swapped,
)
from ._restart import Restart

__all__ = ("Entry", "ManagerCore", "Procedure", "handler_key")

Procedure: TypeAlias = Generator[Effect, Outcome | None, Any]
"""A core procedure: yields effects, receives outcomes of :class:`Invoke`, returns the reply."""

OnExit: TypeAlias = Callable[[HandlerExit], object]


class _ClassInfo:
    """What the core needs to know about a handler class, read once per class."""

    __slots__ = (
        "async_methods",
        "call_is_async",
        "event_is_async",
        "has_call",
        "has_info",
        "has_terminate",
        "info_is_async",
        "init_handoff",
        "init_required",
        "is_async",
        "plain_call",
        "terminate_is_async",
    )

    def __init__(self, cls: type) -> None:
        handle_event = getattr(cls, "handle_event", None)
        if not callable(handle_event):
            raise InvalidHandler(f"{cls.__qualname__} has no handle_event method")
        self.has_call = callable(getattr(cls, "handle_call", None))
        self.has_info = callable(getattr(cls, "handle_info", None))
        self.has_terminate = callable(getattr(cls, "terminate", None))
        self.async_methods = frozenset(
            name
            for name in ("init", "handle_event", "handle_call", "handle_info", "terminate")
            if inspect.iscoroutinefunction(getattr(cls, name, None))
        )
        self.init_handoff = _accepts_handoff(getattr(cls, "init", None))
        #: the parameters of ``init`` (besides ``self`` and ``handoff``) without a default:
        #: with no ``args`` given, the handler is refused before it is created
        self.init_required = _required_params(getattr(cls, "init", None))
        self.call_is_async = "handle_call" in self.async_methods
        self.event_is_async = "handle_event" in self.async_methods
        self.is_async = bool(self.async_methods)
        self.info_is_async = "handle_info" in self.async_methods
        self.terminate_is_async = "terminate" in self.async_methods
        #: a plain ``handle_call``: runtimes may call it themselves on their fast paths
        self.plain_call = self.has_call and not self.call_is_async


def _accepts_handoff(init: Any) -> bool:
    if init is None:
        return False
    try:
        params = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "handoff" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in params
    )


def _required_params(init: Any) -> tuple[str, ...]:
    if init is None:
        return ()
    try:
        params = list(inspect.signature(init).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return ()
    if inspect.isfunction(init) and params and params[0].kind is not params[0].KEYWORD_ONLY:
        params = params[1:]  # read from the class: the plain function's self
    return tuple(
        p.name
        for p in params
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name != "handoff"
    )


_class_info: weakref.WeakKeyDictionary[type, _ClassInfo] = weakref.WeakKeyDictionary()


_last_info: tuple[weakref.ref[type], _ClassInfo] | None = None
"""The class read last and its info: adding, finding and checking handlers of one class in a
row (the usual case) skips the weak dictionary's lookup (it makes a weak reference per call)."""


def _info_of(cls: type) -> _ClassInfo:
    global _last_info  # a one-entry cache, replaced whole (thread-safe)
    last = _last_info
    if last is not None and last[0]() is cls:
        return last[1]
    info = _class_info.get(cls)
    if info is None:
        info = _class_info[cls] = _ClassInfo(cls)
    _last_info = (weakref.ref(cls), info)
    return info


def handler_key(ref: Any) -> type:
    """Check that ``ref`` is a handler reference (a class, or a ``(class, id)`` pair with a
    hashable id) and return its class. Raises :class:`InvalidHandler` otherwise."""
    if isinstance(ref, type):
        cls = ref
    elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], type):
        cls = ref[0]
        try:  # what is not Hashable raises here too (cheaper than the ABC's isinstance)
            hash(ref[1])
        except Exception as exc:
            raise InvalidHandler(f"handler id {short(ref[1])} is not hashable") from exc
    else:
        raise InvalidHandler(
            f"{short(ref)} is not a handler reference: pass a handler class or (class, id)"
        )
    try:
        hash(cls)
    except Exception as exc:  # a metaclass that makes its classes unhashable
        raise InvalidHandler(
            f"handler class {short(cls)} is not hashable (its metaclass "
            f"{short(type(cls))} defines __eq__ without __hash__)"
        ) from exc
    _info_of(cls)
    return cls


def _snapshot(instance: Any) -> Any:
    """A handler's state for :meth:`ManagerCore.get_state` (run by the runtime: it may call
    the handler's ``format_status``)."""
    fmt = getattr(instance, "format_status", None)
    if fmt is not None:
        status = fmt()
        if inspect.isawaitable(status):
            if inspect.iscoroutine(status):
                status.close()
            return "<format_status must be a plain method; state hidden>"
        return status
    try:
        return dict(vars(instance))
    except TypeError:  # __slots__ and no __dict__
        return {
            name: getattr(instance, name)
            for klass in type(instance).__mro__
            for name in getattr(klass, "__slots__", ())
            if hasattr(instance, name)
        }


class Entry:
    """One installed handler: its reference, instance, owner and bound ``handle_event``.

    What is the same for every handler of a class (which callbacks exist, which are
    coroutines) is read from the class's shared ``info``; only ``handle_event``, the hot
    path's callback, is kept bound. Memory per handler counts (the benchmarks' "memory per
    handler"): the other bound callbacks are made when used."""

    __slots__ = (
        "alive",
        "event_fn",
        "events_at",
        "info",
        "instance",
        "lane",
        "on_exit",
        "owner",
        "ref",
        "restart",
    )

    def __init__(
        self,
        ref: Any,
        instance: Any,
        info: _ClassInfo,
        owner: Any,
        on_exit: OnExit | None,
        lane: Any = None,
    ) -> None:
        self.ref = ref
        self.instance = instance
        self.info = info
        self.owner = owner
        self.on_exit = on_exit
        self.alive = True
        #: its restart policy and intensity (None: temporary, gen_event's behaviour)
        self.restart: Restart | None = None
        #: the manager's event count when it was installed (its own count is derived)
        self.events_at = 0
        self.event_fn: Callable[[Any], Any] = instance.handle_event
        #: the lane of an isolated handler (see the module documentation), or None
        self.lane = lane
        if lane is not None:  # the manager only queues: nothing of it is awaited there
            self.event_fn = lane.post

    @property
    def is_async(self) -> bool:
        """Whether the manager awaits any of its callbacks (never for an isolated handler:
        the manager only queues to its lane)."""
        return self.lane is None and self.info.is_async

    @property
    def event_is_async(self) -> bool:
        """Whether the manager awaits ``handle_event`` (a coroutine, not isolated)."""
        return self.lane is None and self.info.event_is_async

    @property
    def call_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``handle_call``, or None."""
        return self.instance.handle_call if self.info.has_call else None

    @property
    def call_is_async(self) -> bool:
        """Whether ``handle_call`` is a coroutine function."""
        return self.info.call_is_async

    @property
    def info_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``handle_info`` (an isolated handler's lane's ``post_info``), or None."""
        if not self.info.has_info:
            return None
        fn: Callable[[Any], Any] = (
            self.instance.handle_info if self.lane is None else self.lane.post_info
        )
        return fn

    @property
    def info_is_async(self) -> bool:
        """Whether the manager awaits ``handle_info`` (a coroutine, not isolated)."""
        return self.lane is None and self.info.info_is_async

    @property
    def terminate_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``terminate``, or None."""
        return self.instance.terminate if self.info.has_terminate else None

    @property
    def terminate_is_async(self) -> bool:
        """Whether ``terminate`` is a coroutine function."""
        return self.info.terminate_is_async

    def __repr__(self) -> str:
        return f"<Entry {self.ref!r} owner={self.owner!r}>"


def _one_line(exc: BaseException) -> str:
    """``"ValueError: bad input"``: an exception's type and the first line of its text."""
    kind = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception:
        return kind
    text = text.strip().split("\n", 1)[0]
    return cut(f"{kind}: {text}", 120) if text else kind


def _constructor_hint(cls: type, exc: BaseException) -> str:
    """What to say when creating ``cls()`` raised ``exc``: if its ``__init__`` requires
    arguments, that the manager passes ``args`` to ``init`` instead."""
    if not isinstance(exc, TypeError):
        return ""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ""
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not required:
        return ""
    return (
        f" (its __init__ requires {', '.join(required)}); the manager creates the class "
        f"without arguments, {cls.__qualname__}(), and passes add_handler's args to its init(): "
        "take them in init, not __init__"
    )


def _left_for(reason: ExitReason, callback: str | None) -> tuple[str, str]:
    """``(how, summary)`` of a :class:`Departure` for a handler that left for ``reason``."""
    if isinstance(reason, Crashed):
        where = f" in {callback}" if callback else ""
        return "crashed", f"it crashed{where} ({_one_line(reason.exception)})"
    if isinstance(reason, BadReturn):
        where = f" from {callback}" if callback else ""
        return "bad_return", f"it returned a bad value{where}: {short(reason.value)}"
    if isinstance(reason, RemovedItself):
        return "removed_itself", "it removed itself (returned Remove())"
    if isinstance(reason, Deleted):
        return "deleted", "it was deleted (delete_handler)"
    if isinstance(reason, OwnerExited):
        exc = reason.reason
        return "owner_exited", "its owner ended" + (f" ({_one_line(exc)})" if exc else "")
    if isinstance(reason, StartFailed):
        cause = reason.cause
        how = (
            f"init raised {_one_line(cause)}"
            if isinstance(cause, BaseException)
            else f"init returned {short(getattr(cause, 'value', cause))}"
        )
        return "restart_failed", f"its restart failed ({how})"
    return "left", f"it left ({short(reason)})"  # Swapped and Stopped are noted where they happen


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
        # -- metrics: counted on slow paths here; ``events`` and ``requests`` are added to by
        # the runtimes (per batch, on their hot paths)
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
                targets = tuple((e, e.event_fn) for e in self.entries)
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
        return HandlerNotFound(ref, suggestion=self._close_to(ref) if suggest else None)

    def _close_to(self, ref: Any) -> Any:
        """An installed reference close to the missing ``ref``, or None: the same class (or
        another class of the same name) with an id whose text differs by a small edit (the
        same id, for another class); else the class alone for a ``(class, id)``, or the newest
        ``(class, id)`` for the class alone."""
        if isinstance(ref, type):
            cls, ident = ref, None
        elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], type):
            cls, ident = ref[0], short(ref[1])
        else:
            return None
        name = getattr(cls, "__name__", None)
        ids: dict[str, Any] = {}
        same_class: Any = None
        seen = 0
        for entry in self.entries:
            other = entry.ref
            bare = isinstance(other, type)
            other_cls = other if bare else other[0]
            if other_cls is not cls and getattr(other_cls, "__name__", None) != name:
                continue
            if same_class is None and other_cls is cls and bare == (ident is not None):
                same_class = other
            if not bare:
                ids.setdefault(short(other[1]), other)
            elif ident is None and other_cls is not cls:
                ids.setdefault("", other)  # another class of the same name, alone too
            seen += 1
            if seen >= self.SUGGEST_AMONG:
                break
        if ident is None:
            return ids.get("", same_class)
        close = difflib.get_close_matches(ident, ids, n=1, cutoff=0.75)
        return ids[close[0]] if close else same_class

    def _note_left(self, ref: Any, how: str, summary: str) -> None:
        """Remember that ``ref`` left (see :attr:`departed`), forgetting the oldest beyond
        :attr:`DEPARTURES_KEPT`."""
        departed = self.departed
        if departed is None:
            departed = self.departed = {}
        else:
            departed.pop(ref, None)  # it moves to the newest end
        departed[ref] = Departure(ref, how, summary, self.events)
        if len(departed) > self.DEPARTURES_KEPT:
            del departed[next(iter(departed))]

    def owners(self) -> list[Any]:
        """The owners that currently own at least one handler."""
        return list(self._owners)

    # -- table edits (no user code) ----------------------------------------------------------

    def _insert(self, index: int, entry: Entry) -> Generator[Effect, Any, None]:
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
        if entry.owner is not None:
            n = self._owners.get(entry.owner, 0)
            self._owners[entry.owner] = n + 1
            if n == 0:
                yield Watch(entry.owner)

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

    # -- building blocks that run user code --------------------------------------------------

    def _check_class(self, cls: type) -> _ClassInfo:
        info = _info_of(cls)
        if info.async_methods and not self.allow_async:
            raise InvalidHandler(
                f"{cls.__qualname__} has coroutine methods "
                f"({', '.join(sorted(info.async_methods))}); this runtime runs handlers "
                "synchronously (use the asyncio runtime for coroutine handlers)"
            )
        return info

    def _start(
        self,
        ref: Any,
        args: Any,
        handoff: Any,
        with_handoff: bool,
        lane: Any = None,
        cls: type | None = None,
    ) -> Generator[Effect, Any, tuple[Any, _ClassInfo]]:
        """Instantiate and ``init`` a handler (in ``lane`` if given); raise
        :class:`HandlerInitFailed` if it refuses. ``cls``: ``handler_key(ref)`` when the caller
        has it already."""
        if cls is None:
            cls = handler_key(ref)
        info = self._check_class(cls)
        if args is NO_ARGS and info.init_required:
            raise HandlerInitFailed(ref, None, missing=info.init_required)
        out = yield Invoke(cls, (), via=lane)
        if type(out) is Raised:
            exc = out.exception
            raise HandlerInitFailed(
                ref, exc, constructing=True, hint=_constructor_hint(cls, exc)
            ) from exc
        instance = out.value
        init = getattr(instance, "init", None)
        if init is not None:
            kwargs = {"handoff": handoff} if with_handoff and info.init_handoff else None
            if args.__class__ is Args:  # several arguments: init(*args, **kwargs)
                call_args: tuple[Any, ...] = args.args
                if args.kwargs:
                    kwargs = {**args.kwargs, **kwargs} if kwargs else dict(args.kwargs)
            elif args is NO_ARGS:  # none given: init(), its defaults apply
                call_args = ()
            else:
                call_args = (args,)
            out = yield Invoke(init, call_args, "init" in info.async_methods, kwargs, lane)
            if type(out) is Raised:
                raise HandlerInitFailed(ref, out.exception) from out.exception
            if out.value is not None:
                raise HandlerInitFailed(ref, None, out.value)
        return instance, info

    def _terminate(
        self, entry: Entry, reason: ExitReason
    ) -> Generator[Effect, Any, tuple[bool, Any]]:
        """Run ``terminate(reason)``; return ``(ok, result-or-exception)``. Never raises."""
        if entry.terminate_fn is None:
            return True, None
        out = yield Invoke(entry.terminate_fn, (reason,), entry.terminate_is_async, via=entry.lane)
        if type(out) is Raised:
            yield Report("terminate_raised", entry.ref, entry.instance, reason, out.exception)
            return False, out.exception
        return True, out.value

    def _tell(self, entry: Entry, reason: ExitReason, ref: Any = None) -> Generator[Effect]:
        if entry.on_exit is not None:
            yield TellOwner(
                entry.on_exit, HandlerExit(entry.ref if ref is None else ref, reason, self.manager)
            )

    def _leave(
        self, entry: Entry, reason: ExitReason, message: Any = None, callback: str | None = None
    ) -> Generator[Effect, Any, tuple[bool, Any]]:
        """Remove ``entry`` for ``reason``: unlink, terminate, report a failure (naming the
        ``callback`` that failed), tell the owner."""
        self._unlink(entry)
        result = yield from self._terminate(entry, reason)
        if type(reason) is Crashed or type(reason) is BadReturn:
            self.crashes += 1
            by_ref = self.crashes_by_ref
            if by_ref is None:
                by_ref = self.crashes_by_ref = {}
            by_ref[entry.ref] = by_ref.get(entry.ref, 0) + 1
            yield Report("crash", entry.ref, entry.instance, message, reason, callback)
        restart = entry.restart
        if restart is not None and restart.wants(reason):
            restarted, reason = yield from self._restart(entry, restart, reason)
            if restarted:
                return result  # same owner, still watched; nobody is told of a restart
        yield from self._gone_for_good(entry, reason, callback)
        return result

    def _restart(
        self, entry: Entry, restart: Restart, reason: ExitReason
    ) -> Generator[Effect, Any, tuple[bool, ExitReason]]:
        """Add ``entry``'s handler again, at the front, with its original arguments, while its
        restart intensity allows; return whether it is back (or a retry is scheduled), and the
        reason it last left for. The first attempt happens at once; when its ``init`` fails
        (counted as a restart, and reported), the next attempt is scheduled on the runtime's
        clock (:class:`Retry`: the manager serves other messages meanwhile, see
        :meth:`retry_restart`), after :meth:`Restart.delay`."""
        clock = self.clock
        ref = entry.ref
        if clock is None or self.restarts_off:
            return False, reason
        if self.find(ref) is not None:
            return False, reason  # added again meanwhile: no restart (none counted)
        if not restart.intensity.allow(clock()):
            yield Report("restart_limit", ref, None, restart, reason)
            return False, reason
        restart.restarts += 1
        self.restarts += 1
        try:
            instance, info = yield from self._start(
                ref, restart.args, NO_HANDOFF, False, entry.lane
            )
        except HandlerInitFailed as failed:
            cause = failed.cause if failed.cause is not None else BadReturn(failed.returned)
            reason = StartFailed(cause)
            yield Report("restart_failed", ref, None, None, reason, "init")
            if self.stopping or self.find(ref) is not None:
                return False, reason
            restart.failures += 1
            earlier = self.retrying.pop(ref, None)
            if earlier is not None:  # the id was added again meanwhile, and left: the earlier
                yield from self._gone_for_good(*earlier)  # one waits no more
            self.retrying[ref] = (entry, reason)
            yield Retry(ref, restart.delay())
            return True, reason
        if self.find(ref) is not None:  # re-added meanwhile by re-entrant code
            return False, reason
        restart.failures = 0
        new = Entry(ref, instance, info, entry.owner, entry.on_exit, entry.lane)
        new.restart = restart
        yield from self._insert(0, new)
        yield from self._release_owner(entry.owner)  # _insert counted the owner again
        yield Report("restarted", ref, instance, restart.restarts, reason)
        return True, reason

    def retry_restart(self, ref: Any) -> Procedure:
        """The time for another attempt to restart ``ref`` came (a :class:`Retry` the runtime
        scheduled): try again, or give up for good (the intensity limit, a stop, or the same
        reference added meanwhile), telling the owner the reason it last left for."""
        waiting = self.retrying.pop(ref, None)
        if waiting is None:
            return  # given up meanwhile (stop, owner gone)
        entry, reason = waiting
        restart = entry.restart
        assert restart is not None
        restarted, reason = yield from self._restart(entry, restart, reason)
        if not restarted:
            yield from self._gone_for_good(entry, reason)

    def _gone_for_good(
        self, entry: Entry, reason: ExitReason, callback: str | None = None
    ) -> Generator[Effect, Any, None]:
        how, summary = _left_for(reason, callback)
        restart = entry.restart
        if restart is not None and restart.wants(reason) and not self.stopping:
            intensity = restart.intensity
            how = "restart_limit"
            summary += (
                f"; not restarted: its restart limit was reached ({intensity.max_restarts} "
                f"restarts in {intensity.period:g} s)"
            )
        if self.find(entry.ref) is None:  # (an id added again meanwhile did not leave)
            self._note_left(entry.ref, how, summary)
        if self.crashes_by_ref:  # the totals keep counting
            self.crashes_by_ref.pop(entry.ref, None)
        if entry.lane is not None:  # a lane kept for a restart attempt is let go
            self.note_lane(entry)
        yield from self._tell(entry, reason)
        yield from self._release_owner(entry.owner)

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
        instance, info = yield from self._start(ref, args, NO_HANDOFF, False, lane, cls)
        # init may have re-entered (a notify is queued, never run inline), so re-check.
        if self.find(ref) is not None:
            raise HandlerExists(ref)
        entry = Entry(ref, instance, info, owner, on_exit, lane)
        entry.restart = restart
        yield from self._insert(0, entry)

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
            _, handoff = yield from self._terminate(old_entry, reason)
            yield from self._tell(old_entry, reason)
        # the old owner is released only after the new entry is in, so that an owner that stays
        # is not unwatched and watched again in between
        old_owner = old_entry.owner if old_entry is not None else None
        lane = old_entry.lane if old_entry is not None else None
        try:
            instance, info = yield from self._start(new, args2, handoff, True, lane)
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
            return self._late_call_result(entry, out)
        if type(out) is Returned:
            value = out.value
            if is_plain_reply(value):
                return value  # nothing else happens
        if self.isolated and entry.lane is None:  # the table changes: see _settle
            yield from self._settle()
            if not entry.alive:
                return self._late_call_result(entry, out)
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

    def _late_call_result(self, entry: Entry, out: Outcome | None) -> Any:
        if type(out) is Raised:
            raise HandlerCrashed(entry.ref, out.exception) from out.exception
        assert type(out) is Returned
        value = out.value
        if type(value) is Remove or type(value) is Swap:
            return value.reply
        if value is Remove or value is Swap:
            raise HandlerBadReturn(entry.ref, value, "handle_call", guess=misuse_hint(value))
        return value

    def notify(self, event: Any) -> Procedure:
        """``notify``/``sync_notify``: every handler, newest first, sees ``event``.
        (Runtimes usually run the hot path themselves; this is the general form.)"""
        for entry, fn in self.event_targets:
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
            self._check_class(cls)
        except InvalidHandler:
            return False
        existing = self.find(new)
        if existing is not None and existing is not entry:
            return False
        reason = Swapped(swap.args1, new, entry.owner)
        index = self._unlink(entry)
        self._note_left(entry.ref, "swapped", f"it swapped itself for {_name(new)}")
        _, handoff = yield from self._terminate(entry, reason)
        yield from self._tell(entry, reason)
        try:
            instance, info = yield from self._start(new, swap.args2, handoff, True, entry.lane)
        except HandlerInitFailed as failed:
            cause = failed.cause if failed.cause is not None else BadReturn(failed.returned)
            yield Report("crash", new, None, message, StartFailed(cause), "init")
            yield from self._tell(entry, StartFailed(cause), ref=new)
            yield from self._release_owner(entry.owner)
            return True
        if self.find(new) is None:  # else installed meanwhile by re-entrant code: keep that one
            new_entry = Entry(new, instance, info, entry.owner, entry.on_exit, entry.lane)
            yield from self._insert(min(index, len(self.entries)), new_entry)
        yield from self._release_owner(entry.owner)
        return True

    def get_state(self) -> Procedure:
        """OTP's ``sys:get_state``: ``[(handler, state)]``, newest first. The state is what the
        handler's ``format_status()`` returns if it has one (redaction), else a shallow copy of
        its attributes, taken inside the manager (a consistent snapshot)."""
        states: list[tuple[Any, Any]] = []
        for entry in list(self.entries):
            out = yield Invoke(_snapshot, (entry.instance,), via=entry.lane)
            state: Any = None
            if type(out) is Raised:
                state = f"<format_status raised {type(out.exception).__name__}; state hidden>"
            elif type(out) is Returned:
                state = out.value
            states.append((entry.ref, state))
        return states

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
                self._note_left(entry.ref, *_left_for(why, None))
                yield from self._terminate(entry, why)
                yield from self._release_owner(owner)

    def stop(self) -> Procedure:
        """``stop``: terminate every handler, newest first, with :class:`Stopped`; tell owners."""
        self.stopped = self.stopping = self.restarts_off = True
        yield from self._give_up_retries()
        while self.entries:
            entry = self.entries[0]
            self._unlink(entry)
            reason = Stopped()
            yield from self._terminate(entry, reason)
            yield from self._tell(entry, reason)
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

    def _give_up_retries(self) -> Generator[Effect, Any, None]:
        """Stopping: the handlers waiting for another restart attempt are gone for good; each
        owner is told the reason its handler last left for."""
        while self.retrying:
            ref = next(iter(self.retrying))
            entry, reason = self.retrying.pop(ref)
            yield from self._gone_for_good(entry, reason)
