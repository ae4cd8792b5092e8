"""Requests to JetStream (KV writes, stream and consumer requests) that the NATS server's
permissions refuse: the server drops the publish and says so only in an asynchronous error
("permissions violation for publish to <subject>"), so nats-py's own request would wait for
its timeout. An operation run under :meth:`Denials.guarded` fails at once instead, with
:class:`PermissionDenied`, when such an error names a subject it uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from ._errors import PermissionDenied

__all__ = ("Denials", "bucket_subjects", "matches", "stream_subjects")

T = TypeVar("T")


def matches(pattern: str, subject: str) -> str | None:
    """``subject`` if it is one of those the NATS subject ``pattern`` names (``*`` stands for
    one token, a last ``>`` for one or more), else None. Case is ignored (nats-py reports a
    denied subject in lower case): the subject returned has the pattern's literal tokens."""
    want, got = pattern.split("."), subject.split(".")
    out: list[str] = []
    for i, token in enumerate(want):
        if token == ">" and i == len(want) - 1:
            return ".".join(out + got[i:]) if len(got) > i else None
        if i >= len(got) or (token != "*" and token.lower() != got[i].lower()):
            return None
        out.append(got[i] if token == "*" else token)
    return ".".join(out) if len(got) == len(want) else None


def stream_subjects(stream: str) -> tuple[str, ...]:
    """The JetStream API subjects about the stream ``stream`` and its consumers."""
    return (
        f"$JS.API.STREAM.*.{stream}",
        f"$JS.API.STREAM.MSG.*.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.*.{stream}",
        f"$JS.API.CONSUMER.*.{stream}.>",
        f"$JS.API.CONSUMER.*.*.{stream}.>",
    )


def bucket_subjects(bucket: str) -> tuple[str, ...]:
    """The subjects a node uses to open, read and write the KV bucket ``bucket``."""
    return (*stream_subjects(f"KV_{bucket}"), f"$KV.{bucket}.>")


class Denials:
    """The operations in flight that a denied publish fails at once."""

    def __init__(self) -> None:
        self._guards: dict[int, tuple[tuple[str, ...], asyncio.Future[str]]] = {}
        self._next = 0

    def deny(self, subject: str) -> bool:
        """The server refused a publish to ``subject``: fail the operations that use it;
        whether there was one."""
        failed = False
        for patterns, denial in list(self._guards.values()):
            for pattern in patterns:
                named = matches(pattern, subject)
                if named is not None and not denial.done():
                    denial.set_result(named)
                    failed = True
        return failed

    async def guarded(self, subjects: Iterable[str], operation: Awaitable[T]) -> T:
        """Await ``operation``; raise :class:`PermissionDenied` as soon as the server refuses
        a publish to one of ``subjects`` (NATS subject patterns), the operation cancelled."""
        denial: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        key, self._next = self._next, self._next + 1
        self._guards[key] = (tuple(subjects), denial)
        task = asyncio.ensure_future(operation)
        try:
            await asyncio.wait((task, denial), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            del self._guards[key]
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise PermissionDenied(denial.result())
