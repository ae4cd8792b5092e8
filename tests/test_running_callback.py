"""``CallTimeout.running`` names the handler callback the manager is in. genevent tells its own
frames from user frames by module (``genevent._*``, ``genevent.aio``, ``genevent.threads``),
never by file name: a user module whose file sits among genevent's files, or genevent code
whose file lies elsewhere (a moved file, a zip, a vendored copy), changes nothing."""

from __future__ import annotations

import asyncio
import os
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import genevent
from genevent import CallTimeout, aio, threads
from genevent._driver import awaited_frames, callback_in, stack_frames
from tests.handlers import WAIT

GENEVENT_DIR = Path(genevent.__file__).parent
# a user module's file named like one of genevent's private modules, in genevent's folder
LOOKALIKE = str(GENEVENT_DIR / "_plugin_handlers.py")

_SOURCE = """
import asyncio
import threading

class Slow:
    def init(self, args):
        self.entered, self.gate = args

    def handle_event(self, event):
        self.entered.set()
        self.gate.wait(WAIT)

    def handle_call(self, request):
        return request

class AsyncSlow:
    def init(self, args):
        self.entered, self.gate = args

    async def handle_event(self, event):
        self.entered.set()
        await asyncio.to_thread(self.gate.wait, WAIT)

    def handle_call(self, request):
        return request
"""


def _module(name: str, filename: str, source: str = _SOURCE) -> types.ModuleType:
    """A module named ``name`` whose code says it comes from ``filename`` (not imported from
    disk: only the code objects' file names are set)."""
    module = types.ModuleType(name)
    module.__dict__["WAIT"] = WAIT
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


@pytest.fixture
def user_module() -> types.ModuleType:
    return _module("plugins.slow", LOOKALIKE)


def test_threads_names_a_user_callback_whose_file_looks_like_genevents(
    user_module: types.ModuleType,
) -> None:
    slow = user_module.Slow
    entered, gate = threading.Event(), threading.Event()
    mgr = threads.start()
    try:
        mgr.add_handler(slow, (entered, gate))
        mgr.notify("first")
        assert entered.wait(WAIT)
        with pytest.raises(CallTimeout) as info:
            mgr.call(slow, "late", timeout=0.05)
    finally:
        gate.set()
    assert info.value.running == "Slow.handle_event"
    mgr.stop()


def test_aio_names_a_user_callback_whose_file_looks_like_genevents(
    user_module: types.ModuleType,
) -> None:
    slow = user_module.AsyncSlow
    entered, gate = threading.Event(), threading.Event()

    async def main() -> CallTimeout:
        mgr = aio.start()
        try:
            await mgr.add_handler(slow, (entered, gate))
            mgr.notify("first")
            assert await asyncio.to_thread(entered.wait, WAIT)
            with pytest.raises(CallTimeout) as info:
                await mgr.call(slow, "late", timeout=0.05)
        finally:
            gate.set()
        await mgr.stop()
        return info.value

    assert asyncio.run(main()).running == "AsyncSlow.handle_event"


def test_runtime_code_is_told_by_module_not_by_file() -> None:
    """A runtime function whose file is outside genevent's folder is still genevent's; a user
    function whose file is inside it is still the user's."""
    seen: list[Any] = []
    user_source = "import sys\ndef handle_event(seen):\n    seen.append(sys._getframe())\n"
    user = _module("plugins.user", LOOKALIKE, user_source)
    runtime = _module(
        "genevent._relocated",
        os.path.join(os.sep, "elsewhere", "relocated.py"),
        "def dispatch(fn, arg):\n    fn(arg)\n",
    )
    runtime.dispatch(user.handle_event, seen)
    assert callback_in(stack_frames(seen[0])) == "handle_event"
    # genevent's demo handlers and its other public modules are user code, as far as this goes
    for name in ("genevent.examples", "genevent.__main__", "genevent.nats._node"):
        demo = _module(name, str(GENEVENT_DIR / "_x.py"), user_source)
        seen.clear()
        runtime.dispatch(demo.handle_event, seen)
        assert callback_in(stack_frames(seen[0])) == "handle_event", name
    assert callback_in(stack_frames(None)) is None


def test_awaited_frames_follow_the_await_chain() -> None:
    runtime = _module(
        "genevent._relocated",
        os.path.join(os.sep, "elsewhere", "relocated.py"),
        "async def drive(aw):\n    return await aw\n",
    )
    user = _module(
        "plugins.user",
        LOOKALIKE,
        "import asyncio\nasync def handle_event(fut):\n    return await fut\n",
    )

    async def main() -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(runtime.drive(user.handle_event(fut)))
        await asyncio.sleep(0)
        frames = awaited_frames(task.get_coro())
        assert [f.f_code.co_name for f in frames] == ["drive", "handle_event"]
        assert callback_in(frames) == "handle_event"
        fut.set_result(None)
        await task
        assert awaited_frames(task.get_coro()) == []  # finished: no frames left

    asyncio.run(main())
