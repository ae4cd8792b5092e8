"""The thread runtime's process-wide state, kept here and only here: the managers running now,
whether the interpreter is exiting, and the owner threads being watched. The other modules of
the runtime read and change it through these functions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# The servers (``_server._Server``) of the managers running now: added when a manager's thread
# starts, removed when it stopped.
_live: set[Any] = set()
# True once the interpreter exit hook began: owner threads that end then are not reported.
_exiting = False
# Owner threads watched, each with its watch (``_owners._OwnerWatch``), changed under the lock.
_watch_lock = threading.Lock()
_watches: dict[threading.Thread, Any] = {}
# The threading.excepthook genevent's own replaced (None until the first owner is watched).
_previous_excepthook: Callable[[threading.ExceptHookArgs], Any] | None = None


# -- running managers ------------------------------------------------------------------------


def add_live(server: Any) -> None:
    """A manager's thread started."""
    _live.add(server)


def discard_live(server: Any) -> None:
    """A manager stopped (nothing if it was not counted as running)."""
    _live.discard(server)


def live_servers() -> list[Any]:
    """A snapshot of the servers of the managers running now."""
    return list(_live)


def take_live() -> list[Any]:
    """Forget every running manager and return them (a forked child, where none runs)."""
    servers = list(_live)
    _live.clear()
    return servers


# -- interpreter exit ------------------------------------------------------------------------


def set_exiting(exiting: bool) -> None:
    """The interpreter exit hook began (True); a rehearsal of it is over (False)."""
    global _exiting
    _exiting = exiting


def is_exiting() -> bool:
    """True once the interpreter exit hook began."""
    return _exiting


# -- owner watches ---------------------------------------------------------------------------


def watch_lock() -> threading.Lock:
    """The lock under which the watches below are read and changed."""
    return _watch_lock


def find_watch(thread: threading.Thread) -> Any:
    """The watch of ``thread``, or None."""
    return _watches.get(thread)


def is_watched(thread: threading.Thread) -> bool:
    """True while ``thread`` has a watch."""
    return thread in _watches


def add_watch(thread: threading.Thread, watch: Any) -> Any:
    """Register ``watch`` for ``thread`` unless it has one; return the one it has now."""
    return _watches.setdefault(thread, watch)


def drop_watch(thread: threading.Thread, watch: Any) -> None:
    """Forget ``thread``'s watch if it is ``watch``."""
    if _watches.get(thread) is watch:
        del _watches[thread]


def forget_watches() -> None:
    """In a forked child: no owner thread of the parent exists here (and another thread may
    have held the lock at the fork)."""
    global _watch_lock
    _watch_lock = threading.Lock()
    _watches.clear()


def chain_excepthook(hook: Callable[[threading.ExceptHookArgs], Any]) -> None:
    """Install ``hook`` as :func:`threading.excepthook` once, remembering the one it replaces
    (:func:`previous_excepthook`). Called under :func:`watch_lock`."""
    global _previous_excepthook
    if _previous_excepthook is None:
        _previous_excepthook = threading.excepthook
        threading.excepthook = hook


def previous_excepthook() -> Callable[[threading.ExceptHookArgs], Any]:
    """The :func:`threading.excepthook` that genevent's hook hands every exception on to."""
    return _previous_excepthook or threading.__excepthook__
