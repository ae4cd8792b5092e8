"""Cluster-wide manager names, in JetStream KV buckets: ``ge_<ns>_names`` maps ``mgr.<M>`` to
``{"node": N}`` (claimed atomically by create), and ``ge_<ns>_nodes`` holds each node's lease
record under ``node.<N>``.

A node is alive while its record is younger than the lease the record names, both times read
on the server's clock (the record's timestamp, and the time the server reports with the
bucket's stream info): each node's lease is its own, whoever created the bucket. The bucket's
own TTL only clears away the records of nodes that died without leaving; a node whose lease is
longer than that TTL lengthens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import Iterable
from typing import Any, Final

import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from .._errors import NameTaken
from ._denials import bucket_subjects, stream_subjects
from ._link import Link, lease_in
from ._wire import check_name

__all__ = ("Names", "open_bucket", "replica_counts", "too_few_servers")

log = logging.getLogger("genevent.nats")

_RECORDS_KEPT: Final = 300.0
"""How long the lease bucket keeps a record at least (seconds): the records of nodes that died
without leaving go after that; a live node renews its own long before."""

_KEPT_PER_LEASE: Final = 4
"""A node with a long lease needs the bucket to keep records this many of its leases."""


class Names:
    """A node's view of the names and node leases of its namespace."""

    def __init__(self, link: Link, ns: str) -> None:
        self._link = link
        self._ns = ns
        self._names: KeyValue | None = None
        self._nodes: KeyValue | None = None

    @property
    def leases(self) -> KeyValue:
        """The bucket of node leases."""
        assert self._nodes is not None
        return self._nodes

    @property
    def is_open(self) -> bool:
        """Whether the buckets are open."""
        return self._names is not None

    async def open(self, lease: float) -> None:
        """Open (or create) both buckets; a lease expires after ``lease`` seconds."""
        js = self._link.nc.jetstream()
        kept = max(_RECORDS_KEPT, _KEPT_PER_LEASE * lease)
        names, nodes = f"ge_{self._ns}_names", f"ge_{self._ns}_nodes"
        guarded = self._link.denials.guarded
        replicas = replica_counts(self._link.nc)
        self._names = await guarded(bucket_subjects(names), open_bucket(js, names, None, replicas))
        self._nodes = await guarded(bucket_subjects(nodes), open_bucket(js, nodes, kept, replicas))
        await _keep_records(js, f"KV_{nodes}", _KEPT_PER_LEASE * lease, kept, self._link)

    async def claim(self, name: str) -> int:
        """Claim ``name`` for this node; return the claim's revision. Raise
        :class:`~genevent.NameTaken` if a live node holds it, :class:`PermissionDenied` at
        once if the server's permissions refuse this node the names bucket."""
        subjects = bucket_subjects(f"ge_{self._ns}_names")
        return await self._link.denials.guarded(subjects, self._claim(name))

    async def _claim(self, name: str) -> int:
        assert self._names is not None
        key = f"mgr.{name}"
        node_id = self._link.id
        value = json.dumps({"node": node_id}).encode()
        try:
            return await self._names.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._names.get(key)
        except nats.js.errors.KeyNotFoundError:  # freed meanwhile: one more try
            try:
                return await self._names.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise NameTaken(name, "another node") from None
        holder = _holder(entry.value)
        if holder != node_id and await self.alive(holder):
            raise NameTaken(name, holder)
        try:  # the holder's lease expired: take the name over, atomically
            return await self._names.update(key, value, last=entry.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise NameTaken(name, "another node") from None

    async def release(self, name: str, revision: int) -> None:
        """Free the claim of ``name`` made at ``revision`` (not a newer one)."""
        assert self._names is not None
        delete = self._names.delete(f"mgr.{name}", last=revision)
        await self._link.denials.guarded(bucket_subjects(f"ge_{self._ns}_names"), delete)

    async def holder(self, name: str) -> str | None:
        """The node the names bucket says holds ``name`` (live or not), or None."""
        assert self._names is not None
        try:
            entry = await self._names.get(f"mgr.{name}")
        except nats.js.errors.KeyNotFoundError:
            return None
        return _holder(entry.value)

    async def claim_record(self, name: str) -> tuple[str, int] | None:
        """The node the names bucket says holds ``name`` and the revision of its claim (live
        or not), or None."""
        assert self._names is not None
        try:
            entry = await self._names.get(f"mgr.{name}")
        except nats.js.errors.KeyNotFoundError:
            return None
        holder = _holder(entry.value)
        return None if holder is None else (holder, int(entry.revision or 0))

    async def alive(self, node: str | None) -> bool:
        """Whether ``node`` holds a live lease."""
        if node is None:
            return False
        now, _ = await self._lease_info(with_subjects=False)
        return await self._is_live(f"$KV.ge_{self._ns}_nodes.node.{node}", now)

    async def _lease_info(self, with_subjects: bool) -> tuple[datetime.datetime, list[str]]:
        """The server's time now, and the subjects of the lease records (if asked)."""
        bucket = f"ge_{self._ns}_nodes"
        request: dict[str, Any] = {}
        if with_subjects:
            request["subjects_filter"] = f"$KV.{bucket}.>"
        msg = await self._link.nc.request(
            f"$JS.API.STREAM.INFO.KV_{bucket}", json.dumps(request).encode(), timeout=5.0
        )
        info = json.loads(msg.data)
        if "error" in info:
            raise nats.js.errors.APIError.from_error(info["error"])
        now = datetime.datetime.fromisoformat(info["ts"])
        return now, sorted(info.get("state", {}).get("subjects") or {})

    async def _is_live(self, subject: str, now: datetime.datetime) -> bool:
        """Whether the lease record at ``subject`` is younger than the lease it names."""
        js = self._link.nc.jetstream()
        try:
            msg = await js.get_msg(f"KV_ge_{self._ns}_nodes", subject=subject, direct=False)
        except nats.js.errors.NotFoundError:
            return False
        if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE") or msg.time is None:
            return False  # it left
        age = (now - msg.time).total_seconds()
        return age <= lease_in(msg.data, self._link.lease)

    async def managers(self) -> dict[str, str]:
        """``{name: node id}`` for the names whose node holds a live lease."""
        assert self._names is not None
        assert self._nodes is not None
        self._link.check_up()
        js = self._link.nc.jetstream()
        names = await _entries(js, self._names, f"ge_{self._ns}_names")
        live = set(await self.nodes())
        out = {}
        for key, value in names.items():
            holder = _holder(value)
            if key.startswith("mgr.") and holder is not None and holder in live:
                out[key[4:]] = holder
        return dict(sorted(out.items()))

    async def nodes(self) -> list[str]:
        """The ids of the nodes holding a live lease."""
        assert self._nodes is not None
        self._link.check_up()
        now, subjects = await self._lease_info(with_subjects=True)
        prefix = f"$KV.ge_{self._ns}_nodes.node."
        subjects = [subject for subject in subjects if subject.startswith(prefix)]
        live = await asyncio.gather(*(self._is_live(subject, now) for subject in subjects))
        return [subject[len(prefix) :] for subject, ok in zip(subjects, live, strict=True) if ok]

    async def whereis(self, name: str) -> str | None:
        """The id of the node serving ``name``, or None."""
        found = await self.lookup(name)
        return None if found is None else found[0]

    async def lookup(self, name: str) -> tuple[str, int] | None:
        """The node serving ``name`` and the revision of its claim, or None (a name whose
        node holds no live lease is free)."""
        assert self._names is not None
        check_name(name)
        self._link.check_up()
        try:
            entry = await self._names.get(f"mgr.{name}")
        except nats.js.errors.KeyNotFoundError:
            return None
        holder = _holder(entry.value)
        if holder is None or not await self.alive(holder):
            return None
        self._link.learn(name, holder)
        return holder, int(entry.revision or 0)


_INSUFFICIENT_RESOURCES: Final = 10023
"""JetStream's error code for a stream asking more replicas than the cluster has servers."""


def replica_counts(nc: Any) -> tuple[int, ...]:
    """The replica counts to try, in turn, for a stream or bucket this node creates: three,
    then fewer, when the server is part of a cluster (losing one server then loses nothing
    stored), else one."""
    clustered = bool((getattr(nc, "_server_info", None) or {}).get("cluster"))
    return (3, 2, 1) if clustered else (1,)


def too_few_servers(exc: Exception) -> bool:
    """Whether JetStream refused a stream for asking more replicas than it has servers."""
    return getattr(exc, "err_code", None) == _INSUFFICIENT_RESOURCES


async def open_bucket(
    js: JetStreamContext, name: str, ttl: float | None, replicas: Iterable[int]
) -> KeyValue:
    """The KV bucket ``name``, as it is if it exists; else created (keeping one value a key)
    with the first of ``replicas`` the cluster takes."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        pass
    for count in replicas:
        config = KeyValueConfig(
            bucket=name, history=1, ttl=ttl, storage=StorageType.FILE, replicas=count
        )
        try:
            return await js.create_key_value(config)
        except nats.js.errors.APIError as exc:
            if not too_few_servers(exc):
                break  # created by another node meanwhile
    return await js.key_value(name)


async def _keep_records(js: Any, stream: str, needed: float, kept: float, link: Link) -> None:
    """Make the lease bucket keep records for ``needed`` seconds at least (``kept`` if it kept
    them for less): a bucket made by a node with a shorter lease would drop this node's record
    between two renewals."""
    info = await js.stream_info(stream)
    max_age = info.config.max_age or 0.0
    if not 0 < max_age < needed:
        return
    info.config.max_age = kept
    try:
        await link.denials.guarded(stream_subjects(stream), js.update_stream(info.config))
    except Exception as exc:  # refused by the server (an error), or by its permissions
        log.warning(
            "genevent.nats: the lease bucket %s keeps records %.1f s, and this node's lease "
            "needs %.1f s; it could not be changed (%s): other nodes may see this node down",
            stream,
            max_age,
            needed,
            exc,
        )


def _holder(value: bytes | None) -> str | None:
    try:
        node = json.loads(value or b"")["node"]
    except (ValueError, KeyError, TypeError):
        return None
    return node if isinstance(node, str) else None


async def _entries(js: Any, kv: KeyValue, bucket: str) -> dict[str, bytes]:
    """The live keys of a bucket and their values.

    The subjects come from the stream's info (one request, exact), not from ``kv.keys()``,
    whose watcher can report "no keys" when its messages are still on the way."""
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>")
    prefix = f"$KV.{bucket}."
    out: dict[str, bytes] = {}
    for subject in sorted(info.state.subjects or {}):
        key = subject[len(prefix) :]
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):  # deleted or expired
            entry = await kv.get(key)
            out[key] = entry.value or b""
    return out
