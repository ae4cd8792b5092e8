"""``genevent node | ls | notify | call``: the NATS commands of the ``genevent`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from .._errors import GenEventError
from ._connect import cancel_until_done, tls_context
from ._errors import ConnectFailed
from ._node import Node, connect
from ._wire import Codec

__all__ = ("add_commands", "add_connect_arguments", "connect_options", "run", "run_command")

_DEFAULT_SERVER = "nats://127.0.0.1:4222"
_GROUPS_WAIT = 2.0  # seconds: how long `ls` waits for the process groups


def add_connect_arguments(p: argparse.ArgumentParser, server: bool = True) -> None:
    """Add the options saying where NATS is and how to log in (``--server``, ``--user``,
    ``--password``, ``--token``, ``--nkey``, ``--creds``, ``--tls-*``, ``--connect-timeout``);
    unset ones default to the ``NATS_*`` environment variables the ``nats`` tool reads."""
    env = os.environ.get
    if server:
        default = env("NATS_URL", _DEFAULT_SERVER)
        p.add_argument("--server", default=default, help=f"NATS URL ($NATS_URL, {default})")
    auth = p.add_argument_group("connecting to NATS (unset options read $NATS_* variables)")
    for flag, meta, var, text in (
        ("--user", "USER", "NATS_USER", "user name"),
        ("--password", "PASSWORD", "NATS_PASSWORD", "password"),
        ("--token", "TOKEN", "NATS_TOKEN", "auth token"),
        ("--nkey", "SEED_FILE", "NATS_NKEY", "nkey seed file"),
        ("--creds", "FILE", "NATS_CREDS", ".creds file (user JWT + nkey seed)"),
        ("--tls-ca", "FILE", "NATS_CA", "CA certificates to trust (PEM)"),
        ("--tls-cert", "FILE", "NATS_CERT", "client certificate (PEM)"),
        ("--tls-key", "FILE", "NATS_KEY", "its private key (PEM)"),
    ):
        auth.add_argument(flag, metavar=meta, default=env(var), help=f"{text} (${var})")
    auth.add_argument(
        "--connect-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="give up connecting after S seconds (default 2)",
    )


def connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """nats-py's connect options for what :func:`add_connect_arguments` parsed."""
    opts: dict[str, Any] = {"connect_timeout": args.connect_timeout}
    for option, value in (
        ("user", args.user),
        ("password", args.password),
        ("token", args.token),
        ("nkeys_seed", args.nkey),
        ("user_credentials", args.creds),
    ):
        if value:
            opts[option] = value
    if args.tls_ca or args.tls_cert or args.tls_key:
        opts["tls"] = tls_context(args.tls_ca, args.tls_cert, args.tls_key)
    return opts


def add_commands(sub: Any) -> None:
    """Add the NATS subcommands to the ``genevent`` argument parser."""

    def common(p: argparse.ArgumentParser) -> None:
        add_connect_arguments(p)
        p.add_argument("--ns", default="default", help="namespace (default: default)")

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
    ls = sub.add_parser("ls", help="list the cluster's managers, their nodes and process groups")
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
    """Run one NATS subcommand; return the exit status (130 after Ctrl-C)."""
    return run_command(f"genevent {args.command}", _COMMANDS[args.command](args))


def run_command(what: str, main: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine: a failure is one line on stderr and status 1 (2 for a
    usage error); Ctrl-C (SIGINT) ends it at once with status 130, and no traceback."""
    try:
        return asyncio.run(_interruptible(main))
    except KeyboardInterrupt:  # before the command's own SIGINT handling was in place
        return 130
    except NotJSON as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        return 2
    except ConnectFailed as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        return 1
    except (GenEventError, OSError, ValueError) as exc:
        print(f"{what}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


async def _interruptible(main: Coroutine[Any, Any, int]) -> int:
    """``main`` in a task that the first SIGINT cancels (it closes its node on the way out),
    then returns 130; a second SIGINT ends the process on the spot."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()

    def on_sigint() -> None:
        if interrupted.is_set():
            os._exit(130)
        interrupted.set()

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    stop = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        await cancel_until_done(task)  # if interrupted
    finally:
        stop.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
    return 130 if interrupted.is_set() else task.result()


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {"ns": args.ns, **connect_options(args)}


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
        groups = await _groups(node)
    width = max((len(n) for n in managers), default=4)
    print(f"{'NAME':<{width}}  NODE")
    for name, where in managers.items():
        print(f"{name:<{width}}  {where}")
    if groups:  # process groups, if any has a live member
        width = max(5, *(len(g) for g in groups))
        print(f"\n{'GROUP':<{width}}  MEMBERS")
        for group, members in groups.items():
            print(f"{group:<{width}}  {' '.join(members)}")
    return 0


async def _groups(node: Node) -> dict[str, list[str]]:
    """The process groups, or none for a user the server does not let read them."""
    try:
        async with asyncio.timeout(_GROUPS_WAIT):
            groups: dict[str, list[str]] = await node.groups()
    except (TimeoutError, GenEventError, OSError):
        return {}
    except Exception as exc:  # refused by the server (no permission on the bucket), ...
        print(f"genevent ls: groups not shown ({type(exc).__name__})", file=sys.stderr)
        return {}
    return groups


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
