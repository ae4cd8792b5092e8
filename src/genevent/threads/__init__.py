"""The thread runtime: an event manager is one thread with one mailbox.

Handlers are the same classes as for :mod:`genevent.aio`, with plain (non-coroutine) methods
only: a handler with a coroutine method is refused with :class:`~genevent.InvalidHandler`.
Every handler callback and every ``on_exit`` owner callback runs on the manager's thread (unless
``inline=True``, below), one at a time, in arrival order, so handlers need no locks. A handler
added with ``isolation=True`` runs on a thread of its own instead, still one callback at a
time and in arrival order (see :meth:`EventManager.add_handler`).

Which calls are safe from where:

* ``notify`` and ``send`` never block; they are safe from any thread, including a handler of
  this manager (the message is queued behind the current one).
* Every other request (``sync_notify``, ``call``, ``add_handler``, ``add_sup_handler``,
  ``delete_handler``, ``swap_handler``, ``swap_sup_handler``, ``which_handlers``, ``stop``,
  ``wait_stopped``) blocks the calling thread until the manager answered, or until its
  ``timeout`` (:class:`~genevent.CallTimeout`; ``call`` waits 5 s by default, the others
  forever). Made on the manager's own thread (from a handler or an ``on_exit`` callback), it
  raises :class:`~genevent.CallingSelf` at once instead of deadlocking; so do the
  future-returning forms, whose result the manager thread could never wait for.
* From asyncio code, ``call_future`` / ``sync_notify_future`` / ``stop_future`` return a
  :class:`concurrent.futures.Future` (``await asyncio.wrap_future(f)``), and the coroutines
  ``acall`` / ``async_sync_notify`` do that for you. A blocking method called inside a running
  event loop is allowed: it works, but it blocks that loop until the answer comes.

Inline requests (``start(inline=True)``): when the manager is idle (its mailbox is empty and its
thread is parked), ``call`` and ``sync_notify`` run in the calling thread while it holds the
manager's run lock, without a context switch (about 1 µs instead of tens). Every ordering
guarantee holds: callbacks still run one at a time, the caller's earlier messages have all been
handled, and a callback calling its own manager still gets ``CallingSelf``. What changes:
handler and ``on_exit`` callbacks may then run on the caller's thread (so thread-local state in
a handler is not safe), and the ``timeout`` of a request that runs inline is checked when it
is done rather than enforced while it runs: if the handlers took longer, the caller gets
:class:`~genevent.CallTimeout` and the reply is dropped, as when a queued request times out,
but only once they finished. ``which_handlers`` runs no handler code and
is answered inline whenever the manager is idle, whatever ``inline`` says.

Arguments are checked at the call, before anything is queued or run, the same way on every path
(queued, inline, blocking, awaiting): ``timeout`` must be None (wait as long as it takes),
``math.inf`` (the same) or a number of seconds >= 0 (else :class:`TypeError` /
:class:`ValueError`); a handler reference must be a handler class or ``(class, id)`` (else
:class:`~genevent.InvalidHandler`); ``on_exit`` must be callable (else
:class:`~genevent.InvalidOwner`). ``timeout=0`` never waits, as in OTP: the request is delivered
(never run inline) and handled in its turn, and the caller gets :class:`~genevent.CallTimeout`
at once (the reply is dropped). The future-returning forms take no timeout and never raise for
the request itself: its failure arrives through the future.

Owners (``add_sup_handler``, ``swap_sup_handler``): the owner is the calling thread unless
``owner=`` names another started :class:`threading.Thread`. The owner's end is detected
without polling: the calling thread gets a sentinel in a :class:`threading.local`, which
CPython tears down when the thread ends (normally or by an exception); another thread is
watched by a daemon thread that joins it (one per watched thread, shared by every
manager; it lets go within a second of the last ``Unwatch``). The reason handed to
``terminate`` is ``OwnerExited(None)`` after a normal end and ``OwnerExited(exc)`` after the
thread died of ``exc`` (seen through a chained :func:`threading.excepthook`; ``None`` if
someone replaced that hook after genevent installed it). The main thread never ends before
the interpreter does: its handlers are terminated with :class:`~genevent.Stopped` by the exit
hook. In a thread pool the owner is the worker thread, which usually outlives the task.

Lifetime: :meth:`EventManager.stop` joins the manager's thread (unless called on it). Manager
threads are daemons, and an :mod:`atexit` hook stops the managers still running, waiting at
most :data:`EXIT_TIMEOUT` seconds in all. A manager that becomes garbage while running is
stopped (its handlers are terminated with :class:`~genevent.Stopped`) and a
:class:`ResourceWarning` is issued: the thread references the manager's internals only.
"""

from __future__ import annotations

from typing import Any

from .._mailbox import check_mailbox
from .._overflow import OverflowPolicy
from .._tracing import choice as tracing_choice
from ._bounded import _BoundedEventManager
from ._exit import EXIT_TIMEOUT
from ._manager import EventManager
from ._traced import traced_manager

__all__ = ("EXIT_TIMEOUT", "EventManager", "start")


def start(
    name: str | None = None,
    *,
    inline: bool = False,
    timing: bool = False,
    maxsize: int | None = None,
    overflow: OverflowPolicy = "block",
    tracing: bool | None = None,
) -> EventManager[Any]:
    """Start an event manager on a new daemon thread (OTP's ``start``/``start_link``).

    With ``name``, it is registered so that :func:`genevent.whereis` finds it; a second manager
    under a taken name raises :class:`~genevent.NameTaken`. ``with start() as mgr:`` links it
    to the block: it stops when the block exits, normally or by an exception.
    Annotate to type the events: ``mgr: EventManager[MyEvent] = start()``.

    ``inline=True`` lets an idle manager's ``call`` and ``sync_notify`` run in the caller's
    thread (see the module documentation): far lower latency, but handler callbacks are then
    not confined to the manager's thread. ``timing=True`` samples plain
    ``handle_event`` durations (a handler's first call, then one in 32) into per-handler
    histograms that :meth:`EventManager.stats` reports (off by default: the notify burst loses
    about a fifth of its rate with it).

    ``maxsize`` bounds the mailbox (default None: unbounded, as gen_event): an event or info
    that finds ``maxsize`` messages queued is treated by ``overflow``: ``"block"`` (the
    default: ``notify`` and ``send`` block until there is room; ``notify_wait(event,
    timeout=...)`` blocks for at most ``timeout``, then raises :class:`~genevent.MailboxFull`),
    ``"drop_newest"``, ``"drop_oldest"`` (counted in ``stats().dropped`` and logged at most
    once a second) or ``"raise"`` (:class:`~genevent.MailboxFull`, counted in
    ``stats().refused``). Control requests are never dropped or refused for room. A bad
    ``maxsize`` or ``overflow`` raises :class:`TypeError` / :class:`ValueError`.

    ``tracing=True`` traces it with OpenTelemetry (the ``tracing`` extra; see
    :mod:`genevent.tracing`); None (the default) follows :func:`genevent.tracing.enable`."""
    bound = check_mailbox(maxsize, overflow)
    traced, provider = tracing_choice(tracing)
    if traced:
        return traced_manager(name, inline, timing, bound, provider)
    if bound is None:
        return EventManager(name, inline=inline, timing=timing)
    return _BoundedEventManager(name, inline=inline, timing=timing, bound=bound)
