"""``genevent demo`` (also ``python -m genevent demo``): replay the seed session."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import aio
from .examples import BroadcastEventHandler

__all__ = ("main", "seed_session")


async def seed_session(out: list[str]) -> list[list[str]]:
    """Run the seed session on an asyncio manager; append a line per step to ``out`` and
    return the three answers."""
    answers: list[list[str]] = []
    async with aio.start(name="seed") as mgr:
        out.append(f"started {mgr!r}")
        await mgr.add_handler(BroadcastEventHandler)
        out.append("add_handler(BroadcastEventHandler)")
        for text in ("I dare you!", "Meetup at 10 o'clock"):
            mgr.notify(("broadcast", text))
            out.append(f"notify(('broadcast', {text!r}))")
        for _ in range(2):
            answer = await mgr.call(BroadcastEventHandler, "broadcasts")
            answers.append(answer)
            out.append(f"call(BroadcastEventHandler, 'broadcasts') -> {answer!r}")
        mgr.notify(("broadcast", "Assemble in class"))
        out.append("notify(('broadcast', 'Assemble in class'))")
        answer = await mgr.call(BroadcastEventHandler, "broadcasts")
        answers.append(answer)
        out.append(f"call(BroadcastEventHandler, 'broadcasts') -> {answer!r}")
    out.append("stopped")
    return answers


def main(argv: list[str] | None = None) -> int:
    """The ``genevent`` console command."""
    parser = argparse.ArgumentParser(prog="genevent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="replay the seed session (BroadcastEventHandler)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        lines: list[str] = []
        asyncio.run(seed_session(lines))
        for line in lines:
            print(line)
        return 0
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
