"""``genevent node | ls | notify | call``: the NATS commands of the ``genevent`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import signal
import sys
from typing import Any

from .._errors import GenEventError
from ._node import connect
from ._wire import Codec

__all__ = ("add_commands", "run")

_DEFAULT_SERVER = "nats://127.0.0.1:4222"


def add_commands(sub: Any) -> None:
    """Add the NATS subcommands to the ``genevent`` argument parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=_DEFAULT_SERVER, help=f"NATS URL ({_DEFAULT_SERVER})")
        p.add_argument("--ns", default="default", help="namespace (default: default)")
        p.add_argument("--creds", help="a NATS .creds file (user JWT + nkey seed)")
        p.add_argument("--token", help="a NATS auth token")

    node = sub.add_parser("node", help="run a node hosting the managers a module sets up")
    common(node)
    node.add_argument(
        "--module",
        required=True,
        help="a Python module with async def setup(node) (registers handlers, starts managers)",
    )
    node.add_argument("--node-id", help="this node's id (default: host-pid-random)")
    node.add_argument("--lease", type=float, default=1.5, help="lease seconds (default 1.5)")
    node.add_argument("--codec", choices=("msgpack", "json"), default="msgpack")
    ls = sub.add_parser("ls", help="list the cluster's managers and their nodes")
    common(ls)
    notify = sub.add_parser(
        "notify",
        help='notify a manager (the event as JSON; tuples as {"$tuple": [...]})',
        epilog=f"example: genevent notify NAME {_EXAMPLE}",
    )
    common(notify)
    notify.add_argument("name")
    notify.add_argument("event", help="the event as JSON")
    call = sub.add_parser("call", help="call one handler of a manager")
    common(call)
    call.add_argument("name")
    call.add_argument("handler", help="the handler's registered name")
    call.add_argument("request", help="the request as JSON, for example '\"status\"'")
    call.add_argument("--timeout", type=float, default=5.0)


def run(args: argparse.Namespace) -> int:
    """Run one NATS subcommand; return the exit status."""
    try:
        return asyncio.run(_COMMANDS[args.command](args))
    except NotJSON as exc:
        print(f"genevent {args.command}: {exc}", file=sys.stderr)
        return 2
    except (GenEventError, OSError, ValueError) as exc:
        print(f"genevent {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"ns": args.ns}
    if args.creds:
        opts["user_credentials"] = args.creds
    if args.token:
        opts["token"] = args.token
    return opts


async def _node(args: argparse.Namespace) -> int:
    module = importlib.import_module(args.module)
    setup = getattr(module, "setup", None)
    if setup is None:
        raise ValueError(f"module {args.module!r} has no `async def setup(node)`")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with await connect(
        args.server,
        node_id=args.node_id,
        lease=args.lease,
        codec=args.codec,
        max_reconnect_attempts=-1,
        **_options(args),
    ) as node:
        await setup(node)
        print(f"ready {node.id} {' '.join(sorted(node.hosted()))}", flush=True)
        await stop.wait()
    return 0


async def _ls(args: argparse.Namespace) -> int:
    async with await connect(args.server, max_reconnect_attempts=0, **_options(args)) as node:
        managers = await node.managers()
    width = max((len(n) for n in managers), default=4)
    print(f"{'NAME':<{width}}  NODE")
    for name, where in managers.items():
        print(f"{name:<{width}}  {where}")
    return 0


_EXAMPLE = (
    """'{"kind": "ping"}' (an object), or '"text"' (a string: JSON quotes inside shell quotes)"""
)


class NotJSON(ValueError):
    """A command-line event or request that is not JSON."""


def _value(text: str, what: str = "event", command: str = "notify NAME") -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotJSON(
            f"the {what} must be JSON, and {text!r} is not ({exc.msg}); for example: "
            f"genevent {command} {_EXAMPLE}"
        ) from None
    return Codec(json=True).from_wire(data)


async def _notify(args: argparse.Namespace) -> int:
    event = _value(args.event)
    async with await connect(args.server, max_reconnect_attempts=0, **_options(args)) as node:
        node.manager(args.name).notify(event)
    return 0  # close() flushes what was published


async def _call(args: argparse.Namespace) -> int:
    request = _value(args.request, "request", "call NAME HANDLER")
    async with await connect(args.server, max_reconnect_attempts=0, **_options(args)) as node:
        reply = await node.manager(args.name).call(args.handler, request, args.timeout)
    print(json.dumps(Codec(json=True).to_wire(reply)))
    return 0


_COMMANDS = {"node": _node, "ls": _ls, "notify": _notify, "call": _call}
