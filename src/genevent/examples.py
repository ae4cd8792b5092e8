"""Example handlers, starting with the seed: ``BroadcastEventHandler``."""

from __future__ import annotations

from typing import Any

from ._handler import EventHandler

__all__ = ("Broadcast", "BroadcastEventHandler")

Broadcast = tuple[str, str]
"""The seed's event: ``("broadcast", text)``."""


class BroadcastEventHandler(EventHandler[tuple[Any, ...], str, list[str]]):
    """Keeps the text of every ``("broadcast", text)`` event it sees (other events are
    ignored). ``call(..., "broadcasts")`` returns them newest first and empties the list."""

    def init(self, args: Any = None, /) -> None:
        self.broadcasts: list[str] = []

    def handle_event(self, event: tuple[Any, ...], /) -> None:
        if len(event) == 2 and event[0] == "broadcast":
            self.broadcasts.insert(0, event[1])

    def handle_call(self, request: str, /) -> list[str]:
        if request != "broadcasts":
            raise ValueError(f"unknown request {request!r}; ask for 'broadcasts'")
        texts, self.broadcasts = self.broadcasts, []
        return texts
