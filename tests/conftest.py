"""Fixtures: ``rt`` runs each conformance test once per runtime; ``rec`` records."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.handlers import Recorder
from tests.runtimes import AVAILABLE, ISOLATION_EXEMPT, RUNTIMES, Runtime, close_nats_cluster


@pytest.fixture(params=AVAILABLE)
def rt(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    cls = RUNTIMES[request.param]
    test = request.node.originalname
    if cls.isolated and test in ISOLATION_EXEMPT:
        pytest.skip(f"not with isolated handlers: {ISOLATION_EXEMPT[test]}")
    callspec = getattr(request.node, "callspec", None)
    variant = f"{test}[{callspec.id}]" if callspec is not None else test
    for key in (test, variant):  # the test, or one of its variants (with the runtime's id)
        if key in cls.exempt:
            pytest.skip(f"not on the {cls.name} runtime: {cls.exempt[key]}")
    why = cls.unavailable()
    if why is not None:
        pytest.skip(f"the {cls.name} runtime is unavailable: {why}")
    runtime = cls()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def reports(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captures what genevent logs."""
    caplog.set_level(logging.DEBUG, logger="genevent")
    return caplog


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        kwargs: dict[str, Any] = {n: pyfuncitem.funcargs[n] for n in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The nats runtime's nats-server and nodes (started on first use) end with the session."""
    close_nats_cluster()
