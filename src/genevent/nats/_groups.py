"""Process groups, as OTP's ``pg``: managers join and leave named groups from any node, and the
membership lives in NATS, in the JetStream KV bucket ``ge_<ns>_groups``::

    key g.<G>.<M> -> {"node": N, "rev": R}   manager M is a member of group G; it was served
                                              by node N under the name claim of revision R

A record counts while its manager still holds that very claim and its node holds a live lease
(the way name records are judged): a member whose manager stopped (its claim freed, or a later
claim of the same name: another manager) or whose node died is no member any more, and its
record is deleted by the next reader that sees it stale.

Group notifies go to each member's own notify subject, so they keep their order with the
producer's other requests to that manager, and NATS permissions grant them per manager as any
notify. The members a notify goes to are cached per group (groups with members only, the
1024 most recently notified) and read again from the bucket when
the bucket changed, a member's manager stopped (its "stopped" notice), a member's node went
silent, or the copy is one lease old.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import nats.js.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from .._tracing import outgoing
from ._denials import bucket_subjects
from ._errors import InvalidName, ManagerNotFound
from ._link import Link, sync
from ._names import Names, open_bucket, replica_counts
from ._protocol import subject
from ._wire import Codec, Request, check_name

__all__ = ("GroupVia", "Groups")

T = TypeVar("T")

_CACHED: Final = 1024
"""How many groups' members are cached (the least recently notified go first); a group
without members is not cached."""


@dataclass(slots=True)
class _Snapshot:
    """The live members of one group as read at one moment."""

    members: list[str]
    nodes: set[str]  # the members' nodes, but this one
    at: float
    generation: int


class Groups:
    """A node's view of the process groups of its namespace."""

    def __init__(self, link: Link, names: Names) -> None:
        self._link = link
        self._names = names
        self._bucket = f"ge_{link.ns}_groups"
        self._kv: KeyValue | None = None
        self._cache: OrderedDict[str, _Snapshot] = OrderedDict()
        self._generation = 0  # bumped on every change that may touch a cached membership
        self._watching = False
        self._watch_lock: asyncio.Lock | None = None
        self._subs: dict[str, Any] = {}  # the watch's subscriptions made so far

    async def _open(self, create: bool) -> KeyValue | None:
        """The bucket (created if ``create``), or None if it does not exist yet. Opened on
        first use: a node that never uses groups needs no permission on it."""
        if self._kv is None:
            js = self._link.nc.jetstream()
            if create:
                replicas = replica_counts(self._link.nc)
                self._kv = await open_bucket(js, self._bucket, None, replicas)
            else:
                with contextlib.suppress(nats.js.errors.BucketNotFoundError):
                    self._kv = await js.key_value(self._bucket)
        return self._kv

    # -- membership ---------------------------------------------------------------------------

    async def join(self, group: str, manager: str) -> None:
        """Make ``manager`` (served by a live node) a member of ``group``."""
        check_name(group, "group name")
        check_name(manager)
        self._link.check_up()
        found = await self._names.lookup(manager)
        if found is None:
            raise ManagerNotFound(manager)
        node, revision = found
        record = json.dumps({"node": node, "rev": revision}).encode()
        await self._guarded(self._put(_key(group, manager), record))
        self._changed()

    async def _put(self, key: str, record: bytes) -> None:
        kv = await self._open(create=True)
        assert kv is not None
        await kv.put(key, record)

    async def _guarded(self, operation: Awaitable[T]) -> T:
        """``operation`` on the bucket, failing at once with :class:`PermissionDenied` if
        the server's permissions refuse it."""
        return await self._link.denials.guarded(bucket_subjects(self._bucket), operation)

    async def leave(self, group: str, manager: str) -> bool:
        """Take ``manager`` out of ``group``; False if it had no record there."""
        check_name(group, "group name")
        check_name(manager)
        self._link.check_up()
        if not await self._guarded(self._delete(_key(group, manager))):
            return False
        self._changed()
        return True

    async def _delete(self, key: str) -> bool:
        kv = await self._open(create=False)
        if kv is None:
            return False
        try:
            await kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # deleted ones included
            return False
        await kv.delete(key)
        return True

    async def members(self, group: str) -> list[str]:
        """The live members of ``group``, sorted."""
        check_name(group, "group name")
        return (await self._scan(f"g.{group}.*")).get(group, {}).get("members", [])

    async def groups(self) -> dict[str, list[str]]:
        """Every group with a live member: ``{group: [members]}``, sorted."""
        return {g: found["members"] for g, found in (await self._scan("g.>")).items()}

    async def _scan(self, pattern: str) -> dict[str, dict[str, list[str]]]:
        """``{group: {"members": [...], "nodes": [...]}}`` for the records under ``pattern``;
        the stale records found are deleted (only if unchanged since they were read)."""
        self._link.check_up()
        kv = await self._open(create=False)
        if kv is None:
            return {}
        js = self._link.nc.jetstream()
        prefix = f"$KV.{self._bucket}."
        info = await js.stream_info(f"KV_{self._bucket}", subjects_filter=prefix + pattern)
        keys = [k for s in sorted(info.state.subjects or {}) if _parts(k := s[len(prefix) :])]
        entries = await asyncio.gather(*(_get(kv, key) for key in keys))
        records = [(key, e) for key, e in zip(keys, entries, strict=True) if e is not None]
        # the live nodes and the claims are read after the records (so a record written after
        # its claim and its node's lease is never judged by older ones), all at once
        managers = sorted({key.split(".")[2] for key, _ in records})
        live, claimed = await asyncio.gather(
            self._names.nodes(),
            asyncio.gather(*(self._names.claim_record(m) for m in managers)),
        )
        claims = dict(zip(managers, claimed, strict=True))
        out: dict[str, dict[str, list[str]]] = {}
        for key, (value, revision) in records:
            _, group, manager = key.split(".")
            member = _record(value)
            if member is not None and member[0] in live and claims.get(manager) == member:
                found = out.setdefault(group, {"members": [], "nodes": []})
                found["members"].append(manager)
                found["nodes"].append(member[0])
                continue
            self._forget(key, revision)
        return out

    def _forget(self, key: str, revision: int) -> None:
        """Delete the stale record ``key`` unless it changed since ``revision``: published
        without waiting for JetStream's answer (a node the server does not let write the
        bucket only logs the refusal; another reader cleans it up)."""
        headers = {"KV-Operation": "DEL", "Nats-Expected-Last-Subject-Sequence": str(revision)}
        self._link.post(f"$KV.{self._bucket}.{key}", "", b"", headers)

    # -- the members a notify goes to ---------------------------------------------------------

    async def recipients(self, group: str) -> list[str]:
        """The members of ``group`` for a notify: the cached copy while nothing says it
        changed, else read again."""
        snap = self._cache.get(group)
        if snap is not None and self._fresh(snap):
            self._cache.move_to_end(group)
            return snap.members
        self._link.check_up()
        await self._watch()
        generation = self._generation
        found = (await self._scan(f"g.{group}.*")).get(group, {"members": [], "nodes": []})
        now = time.monotonic()
        link = self._link
        nodes = set(found["nodes"])
        for node in nodes - {link.id}:  # the detector declares it down if it stays silent
            link.seen.setdefault(node, (now, link.lease))
        snap = _Snapshot(found["members"], nodes - {link.id}, now, generation)
        if not snap.members:  # nothing to keep: no entry for every empty group ever notified
            self._cache.pop(group, None)
            return snap.members
        self._cache[group] = snap
        self._cache.move_to_end(group)
        while len(self._cache) > _CACHED:
            self._cache.popitem(last=False)
        return snap.members

    def _fresh(self, snap: _Snapshot) -> bool:
        link = self._link
        if snap.generation != self._generation or time.monotonic() - snap.at > link.lease:
            return False
        # the other nodes: none declared down since
        return snap.nodes.issubset(link.seen)

    def _changed(self) -> None:
        self._generation += 1

    async def _watch(self) -> None:
        """Hear the bucket's changes and the "stopped" notices (once)."""
        if self._watching:
            return
        if self._watch_lock is None:
            self._watch_lock = asyncio.Lock()
        async with self._watch_lock:
            if self._watching:
                return
            nc = self._link.nc
            wanted = {
                f"$KV.{self._bucket}.>": self._on_change,
                f"{self._link.pfx}.down.*": self._on_stopped,
            }
            for subj, cb in wanted.items():  # one that failed is tried again next time
                if subj not in self._subs:
                    self._subs[subj] = await nc.subscribe(subj, cb=cb)
            self._watching = True  # only once both are made
            with contextlib.suppress(
                Exception
            ):  # the connection dropped: they are resent on its return
                await sync(nc)

    async def _on_change(self, msg: Msg) -> None:
        self._changed()

    async def _on_stopped(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        if any(name in snap.members for snap in self._cache.values()):
            self._changed()

    def publish(self, members: list[str], env: Request) -> None:
        """Send the notify ``env`` to each of ``members`` (encoded once)."""
        link = self._link
        link.check_up()
        payload = link.encode(env)
        headers = outgoing() if link.traced else None
        for name in members:
            link.post(subject(link.pfx, name, "notify"), None, payload, headers)


class GroupVia:
    """What a :class:`~genevent.nats.RemoteGroup` needs of its node (a ``GroupLink``)."""

    __slots__ = ("_groups", "_link")

    def __init__(self, link: Link, groups: Groups) -> None:
        self._link = link
        self._groups = groups

    @property
    def id(self) -> str:
        return self._link.id

    @property
    def codec(self) -> Codec:
        return self._link.codec

    async def members(self, group: str, fresh: bool) -> list[str]:
        if fresh:
            return await self._groups.members(group)
        return await self._groups.recipients(group)

    def publish(self, members: list[str], env: Request) -> None:
        self._groups.publish(members, env)

    def publish_many(self, name: str, envs: list[Request]) -> None:
        self._link.publish_many(name, envs)

    async def request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        return await self._link.request(name, env, what, timeout)


def _key(group: str, manager: str) -> str:
    return f"g.{group}.{manager}"


def _parts(key: str) -> bool:
    """Whether ``key`` is a member's key, ``g.<group>.<manager>`` (anything else written in
    the bucket is no member, and left alone)."""
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "g":
        return False
    try:
        check_name(parts[1], "group name")
        check_name(parts[2])
    except InvalidName:
        return False
    return True


def _record(value: bytes | None) -> tuple[str, int] | None:
    try:
        data = json.loads(value or b"")
        node, revision = data["node"], data["rev"]
    except (ValueError, KeyError, TypeError):
        return None
    if type(node) is not str or type(revision) is not int:
        return None
    return node, revision


async def _get(kv: KeyValue, key: str) -> tuple[bytes | None, int] | None:
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:  # deleted or expired meanwhile
        return None
    return entry.value, int(entry.revision or 0)
