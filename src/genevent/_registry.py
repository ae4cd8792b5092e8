"""Process-wide names for managers (Erlang's local registration), shared by every runtime."""

from __future__ import annotations

import os
import threading
from typing import Any

from ._checks import check_name
from ._errors import NameTaken

__all__ = ("register", "unregister", "whereis")

_lock = threading.Lock()
_names: dict[str, Any] = {}


def register(name: str, manager: Any) -> None:
    """Claim ``name`` for ``manager`` atomically; raise :class:`NameTaken` if it is held, or
    :class:`~genevent.InvalidName` if it is not a non-empty str."""
    check_name(name)
    _forget_if_gone(_names.get(name))
    with _lock:
        holder = _names.get(name)
        if holder is not None:
            raise NameTaken(name, holder)
        _names[name] = manager


def _forget_if_gone(holder: Any) -> bool:
    """A manager whose world went away (its event loop closed) frees its name when asked."""
    gone = getattr(holder, "_gone", None)
    return gone is not None and bool(gone())


def unregister(name: str, manager: Any) -> None:
    """Free ``name`` if ``manager`` holds it."""
    with _lock:
        if _names.get(name) is manager:
            del _names[name]


def whereis(name: str) -> Any | None:
    """The running manager registered under ``name`` (either runtime), or None. Raises
    :class:`~genevent.InvalidName` if ``name`` is not a non-empty str (no manager could have
    it)."""
    holder = _names.get(check_name(name))
    return None if _forget_if_gone(holder) else holder


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
