"""Durable notifies on a three-server JetStream cluster (a stream with three replicas): the node
serving the manager is SIGKILLed a third of the way through, one nats-server two thirds of the
way through, and every acknowledged event is still handled (missing = 0; duplicates counted).

One run by default; ``GENEVENT_DURABLE_RUNS=5`` runs it five times in one go."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import KeyValueConfig, StreamConfig

from genevent.nats import NatsServer, TransportDown, connect
from tests.distributed.test_durable import WAIT, DurableProcess, _true, handled
from tests.distributed.test_nodes import until

RUNS = int(os.environ.get("GENEVENT_DURABLE_RUNS", "1"))
N = int(os.environ.get("GENEVENT_DURABLE_EVENTS", "300"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[NatsServer]]:
    """Three nats-servers with JetStream, routed to each other on loopback."""
    ports = [_free_port() for _ in range(3)]  # a small race with other processes: rare
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in ports)
    servers = []
    try:
        for i, port in enumerate(ports):
            args: tuple[str, ...] = ("--server_name", f"n{i}", "--cluster_name", "gentest")
            args += ("--cluster", f"nats://127.0.0.1:{port}", "--routes", routes)
            servers.append(NatsServer(extra_args=args).start())
        yield servers
    finally:
        for server in servers:
            server.stop(signal.SIGKILL)  # a test cluster: no need to wait for a clean stop
            server.cleanup()


async def _ready(urls: list[str], ns: str) -> None:
    """Wait until the cluster takes a three-replica stream (the nodes then make the
    namespace's buckets three-replica too)."""
    nc = await nats.connect(urls, error_cb=_quiet)
    try:
        js = nc.jetstream()
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    await js.add_stream(
                        StreamConfig(name=f"probe_{ns}", subjects=[f"probe.{ns}"], num_replicas=3)
                    )
                    break
                except (nats.js.errors.APIError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.1)  # no meta leader yet: ask again
        await js.delete_stream(f"probe_{ns}")
    finally:
        await nc.close()


async def _quiet(exc: Exception) -> None:
    pass


async def _one_run(
    servers: list[NatsServer], ns: str, tmp: Path, procs: list[DurableProcess]
) -> tuple[int, int, int]:
    urls = [s.url for s in servers]
    await _ready(urls, ns)
    outs = [tmp / "a.txt", tmp / "b.txt"]
    joined = ",".join(urls)
    a = DurableProcess(joined, ns, "a", outs[0], "2")
    procs.append(a)
    await a.serving()
    b = DurableProcess(joined, ns, "b", outs[1], "2")
    procs.append(b)
    retries = 0
    producer = await connect(urls, ns=ns, node_id="producer", lease=1.0, error_cb=_quiet)
    try:
        m = producer.manager("m")
        js = producer.nats.jetstream()
        for stream in (f"GE_{ns}", f"KV_ge_{ns}_names", f"KV_ge_{ns}_nodes"):
            assert (await js.stream_info(stream)).config.num_replicas == 3, stream
        for i in range(N):
            if i == N // 3:
                await until(lambda: _true(bool(handled(outs[:1]))), "a handles events")
                a.kill()
            if i == 2 * N // 3:
                servers[2].stop(signal.SIGKILL)
            while True:
                try:
                    await m.notify_durable(f"e{i}", msg_id=f"{ns}-{i}", timeout=2.0)
                    break
                except TransportDown:  # not acknowledged (the leader moved): same id again
                    retries += 1
                    if retries > 1000:
                        raise
        await b.serving()
        expected = {f"e{i}" for i in range(N)}
        await until(lambda: _true(expected <= set(handled(outs))), "every event handled")
        stored = (await producer.nats.jetstream().stream_info(f"GE_{ns}")).state.messages
    finally:
        await producer.close()
    seen = handled(outs)
    assert not expected - set(seen), "missing events"
    assert stored == N  # retries were deduplicated
    return len(expected - set(seen)), sum(seen.values()) - len(seen), retries


async def test_a_clustered_namespace_gets_three_replica_buckets(
    cluster: list[NatsServer],
) -> None:
    """Names, leases and groups buckets are made with three replicas, as the stream is; a
    bucket that exists is used as it is."""
    urls = [s.url for s in cluster]
    ns = f"k{os.getpid()}x{time.monotonic_ns() % 100000}"
    await _ready(urls, ns)
    nc = await nats.connect(urls, error_cb=_quiet)
    try:  # the groups bucket made beforehand, with one replica
        await nc.jetstream().create_key_value(KeyValueConfig(bucket=f"ge_{ns}_groups", history=1))
    finally:
        await nc.close()
    async with await connect(urls, ns=ns, node_id="a", error_cb=_quiet) as a:
        await a.start_manager("m", durable=True)
        await a.join("g", "m")
        js = a.nats.jetstream()
        replicas = {
            stream: (await js.stream_info(stream)).config.num_replicas
            for stream in (f"GE_{ns}", f"KV_ge_{ns}_names", f"KV_ge_{ns}_nodes")
        }
        assert replicas == dict.fromkeys(replicas, 3)
        assert (await js.stream_info(f"KV_ge_{ns}_groups")).config.num_replicas == 1
        assert await a.members("g") == ["m"]


@pytest.mark.timeout(60 + 60 * RUNS)
async def test_cluster_loses_no_acknowledged_event(
    cluster: list[NatsServer], tmp_path: Path
) -> None:
    for run in range(RUNS):
        if cluster[2].proc is None:
            cluster[2].start()  # back from the previous run's kill
        ns = f"c{os.getpid()}r{run}x{time.monotonic_ns() % 100000}"
        procs: list[DurableProcess] = []
        tmp = tmp_path / f"run{run}"
        tmp.mkdir()
        started = time.monotonic()
        try:
            missing, duplicates, retries = await _one_run(cluster, ns, tmp, procs)
        finally:
            for p in procs:
                p.stop()
        print(
            f"cluster run {run + 1}/{RUNS}: N={N} missing={missing} duplicates={duplicates} "
            f"publish retries={retries} wall={time.monotonic() - started:.1f}s"
        )
