"""Every running manager of this process, whatever its runtime (for exporters and views)."""

from __future__ import annotations

from typing import Any

__all__ = ("running_managers",)


def running_managers() -> list[Any]:
    """The managers of both runtimes that are running now (a snapshot), in no set order."""
    from .aio import _common  # noqa: PLC0415 - the runtimes import what imports this
    from .threads import _state  # noqa: PLC0415

    live: list[Any] = list(_common._LIVE)  # aio.EventManagers
    found: list[Any] = [m for m in live if m.is_running]
    for server in _state.live_servers():
        mgr = server.public()
        if mgr is not None and mgr.is_running:
            found.append(mgr)
    return found
