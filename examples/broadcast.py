"""The seed: a ``BroadcastEventHandler`` keeps every ``("broadcast", text)`` it sees; a call
returns them newest first and empties the list. Run: ``python examples/broadcast.py``"""

from __future__ import annotations

import asyncio

from genevent import aio
from genevent.examples import BroadcastEventHandler


async def main() -> None:
    async with aio.start("broadcasts") as mgr:
        await mgr.add_handler(BroadcastEventHandler)
        mgr.notify(("broadcast", "I dare you!"))
        mgr.notify(("broadcast", "Meetup at 10 o'clock"))
        print(await mgr.call(BroadcastEventHandler, "broadcasts"))
        print(await mgr.call(BroadcastEventHandler, "broadcasts"))
        mgr.notify(("broadcast", "Assemble in class"))
        print(await mgr.call(BroadcastEventHandler, "broadcasts"))


if __name__ == "__main__":
    asyncio.run(main())
