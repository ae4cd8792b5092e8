"""A node's first connection to NATS: bounded in time, and failing with a clear reason.

nats-py retries a first connection for ever when the server is unreachable, and again and
again when it refuses the credentials. A node instead gives up after ``connect_timeout``
seconds (a server that is still starting gets that long), and at once when retrying cannot
help (credentials refused, a TLS certificate not trusted), with a :class:`ConnectFailed`
that says which of these happened. Reconnecting after a first success is unchanged.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, Final

import nats.errors

from ._errors import ConnectFailed

__all__ = (
    "CANCEL_AGAIN",
    "DEFAULT_CONNECT_TIMEOUT",
    "cancel_until_done",
    "first_connect",
    "shown",
    "tls_context",
)

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds a node's first connection may take, attempts and retries included."""

START_HINT: Final = "start one with `nats-server -js` (the nats extra installs it)"


def shown(servers: str | list[str]) -> str:
    """The server URLs as an error message shows them (passwords and tokens hidden)."""
    urls = [servers] if isinstance(servers, str) else list(servers)
    return ", ".join(_hide_secret(u) for u in urls) or "(no server given)"


def _hide_secret(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and parts.username is None:
        return url
    user = "***" if parts.password is None else f"{parts.username}:***"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def tls_context(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for nats-py's ``tls`` option: the system's trusted CAs, or
    only ``ca`` (a PEM file) when given; ``cert`` (and ``key``, when not in the same file)
    is this client's certificate, for servers that verify clients."""
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    elif key is not None:
        raise ValueError("a TLS key needs its certificate (--tls-cert)")
    return context


def _hopeless(exc: BaseException) -> bool:
    """Whether retrying the first connection cannot help."""
    if isinstance(exc, nats.errors.AuthorizationError | ssl.SSLError):
        return True
    text = str(exc).lower()
    return "authorization" in text or "authentication" in text


async def first_connect(
    open_link: Callable[[dict[str, Any]], Awaitable[None]],
    servers: str | list[str],
    options: dict[str, Any],
    timeout: float,
) -> None:
    """``open_link(options)`` (nats-py's ``connect`` to ``servers``, closing the connection
    if it fails), given up after ``timeout`` seconds or at the first hopeless error; raises
    :class:`ConnectFailed` then."""
    if not timeout > 0:
        raise ValueError(f"connect_timeout must be > 0 seconds, not {timeout!r}")
    _check_files(options)
    seen: list[BaseException] = []
    hopeless = asyncio.Event()
    connecting = True
    then: Callable[[Exception], Awaitable[None]] | None = options.get("error_cb")

    async def on_error(exc: Exception) -> None:
        if connecting:
            seen.append(exc)
            if _hopeless(exc):
                hopeless.set()
        if then is not None:
            await then(exc)

    task = asyncio.ensure_future(open_link({**options, "error_cb": on_error}))
    stop = asyncio.ensure_future(hopeless.wait())
    try:
        await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        connecting = False
        stop.cancel()
        await cancel_until_done(task)
    if task.cancelled() or task.exception() is not None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not seen:
            if type(exc).__module__.split(".")[0] == "nkeys":  # a seed nkeys cannot read
                raise ConnectFailed(f"the nkey seed is not usable: {exc}", "auth") from exc
            raise exc  # an option nats-py refused before trying
        seen += [exc] if exc is not None else []
        worst = next((e for e in reversed(seen) if _hopeless(e)), seen[-1] if seen else None)
        raise _failure(servers, seen, worst, timeout) from worst


async def cancel_until_done(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for its end, cancelling it again every
    :data:`CANCEL_AGAIN` seconds: on Python 3.11, :func:`asyncio.wait_for` (nats-py connects
    with it) loses a cancellation that meets the end of the future it waits for."""
    cancelled = False
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait({task}, timeout=CANCEL_AGAIN)
        except asyncio.CancelledError:
            cancelled = True  # we are cancelled too: once ``task`` has ended
    if not task.cancelled():
        task.exception()  # retrieved (the caller reads it if it cares)
    if cancelled:
        raise asyncio.CancelledError


CANCEL_AGAIN: Final = 0.25
"""Seconds between the cancellations of :func:`cancel_until_done`."""


def _check_files(options: dict[str, Any]) -> None:
    """A seed or ``.creds`` file that cannot be read fails before connecting (nats-py would
    read it only while logging in, and the server would then refuse the login)."""
    for key, what in (("user_credentials", ".creds"), ("nkeys_seed", "nkey seed")):
        value = options.get(key)
        for path in value if isinstance(value, tuple) else (value,):
            if isinstance(path, str | os.PathLike):
                try:
                    with open(path, "rb"):
                        pass
                except OSError as exc:
                    raise ConnectFailed(
                        f"cannot read the {what} file {os.fspath(path)!r}: {exc.strerror or exc}",
                        "auth",
                    ) from exc


def _refused(exc: BaseException) -> bool:
    # asyncio reports a name with several addresses (localhost) as OSError("Multiple ...")
    return isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and "connect call failed" in str(exc).lower()
    )


def _failure(
    servers: str | list[str],
    seen: list[BaseException],
    worst: BaseException | None,
    timeout: float,
) -> ConnectFailed:
    """The error for a first connection that failed: ``seen`` are the errors met, ``worst``
    the one that tells most (a refused login or TLS failure, else the last)."""
    where = shown(servers)
    if isinstance(worst, ssl.SSLError):
        return ConnectFailed(f"TLS with the NATS server at {where} failed: {worst}", "tls")
    if worst is not None and _hopeless(worst):
        return ConnectFailed(
            f"the NATS server at {where} refused the credentials ({worst}): check the "
            "user and password, token, nkey seed or .creds file",
            "auth",
        )
    tries = [e for e in seen if not isinstance(e, nats.errors.NoServersError)]
    if tries and all(_refused(e) for e in tries):
        return ConnectFailed(f"no NATS server at {where}: {START_HINT}", "refused")
    detail = f" (last error: {worst!r})" if worst is not None else ""
    return ConnectFailed(
        f"could not connect to the NATS server at {where} within {timeout:g} s{detail}",
        "timeout",
    )
