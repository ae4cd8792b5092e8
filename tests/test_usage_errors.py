"""Clear errors for common first mistakes: the asyncio runtime started from plain code."""

from __future__ import annotations

import pytest

from genevent import WrongRuntime, aio


def test_aio_start_outside_a_running_loop_says_what_to_do() -> None:
    with pytest.raises(WrongRuntime) as info:
        aio.start()
    assert isinstance(info.value, RuntimeError)
    text = str(info.value)
    assert "needs a running event loop" in text
    assert "async def main()" in text
    assert "asyncio.run(main())" in text
    assert "genevent.threads.start()" in text
