"""The thread runtime's owner watching: a supervised handler's owner thread, watched until
it ends (then its handlers are terminated with :class:`~genevent.OwnerExited`)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Final, Protocol

from .._errors import InvalidOwner
from .._text import short
from . import _state


class _Watcher(Protocol):
    """What a watch tells of its owner thread's end: a manager's server
    (``genevent.threads._server._Server``, which imports this module)."""

    def owner_down(self, owner: Any, reason: BaseException | None) -> None: ...


_JOINER_RELEASE: Final = 1.0  # how often an idle owner-watching thread checks it is still needed


# -- owners ------------------------------------------------------------------------------------

_local = threading.local()


class _Sentinel:
    """Lives in one thread's :data:`_local`; its finalizer runs when that thread ends."""

    __slots__ = ("__weakref__",)


class _OwnerWatch:
    """Watches one owner thread for every manager that has a handler owned by it."""

    __slots__ = ("exc", "fired", "joiner", "local", "reason", "servers", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.servers: set[_Watcher] = set()
        self.fired = False
        self.reason: BaseException | None = None
        #: the exception the thread died of, recorded by the excepthook
        self.exc: BaseException | None = None
        #: True when a sentinel in the thread's locals reports its end
        self.local = False
        self.joiner: threading.Thread | None = None

    def subscribe(self, server: _Watcher) -> _OwnerWatch:
        """Report the thread's end to ``server``; return the watch that will (this one, or the
        one that replaced it after an idle watcher let go)."""
        with _state.watch_lock():
            if not self.fired:
                reg: _OwnerWatch = _state.add_watch(self.thread, self)
                reg.servers.add(server)
                if not reg.local and reg.joiner is None:
                    reg.joiner = threading.Thread(
                        target=reg._join, name=f"genevent-owner:{reg.thread.name}", daemon=True
                    )
                    reg.joiner.start()
                return reg
        server.owner_down(self.thread, self.reason)  # it ended before the watch began
        return self

    def unsubscribe(self, server: _Watcher) -> None:
        with _state.watch_lock():
            self.servers.discard(server)

    def fire(self) -> None:
        """The thread ended: tell every subscribed manager."""
        if _state.is_exiting():
            return
        with _state.watch_lock():
            if self.fired:
                return
            self.fired = True
            self.reason, self.exc = self.exc, None
            servers = list(self.servers)
            self.servers.clear()
            _state.drop_watch(self.thread, self)
        for server in servers:
            server.owner_down(self.thread, self.reason)

    def _join(self) -> None:
        thread = self.thread
        while True:
            thread.join(_JOINER_RELEASE)
            if not thread.is_alive():
                self.fire()
                return
            with _state.watch_lock():
                if self.local or not self.servers:
                    self.joiner = None
                    if not self.local:
                        _state.drop_watch(thread, self)
                    return


def _fire_local(reg: _OwnerWatch) -> None:
    with contextlib.suppress(BaseException):
        reg.fire()


def _excepthook(args: threading.ExceptHookArgs) -> None:
    thread = args.thread
    if thread is not None:
        reg = _state.find_watch(thread)
        if reg is not None:
            reg.exc = args.exc_value
    hook = _state.previous_excepthook()
    hook(args)


def _prepare_owner(owner: Any, *, from_owner: bool) -> _OwnerWatch | None:
    """The watch for ``owner`` (None for the main thread, which ends with the interpreter).
    ``from_owner``: called on the owner thread itself, so its locals can hold a sentinel."""
    if owner is threading.main_thread():
        return None
    with _state.watch_lock():
        _state.chain_excepthook(_excepthook)
        reg: _OwnerWatch | None = _state.find_watch(owner)
        if reg is None:
            reg = _OwnerWatch(owner)
            if from_owner:  # another thread's watch is registered by subscribe(), if ever
                _state.add_watch(owner, reg)
        if from_owner and not reg.local:
            sentinel = getattr(_local, "sentinel", None)
            if sentinel is None:
                sentinel = _local.sentinel = _Sentinel()
            weakref.finalize(sentinel, _fire_local, reg).atexit = False
            reg.local = True
        return reg


def _check_owner(owner: Any) -> tuple[threading.Thread, _OwnerWatch | None]:
    current = threading.current_thread()
    if owner is None or owner is current:
        return current, _prepare_owner(current, from_owner=True)
    if not isinstance(owner, threading.Thread):
        raise InvalidOwner(f"owner {short(owner)} cannot be watched: pass a threading.Thread")
    if owner.ident is None:
        raise InvalidOwner(f"owner {short(owner)} is not started")
    if isinstance(owner, threading._DummyThread) and not _state.is_watched(owner):
        raise InvalidOwner(
            f"owner {short(owner)} was not started by threading and cannot be joined; let it add "
            "the handler itself"
        )
    return owner, _prepare_owner(owner, from_owner=False)
