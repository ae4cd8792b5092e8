"""A remote manager refuses bad arguments before sending, as a local one does, and an error
whose text cannot be read is still answered with a typed error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genevent import EventHandler
from genevent.nats import connect


class Unsayable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Raiser(EventHandler[Any, str, None]):
    def handle_event(self, event: Any, /) -> None:
        pass

    def handle_call(self, request: str, /) -> None:
        raise Unsayable()


def test_an_error_without_text_is_still_answered_and_bad_options_refused_locally(
    url: str, ns: str
) -> None:
    """An exception whose str() raises is answered with a typed error (not left to time out);
    bad timeouts and restart options are refused before anything is sent, as locally."""
    from genevent import HandlerCrashed  # noqa: PLC0415

    async def scenario() -> None:
        async with await connect(url, ns=ns) as a, await connect(url, ns=ns) as b:
            a.register_handler(Raiser)
            mgr = await a.start_manager("raising")
            await mgr.add_handler(Raiser)
            remote = b.manager("raising")
            with pytest.raises(HandlerCrashed) as info:
                await remote.call("Raiser", "go", 30.0)  # a timeout would be CallTimeout
            assert "Unsayable" in str(info.value)
            with pytest.raises(TypeError):
                await remote.call("Raiser", "go", "5")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="restart"):
                await remote.add_handler("Raiser", restart="sometimes")  # type: ignore[arg-type]
            assert await remote.which_handlers() == []  # the crashed handler left; nothing added

    asyncio.run(scenario())
