"""The stop sequence's decisions, written once for both runtimes.

A stopping manager refuses new messages, then drains its mailbox (or drops its backlog,
``stop(drain=False)``), waits for its isolated handlers (see :func:`._hosting.settling`),
terminates every handler and answers every caller. What it does with each message is
decided here; how it runs a handler's callbacks, answers a caller and counts is the
runtime's (the asyncio one awaits, the thread one blocks).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from .._core import DROPPABLE, LANE_RESULTS, caught_up_detail
from .._driver import log
from .._errors import ManagerNotRunning

__all__ = ("AtStop", "at_stop", "is_kept", "leftovers", "refusal", "split_backlog", "unanswered")


class AtStop(IntEnum):
    """What a stopping manager does with a message it takes from its mailbox."""

    DROP = 0  #: an event or info that raced ``stop(drain=False)``: counted as dropped
    DISPATCH = 1  #: an event: handled
    STOP = 2  #: another stop: answered with this one
    REFUSE = 3  #: a request that raced ``stop(drain=False)``: ``ManagerNotRunning``
    HANDLE = 4  #: a request (or what isolated handlers brought back): handled


def at_stop(msg: Any, request: type[Any], stop: object, dropping: bool) -> AtStop:
    """What a stopping manager does with ``msg`` (a request is of class ``request``, a stop
    one whose ``proc`` is ``stop``); ``dropping``: the stop drops the backlog. What isolated
    handlers bring back is applied even then (a crash stays a crash)."""
    if msg.__class__ is not request:
        return AtStop.DROP if dropping else AtStop.DISPATCH
    if dropping and msg.what in DROPPABLE:
        return AtStop.DROP
    if msg.proc is stop:
        return AtStop.STOP
    if dropping and msg.what not in LANE_RESULTS:
        return AtStop.REFUSE
    return AtStop.HANDLE


def is_kept(msg: Any, stop: object) -> bool:
    """A control request a stop that drops the backlog keeps in the mailbox: a stop, and
    what isolated handlers brought back."""
    return msg.proc is stop or msg.what in LANE_RESULTS


def split_backlog(rest: list[Any], stop: object) -> tuple[list[Any], list[Any]]:
    """``stop(drain=False)``: the control requests taken out of the mailbox with its backlog
    (``rest``, see ``genevent._mailbox.take_backlog``), split into the ones to put back
    (:func:`is_kept`) and the ones to refuse (:func:`refusal`), each in mailbox order."""
    kept: list[Any] = []
    refused: list[Any] = []
    for msg in rest:
        (kept if is_kept(msg, stop) else refused).append(msg)
    return kept, refused


def refusal(manager: Any, req: Any) -> ManagerNotRunning:
    """The error a request refused by a stop that drops the backlog is answered with."""
    return ManagerNotRunning(manager, caught_up_detail(req.what, req.caught_up))


def leftovers(
    manager: Any, pending: list[Any], request: type[Any], drained: bool
) -> tuple[int, list[Any]]:
    """What a manager's mailbox still held as it shut down (``pending``; ``drained``: it
    drained the mailbox and sealed it, so no event there was ever accepted). Returns how
    many events were lost (logged as an error) and the requests, each to be answered with
    :func:`unanswered`."""
    requests = [m for m in pending if m.__class__ is request]
    lost = 0 if drained else len(pending) - len(requests)
    if lost:
        log.error("genevent manager %r dropped %d queued events", manager, lost)
    return lost, requests


def unanswered(manager: Any, req: Any) -> ManagerNotRunning:
    """The error a request still queued when its manager shut down is answered with."""
    return ManagerNotRunning(manager, f" (it stopped before answering {req.what})")
