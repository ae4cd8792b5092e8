"""Tracing with OpenTelemetry (the ``tracing`` extra: ``pip install 'genevent[tracing]'``).

Off unless asked for. A manager is traced when it starts with ``tracing=True``
(``aio.start(..., tracing=True)``, ``threads.start(..., tracing=True)``), or, when it starts
without ``tracing=``, after :func:`enable`. A traced manager opens a span for each ``notify``,
``send``, ``call`` and ``sync_notify`` (``send <manager>``) and one for each handler callback
(``process <manager>`` for ``handle_event``, ``handle_call`` and ``handle_info``, a child of the
span of the message it handles, in whichever task or thread the handler runs; ``init
<manager>`` and ``terminate <manager>`` under the span current there). A callback that raises
has the exception recorded on its span, with status ERROR. An untraced manager runs exactly
the code it runs without this module. See the documentation's "Tracing" page.
"""

from __future__ import annotations

from typing import Any

from ._tracing import choice, set_default

__all__ = ("disable", "enable", "is_enabled")


def enable(tracer_provider: Any = None) -> None:
    """Trace every manager started from now on without ``tracing=`` (those running keep what
    they started with), with ``tracer_provider`` (None: OpenTelemetry's global provider,
    looked up when each manager starts). Needs ``opentelemetry-api``: raises
    :class:`ImportError` at once without it."""
    import opentelemetry.trace  # noqa: F401, PLC0415 - the tracing extra: fail here, not later

    set_default(True, tracer_provider)


def disable() -> None:
    """Managers started from now on without ``tracing=`` are not traced (the default)."""
    set_default(False, None)


def is_enabled() -> bool:
    """Whether :func:`enable` is in force (managers started without ``tracing=`` are traced)."""
    return choice(None)[0]
