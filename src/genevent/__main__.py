"""``genevent demo`` (also ``python -m genevent demo``): replay the seed session, the small
example genevent grew from (a manager named ``seed`` with one ``BroadcastEventHandler``, sent a
few broadcasts and asked for them, newest first).

With the ``nats`` extra: ``genevent node`` hosts managers on NATS, ``genevent ls`` lists the
cluster's managers, ``genevent notify`` and ``genevent call`` talk to one from a shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from . import __version__, aio, threads
from .examples import BroadcastEventHandler

__all__ = ("SEED_STEPS", "main", "seed_session", "seed_session_threads")

SEED_STEPS: tuple[tuple[str, ...], ...] = (
    ("notify", "I dare you!"),
    ("notify", "Meetup at 10 o'clock"),
    ("call",),
    ("call",),
    ("notify", "Assemble in class"),
    ("call",),
)
"""The seed session after ``add_handler(BroadcastEventHandler)``: notifies and calls."""

_CALL = "call(BroadcastEventHandler, 'broadcasts') -> {!r}"


async def seed_session(out: list[str]) -> list[list[str]]:
    """Run the seed session on an asyncio manager; append a line per step to ``out`` and
    return the answers of its calls."""
    answers: list[list[str]] = []
    async with aio.start(name="seed") as mgr:
        out.append(f"started {mgr!r}")
        await mgr.add_handler(BroadcastEventHandler)
        out.append("add_handler(BroadcastEventHandler)")
        for step in SEED_STEPS:
            if step[0] == "notify":
                mgr.notify(("broadcast", step[1]))
                out.append(f"notify(('broadcast', {step[1]!r}))")
            else:
                answers.append(await mgr.call(BroadcastEventHandler, "broadcasts"))
                out.append(_CALL.format(answers[-1]))
    out.append("stopped")
    return answers


def seed_session_threads(out: list[str]) -> list[list[str]]:
    """The same session on the thread runtime."""
    answers: list[list[str]] = []
    with threads.start(name="seed") as mgr:
        out.append(f"started {mgr!r}")
        mgr.add_handler(BroadcastEventHandler)
        out.append("add_handler(BroadcastEventHandler)")
        for step in SEED_STEPS:
            if step[0] == "notify":
                mgr.notify(("broadcast", step[1]))
                out.append(f"notify(('broadcast', {step[1]!r}))")
            else:
                answers.append(mgr.call(BroadcastEventHandler, "broadcasts"))
                out.append(_CALL.format(answers[-1]))
    out.append("stopped")
    return answers


def main(argv: list[str] | None = None) -> int:
    """The ``genevent`` console command: ``demo``, ``top``."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["top"]:
        from .top import main as top  # noqa: PLC0415 - only when asked for

        return top(args_list[1:])
    parser = argparse.ArgumentParser(prog="genevent", description=plain(__doc__))
    parser.add_argument("--version", action="version", version=f"genevent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("top", help="a live view of a process's managers (genevent top --help)")
    demo = sub.add_parser(
        "demo",
        help="replay the example session genevent grew from (a BroadcastEventHandler is sent "
        "broadcasts and asked for them)",
    )
    demo.add_argument(
        "--runtime", choices=("aio", "threads"), default="aio", help="default: aio (asyncio)"
    )
    has_nats = _nats_commands(sub)
    if args_list[:1] and args_list[0] in _NATS_COMMANDS and not has_nats:
        print(
            f'genevent {args_list[0]} needs the nats extra: pip install "genevent[nats]" '
            "(from a checkout: pip install -e '.[nats]')",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(args_list)
    if args.command in _NATS_COMMANDS:
        from .nats._cli import run  # noqa: PLC0415  # the nats extra: imported when asked for

        return run(args)
    lines: list[str] = []
    if args.runtime == "threads":
        seed_session_threads(lines)
    else:
        asyncio.run(seed_session(lines))
    for line in lines:
        print(line)
    return 0


_NATS_COMMANDS = ("node", "ls", "notify", "call")


def plain(text: str | None) -> str:
    """A docstring as ``--help`` shows it: without reStructuredText's double backticks."""
    return (text or "").replace("``", "")


def _nats_commands(sub: Any) -> bool:
    """``node``, ``ls``, ``notify`` and ``call``; True with the ``nats`` extra installed.
    Without it they are listed all the same, and say which extra they need."""
    try:
        from .nats._cli import add_commands  # noqa: PLC0415  # optional extra
    except ImportError:
        for name in _NATS_COMMANDS:
            sub.add_parser(name, help=f"{name} (needs the nats extra)", add_help=False)
        return False
    add_commands(sub)
    return True


if __name__ == "__main__":
    sys.exit(main())
