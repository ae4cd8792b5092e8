"""The asyncio runtime: an event manager is one task with one mailbox.

Which calls are safe from where:

* ``notify`` and ``send`` are plain methods that never block or wait; they are safe from the
  manager's loop, from any other thread, from a handler of this manager (the message is queued)
  and from plain synchronous code.
* Every other request is a coroutine that must be awaited *in the manager's own event loop*.
  From another thread use ``asyncio.run_coroutine_threadsafe(mgr.call(...), mgr.loop)``;
  awaiting from a foreign loop raises :class:`~genevent.WrongRuntime`.
* A handler callback that awaits a request on its own manager gets
  :class:`~genevent.CallingSelf` at once instead of a deadlock.

Messages are handled one at a time in arrival order, for at most one slice of time in a row
(the interpreter's switch interval, 5 ms by default): then the manager gives its event loop a
turn, as an Erlang process is preempted once it spent its reductions. A
mailbox that never empties (a producer thread, a handler notifying its own manager) therefore
holds the loop for one slice at a time, and the loop's other tasks, timers and timeouts still
run. When the manager is idle (its mailbox is empty and its task is parked) and every handler
is a plain (non-coroutine) handler, ``call``, ``sync_notify`` and ``which_handlers`` run inline
in the caller, without a context switch: the result and every ordering guarantee are those of
the queued path (a manager between two slices is not idle).

Arguments are checked at the call, before anything is queued or run, the same way on the queued
and the inline path: ``timeout`` must be None (wait as long as it takes), ``math.inf`` (the
same) or a number of seconds >= 0 (else :class:`TypeError` / :class:`ValueError`); a handler
reference must be a handler class or ``(class, id)`` (else :class:`~genevent.InvalidHandler`);
``on_exit`` must be callable (else :class:`~genevent.InvalidOwner`). ``timeout=0`` never
waits, as in OTP: the request is delivered and handled in its turn, and the caller gets
:class:`~genevent.CallTimeout` at once (the reply is dropped).
"""

from __future__ import annotations

from typing import Any

from .._errors import WrongRuntime
from .._mailbox import check_mailbox
from .._overflow import OverflowPolicy
from .._tracing import choice as tracing_choice
from ._common import _running_loop
from ._manager import EventManager, _BoundedEventManager
from ._traced import traced_manager

__all__ = ("EventManager", "start")

# the public names read as this module's (their home inside the package is private)
EventManager.__module__ = __name__


def start(
    name: str | None = None,
    *,
    timing: bool = False,
    maxsize: int | None = None,
    overflow: OverflowPolicy = "block",
    tracing: bool | None = None,
) -> EventManager[Any]:
    """Start an event manager in the running event loop (OTP's ``start``/``start_link``).

    With ``name``, it is registered so that :func:`genevent.whereis` finds it; a second manager
    under a taken name raises :class:`~genevent.NameTaken`. ``async with start() as mgr:``
    links it to the block: it stops when the block exits, normally (after handling what is
    queued) or by an exception (dropping what is queued: ``stop(drain=False)``).
    Annotate to type the events: ``mgr: EventManager[MyEvent] = start()``. ``timing=True``
    samples plain ``handle_event`` durations (a handler's first call, then one in 32) into
    per-handler histograms that :meth:`EventManager.stats` reports (off by default: the notify
    burst loses about a fifth of its rate with it).

    ``maxsize`` bounds the mailbox (default None: unbounded, as gen_event): an event or info
    that finds ``maxsize`` messages queued is treated by ``overflow``: ``"block"`` (the
    default: ``await mgr.notify_wait(event)`` waits for room; a plain ``notify`` or ``send``
    raises :class:`~genevent.MailboxFull`), ``"drop_newest"``, ``"drop_oldest"`` (counted in
    ``stats().dropped`` and logged at most once a second) or ``"raise"``
    (:class:`~genevent.MailboxFull`, counted in ``stats().refused``). Control requests are
    never dropped or refused for room. A bad ``maxsize`` or ``overflow`` raises
    :class:`TypeError` / :class:`ValueError`; a call outside a running event loop
    :class:`~genevent.WrongRuntime` (a :class:`RuntimeError`).

    ``tracing=True`` traces it with OpenTelemetry (the ``tracing`` extra; see
    :mod:`genevent.tracing`); None (the default) follows :func:`genevent.tracing.enable`."""
    if _running_loop() is None:
        raise WrongRuntime(
            "genevent.aio.start() needs a running event loop: call it inside async code "
            "(async def main(): async with aio.start() as mgr: ...; then asyncio.run(main())), "
            "or use the thread runtime (genevent.threads.start()) from plain code"
        )
    bound = check_mailbox(maxsize, overflow)
    traced, provider = tracing_choice(tracing)
    if traced:
        return traced_manager(name, timing, bound, provider)
    if bound is None:
        return EventManager(name, timing=timing)
    return _BoundedEventManager(name, timing=timing, bound=bound)
