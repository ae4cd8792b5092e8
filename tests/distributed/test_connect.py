"""A node's first connection fails fast and says why, and every NATS login (user and password,
token, nkey seed, ``.creds``, TLS with a private CA) reaches ``Node.connect`` and every
``genevent`` command. The commands run as child processes, as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from genevent import EventHandler
from genevent.nats import BlockingNode, ConnectFailed, TransportDown, connect
from genevent.nats._connect import shown

from .app import Log
from .conftest import PYTHONPATH, ROOT, Secured

LOGINS = ("password", "token", "nkey", "creds", "tls")


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then let go: nothing else here takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def genevent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m genevent ARGS`` to its end (the timeout only guards against a hang)."""
    return subprocess.run(
        [sys.executable, "-m", "genevent", *args],
        capture_output=True,
        text=True,
        timeout=float(os.environ.get("GE_CLI_TIMEOUT", "120")),
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "COLUMNS": "160", **(env or {})},
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- Node.connect ---------------------------------------------------------------------------


def test_no_server_is_a_connect_failure_that_says_so(closed_port: int) -> None:
    async def go() -> None:
        await connect(f"nats://127.0.0.1:{closed_port}", connect_timeout=0.5)

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(go())
    assert isinstance(info.value, TransportDown)
    assert info.value.reason == "refused"
    assert str(info.value).startswith(f"no NATS server at nats://127.0.0.1:{closed_port}: start")


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does), says nothing
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"nats://127.0.0.1:{listener.getsockname()[1]}"

        async def go() -> None:
            await connect(url, connect_timeout=0.5)

        with pytest.raises(ConnectFailed) as info:
            asyncio.run(go())
    assert info.value.reason == "timeout"
    assert str(info.value).startswith(f"could not connect to the NATS server at {url} within 0.5 s")


@pytest.mark.parametrize("kind", ["password", "token", "nkey", "creds"])
def test_refused_credentials_fail_at_once(kind: str, secured: Callable[[str], Secured]) -> None:
    """Refused credentials end the first connection at once: with a connect_timeout of a
    minute, the reason is still "auth" (retrying until the timeout would say "timeout")."""
    server = secured(kind)
    wrong: dict[str, Any] = {
        "password": {"user": "alice", "password": "wrong"},
        "token": {"token": "wrong"},
        "nkey": {},
        "creds": {},
    }[kind]

    async def go() -> None:
        await connect(server.url, connect_timeout=60.0, **wrong)

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(go())
    assert info.value.reason == "auth", info.value
    assert "refused the credentials" in str(info.value)
    assert "wrong" not in str(info.value)  # nor any secret


@pytest.mark.parametrize("kind", LOGINS)
def test_each_login_reaches_node_connect(kind: str, secured: Callable[[str], Secured]) -> None:
    server = secured(kind)

    async def go() -> tuple[str, dict[str, str]]:
        async with await connect(server.url, ns=f"login{kind}", **server.options) as node:
            await node.start_manager("here")
            return node.id, await node.managers()

    node_id, managers = asyncio.run(go())
    assert managers == {"here": node_id}


def test_tls_without_the_private_ca_fails_as_tls(secured: Callable[[str], Secured]) -> None:
    server = secured("tls")

    async def go() -> None:
        await connect(server.url, connect_timeout=60.0)  # the system's CAs only

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(go())
    assert info.value.reason == "tls", info.value
    assert "certificate" in str(info.value).lower()


@pytest.mark.parametrize(
    ("option", "text"),
    [("user_credentials", None), ("nkeys_seed", None), ("nkeys_seed", "SUNOTASEED\n")],
)
def test_an_unusable_seed_or_creds_file_is_a_connect_failure(
    option: str, text: str | None, tmp_path: Path, closed_port: int
) -> None:
    path = tmp_path / "login"
    if text is not None:
        path.write_text(text)

    async def go() -> None:
        await connect(
            f"nats://127.0.0.1:{closed_port}", connect_timeout=60.0, **{option: str(path)}
        )

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(go())
    assert info.value.reason == "auth"
    assert ("cannot read" if text is None else "not usable") in str(info.value)


def test_error_messages_hide_passwords() -> None:
    assert shown("nats://alice:s3cret@h:4222") == "nats://alice:***@h:4222"
    assert shown(["nats://t0k3n@h:1", "nats://h:2"]) == "nats://***@h:1, nats://h:2"


# -- the command line -------------------------------------------------------------------------

COMMANDS: dict[str, list[str]] = {
    "ls": ["ls"],
    "notify": ["notify", "box", '"hello"'],
    "call": ["call", "box", "Log", '"count"'],
    "top": ["top", "--once", "--interval", "0.01", "--nats"],
}


def command(name: str, server: str, ns: str = "default") -> list[str]:
    """``genevent NAME`` against ``server`` (``top`` takes it as ``--nats``)."""
    args = COMMANDS[name]
    return [*args, server, "--ns", ns] if name == "top" else [*args, "--server", server, "--ns", ns]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_without_a_server_says_to_start_one(name: str, closed_port: int) -> None:
    if name == "top":
        pytest.importorskip("rich")
    url = f"nats://127.0.0.1:{closed_port}"
    done = genevent(*command(name, url), "--connect-timeout", "0.5")
    assert done.returncode == 1, done
    assert one_line(done.stderr).startswith(f"genevent {name}: no NATS server at {url}: start")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_with_a_wrong_password_says_so(
    name: str, secured: Callable[[str], Secured]
) -> None:
    if name == "top":
        pytest.importorskip("rich")
    server = secured("password")
    done = genevent(*command(name, server.url), "--user", "alice", "--password", "nope")
    assert done.returncode == 1, done
    line = one_line(done.stderr)
    assert line.startswith(f"genevent {name}: the NATS server at {server.url} refused")
    assert "nope" not in line


