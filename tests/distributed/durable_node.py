"""A child process for the durable-delivery tests: a node that hosts one manager with durable
notifies, as a standby until the name is free, and writes each event it handles to a file.

    python -m tests.distributed.durable_node URLS NS NODE_ID MANAGER OUT [ACK_WAIT MAX_DELIVER]

URLS is one server's URL, or several separated by commas (a cluster).
The tests' handlers (``tests.distributed.app``) are registered, so other nodes can add them.
It prints ``waiting`` once connected, ``serving`` once it holds the name. Each event handled is
a line ``<event> <time.time()>`` in OUT, written and flushed before the event is acknowledged
(a SIGKILL loses no line the kernel got). The event ``"poison"`` ends the process at once, as a
crash would; with ``GE_HANG=1`` in its environment, the event ``"hang"`` writes the line
``hanging`` and blocks the process for good (an event in flight on a node about to die).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, TextIO

from genevent import EventHandler
from genevent.nats import Durable, connect
from tests.distributed.app import HANDLERS, TYPES


class Recorder(EventHandler[Any, Any, Any]):
    """Writes every event to a file, flushed."""

    def init(self, out: TextIO, /) -> None:
        self.out = out

    def handle_event(self, event: Any, /) -> None:
        if event == "poison":
            os._exit(3)
        if event == "hang" and os.environ.get("GE_HANG") == "1":
            self.out.write("hanging\n")
            self.out.flush()
            time.sleep(3600)  # blocks the node: the test SIGKILLs it
        self.out.write(f"{event} {time.time()}\n")
        self.out.flush()


async def main(argv: list[str]) -> None:
    url, ns, node_id, name, path = argv[:5]
    ack_wait = float(argv[5]) if len(argv) > 5 else 2.0
    max_deliver = int(argv[6]) if len(argv) > 6 else 5
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    node = await connect(
        url.split(","), ns=ns, node_id=node_id, lease=1.0, handlers=HANDLERS, types=TYPES
    )
    print("waiting", flush=True)

    async def setup(mgr: Any) -> None:
        await mgr.add_handler(Recorder, out)

    options = Durable(ack_wait=ack_wait, max_deliver=max_deliver, nak_delay=0.1)
    mgr = await node.start_manager(name, durable=options, standby=True, setup=setup)
    print("serving", flush=True)
    await mgr.wait_stopped()
    await node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
