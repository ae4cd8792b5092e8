"""Monitors of remote managers and the notice they deliver (no transport here: the node's
liveness fires them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import CallTimeout

__all__ = ("Down", "DownReason", "Monitor")

DownReason = Literal["noproc", "nodedown", "noconnection"]
"""Why a monitor fired: the manager stopped (``noproc``), its node's lease expired
(``nodedown``), or this node's own NATS connection went down (``noconnection``)."""


@dataclass(frozen=True, slots=True)
class Down:
    """A monitor's notice (Erlang's ``{'DOWN', Ref, process, {Name, Node}, Reason}``)."""

    name: str
    node: str | None
    reason: DownReason


class Monitor:
    """Watches one remote manager; fires once. Await :meth:`wait` (or ``await monitor``)."""

    def __init__(
        self, watching: set[Monitor], name: str, where: str | None, claim: int | None = None
    ) -> None:
        self._watching = watching
        #: the revision of the name's claim when the monitor was set (its "stopped" notice
        #: names it); None if unknown
        self._claim = claim
        #: the manager name
        self.name = name
        #: the node that hosted it when the monitor was set (None if unknown)
        self.node = where
        self._fut: asyncio.Future[Down] = asyncio.get_running_loop().create_future()

    def _fire(self, reason: DownReason, node: str | None = None) -> None:
        if not self._fut.done():
            self._fut.set_result(Down(self.name, node or self.node, reason))
        self._watching.discard(self)

    def done(self) -> bool:
        """Whether the notice arrived."""
        return self._fut.done()

    async def wait(self, timeout: float | None = None) -> Down:
        """The :class:`Down` notice, once the manager or its node is gone."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._fut), timeout)
        except TimeoutError:
            raise CallTimeout(f"monitor of {self.name!r}", timeout or 0.0) from None

    def __await__(self) -> Any:
        return self.wait().__await__()

    def cancel(self) -> None:
        """Stop watching (no notice will come)."""
        self._watching.discard(self)
        if not self._fut.done():
            self._fut.cancel()