@pytest.fixture
def hosting() -> Iterator[Callable[[Secured, str], BlockingNode]]:
    """``hosting(server, ns)``: a node of this process hosting ``box`` (a Log handler)."""
    nodes: list[BlockingNode] = []

    def host(server: Secured, ns: str) -> BlockingNode:
        node = BlockingNode(server.url, ns=ns, **server.options)
        nodes.append(node)
        node.register_handler(Log)
        node.start_manager("box")
        node.manager("box").add_handler(Log)
        return node

    yield host
    for node in nodes:
        node.close()


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("kind", LOGINS)
def test_every_command_logs_in(
    kind: str,
    name: str,
    secured: Callable[[str], Secured],
    hosting: Callable[[Secured, str], BlockingNode],
    ns: str,
) -> None:
    if name == "top" and not _has_rich():
        pytest.skip("genevent top needs rich (the top extra)")
    server = secured(kind)
    node = hosting(server, ns)
    done = genevent(*command(name, server.url, ns), *server.cli)
    assert done.returncode == 0, done.stderr
    if name == "ls":
        assert done.stdout.split() == ["NAME", "NODE", "box", node.node.id]
    elif name == "notify":
        assert node.manager("box").call(Log, "log") == ["hello"]
    elif name == "call":
        assert done.stdout.strip() == "0"
    else:
        assert f"box@{node.node.id}" in done.stdout


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def test_login_options_default_to_the_nats_environment_variables(
    secured: Callable[[str], Secured], ns: str
) -> None:
    server = secured("password")
    env = {"NATS_URL": server.url, "NATS_USER": "alice", "NATS_PASSWORD": "s3cret"}
    done = genevent("ls", "--ns", ns, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NAME", "NODE"]


# -- Ctrl-C -----------------------------------------------------------------------------------


class Hold(EventHandler[Any, Any, Any]):
    """Answers a call only when the test lets it: ``ARRIVED`` is set once a call is in."""

    ARRIVED = threading.Event()
    RELEASE: asyncio.Event | None = None

    def handle_event(self, event: Any, /) -> None:
        return None

    async def handle_call(self, request: Any, /) -> Any:
        Hold.RELEASE = asyncio.Event()
        Hold.ARRIVED.set()
        await Hold.RELEASE.wait()
        return "released"


@contextlib.contextmanager
def started(*args: str, **env: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m genevent ARGS`` running; killed (our own child, by its pid) if still
    running at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "genevent", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def assert_interrupted(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C (SIGINT) ends ``proc`` with status 130 and no traceback."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_ctrl_c_ends_a_waiting_call_with_130(url: str, ns: str) -> None:
    with BlockingNode(url, ns=ns) as node:
        node.register_handler(Hold)
        node.start_manager("slow")
        node.manager("slow").add_handler(Hold)
        Hold.ARRIVED.clear()
        args = ["call", "slow", "Hold", '"wait"', "--timeout", "600", "--server", url]
        try:
            with started(*args, "--ns", ns) as proc:
                assert Hold.ARRIVED.wait(120), "the call never arrived"
                assert_interrupted(proc)
        finally:
            release = Hold.RELEASE
            if release is not None:
                node._loop.call_soon_threadsafe(release.set)


def test_ctrl_c_ends_genevent_top_over_nats_with_130(url: str, ns: str) -> None:
    pytest.importorskip("rich")
    live = {
        "PYTHONUNBUFFERED": "1",
        "TTY_COMPATIBLE": "1",  # rich draws live frames into the pipe
        "FORCE_COLOR": "1",  # (older rich)
        "TERM": "xterm",
        "COLUMNS": "100",
    }
    with started("top", "--nats", url, "--ns", ns, **live) as proc:
        assert proc.stdout is not None
        assert proc.stdout.read(1), "top drew nothing"  # it is connected and drawing
        assert_interrupted(proc)


@pytest.mark.parametrize("name", ["ls", "notify"])
def test_ctrl_c_ends_a_command_still_connecting_with_130(name: str) -> None:
    """A "server" that accepts the connection and never says a word: the command waits
    for it (a connect timeout of 10 minutes) until Ctrl-C."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"nats://127.0.0.1:{listener.getsockname()[1]}"
        with started(*command(name, url), "--connect-timeout", "600") as proc:
            conn, _ = listener.accept()  # the command is connecting
            with conn:
                assert_interrupted(proc)


# -- the blocking face ----------------------------------------------------------------------


def test_blocking_stats_whereis_and_monitor(url: str, ns: str) -> None:
    with BlockingNode(url, ns=ns) as node:
        node.register_handler(Log)
        node.start_manager("seen")
        box = node.manager("seen")
        box.add_handler(Log)
        box.sync_notify("one")
        stats = box.stats()
        assert stats["events"] == 1
        assert [h["handler"] for h in stats["handlers"]] == ["Log"]
        assert node.whereis("seen") == node.node.id
        assert node.whereis("nobody") is None
        monitor = box.monitor()
        assert not monitor.done()
        box.stop()
        down = monitor.wait(timeout=60)
        assert (down.name, down.reason) == ("seen", "noproc")
        assert node.monitor("nobody").wait(timeout=60).reason == "noproc"
