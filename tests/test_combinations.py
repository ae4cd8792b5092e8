"""Where features meet: a seeded random driver mixes plain and isolated handlers, supervision,
restart policies, bounded isolated mailboxes, a stream, crashes, bad returns, ``Remove()``,
``Swap(...)``, ``KeyboardInterrupt`` (opt-in), notify, sync_notify, call, delete, swap and a
final ``stop()`` or ``stop(drain=False)``, on every runtime and isolation kind; then checks
the invariants every combination must keep (see :func:`check`):

- every caller was answered, with its value or a typed :class:`~genevent.GenEventError`
  (nothing hung, nothing internal escaped, no "internal error" in the ``genevent`` log);
- every handler instance that was initialised was terminated exactly once (or counted in
  ``left_behind``); an instance whose ``init`` failed is never terminated; no callback runs on
  an instance after its ``terminate``;
- a handler that crashed (raised, ``KeyboardInterrupt`` included, or returned a bad value) is
  terminated as crashed (``Crashed``/``BadReturn``), even when the stop drops the backlog; an
  outcome it returned (``Remove()``, ``Swap``) is applied;
- every supervised instance that left for good got exactly one owner notice (none for a
  restart; ``StartFailed`` when its restarts or its swap target could not start);
- the counts add up: ``events_in + refused`` equals the events sent (``events_in`` is what
  ``stats()`` derives from handled + queued + the manager's own drops), isolated mailboxes'
  drops are counted apart (``lane_dropped``, and on each handler), a stream's
  ``handled + dropped + refused == sent``;
- ``stats().crashes`` equals the crashes the handlers recorded themselves.

Each run is small (a few handlers, about 30 operations) and CI runs a fixed set of seeds.
A longer run: ``GENEVENT_COMBO_RUNS=2000 pytest tests/test_combinations.py`` (that many seeds
per runtime and isolation kind); ``GENEVENT_COMBO_SEED=N`` runs seed N alone, and
``GENEVENT_COMBO_VERBOSE=1`` prints the operations of each failing run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import itertools
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from genevent import (
    NO_HANDOFF,
    BadReturn,
    Crashed,
    EventHandler,
    ExitReason,
    GenEventError,
    HandlerExit,
    OwnerExited,
    Remove,
    RemovedItself,
    StartFailed,
    Swap,
    Swapped,
    aio,
    threads,
)
from tests.handlers import WAIT
from tests.runtimes import TaskWorker

# -- what the handlers record ----------------------------------------------------------------


class Boom(Exception):
    """What a crashing handler raises."""


class Refused(Exception):
    """What a failing ``init`` raises."""


@dataclass(eq=False)
class CSpec:
    """A handler's args: its reference, how its ``init`` behaves, and its lineage (restarts
    reuse the same object; every ``init`` attempt is appended to ``attempts``)."""

    run: Run
    ref: Any
    fail: str = "never"  # "never", "always", or "restart": the first init succeeds, no other
    sup: bool | None = None  # None: decided by the swap that made it (``token``)
    origin: str = "add"  # "add", "api_swap" or "return_swap"
    token: Any = None  # the swap's args1 that made it
    attempts: list[tuple[int, bool]] = field(default_factory=list)


class Combo(EventHandler[Any, Any, Any]):
    """Records everything in its run's log; acts on events and calls addressed to its ref."""

    def init(self, spec: CSpec, /, *, handoff: Any = NO_HANDOFF) -> None:
        self.spec = spec
        fail = spec.fail == "always" or (spec.fail == "restart" and bool(spec.attempts))
        self.iid = spec.run.record("init", spec=spec, ok=not fail)
        spec.attempts.append((self.iid, not fail))
        if fail:
            raise Refused(spec.ref)

    def _log(self, kind: str, **kw: Any) -> int:
        return self.spec.run.record(kind, iid=self.iid, **kw)

    def _act(self, action: str, new_ref: Any, token: Any, reply: Any, call: bool) -> Any:
        run = self.spec.run
        if action == "crash":
            self._log("crash", how="raise")
            raise Boom(self.spec.ref)
        if action == "ki":
            self._log("crash", how="ki")
            raise KeyboardInterrupt
        if action == "bad":
            self._log("crash", how="bad")
            return Remove if call else ("bad", self.spec.ref)  # the class: never a reply
        if action == "remove":
            self._log("outcome", how="remove")
            return Remove(reply)
        if action == "swap":
            new = CSpec(run, new_ref, fail=run.rng_fail(), origin="return_swap", token=token)
            run.specs.append(new)
            self._log("outcome", how="swap", token=token)
            return Swap(token, new_ref, new, reply=reply)
        if action == "hold":
            gate = run.gates.get(token)
            if gate is not None and threading.current_thread() is not run.manager_thread:
                self._log("held")
                gate.wait(WAIT)  # only in a lane of its own thread: nobody else waits for it
        return reply

    def handle_event(self, event: Any, /) -> Any:
        self._log("event", seq=event[1])
        if event[0] == "act" and event[3] == self.spec.ref:
            return self._act(event[2], event[4], event[5], None, call=False)
        return None

    def handle_call(self, request: Any, /) -> Any:
        self._log("call")
        action, new_ref, token = request
        return self._act(action, new_ref, token, ("reply", self.iid), call=True)

    def terminate(self, reason: ExitReason, /) -> Any:
        self._log("terminate", reason=reason)
        return ("handoff", self.iid)


class Combo2(Combo):
    """A second class, for swaps between classes."""


REFS: list[Any] = [(Combo, 0), (Combo, 1), (Combo, 2), (Combo2, 0), (Combo2, 1)]


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Answer:
    op: str
    ok: bool
    value: Any


class Run:
    """One seeded run's state: the log (in the order things happened), gates, answers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.ids = itertools.count(1)
        self.gates: dict[Any, threading.Event] = {}
        self.specs: list[CSpec] = []
        self.manager_thread: threading.Thread | None = None
        self.ops: list[str] = []
        self.violations: list[str] = []
        self.sent = 0  # events offered to notify/sync_notify
        self.fail_rng = random.Random(seed * 7919 + 1)

    def record(self, kind: str, **kw: Any) -> int:
        with self.lock:
            n = next(self.ids)
            self.log.append({"kind": kind, "n": n, **kw})
            return kw.get("iid", n)  # type: ignore[no-any-return]

    def rng_fail(self) -> str:
        with self.lock:
            return self.fail_rng.choice(["never"] * 8 + ["always", "restart"])

    def notice(self, notice: HandlerExit) -> None:
        self.record("notice", ref=notice.handler, reason=notice.reason)

    def violation(self, text: str) -> None:
        self.violations.append(text)


class Driver:
    """Blocking access to one manager of one runtime (the requests run in one owner)."""

    runtime = ""

    def __init__(self, run: Run, isolation: Any) -> None:
        self.run = run
        self.isolation = isolation
        self.mgr: Any = None

    def request(self, name: str, *args: Any, **kw: Any) -> Any:
        raise NotImplementedError  # pragma: no cover

    def notify_many(self, events: list[Any]) -> list[BaseException | None]:
        raise NotImplementedError  # pragma: no cover

    def open_stream(self, maxsize: int, overflow: str) -> tuple[Any, list[Any], threading.Event]:
        raise NotImplementedError  # pragma: no cover

    def stats(self) -> Any:
        raise NotImplementedError  # pragma: no cover

    def wait_stopped(self) -> bool:
        raise NotImplementedError  # pragma: no cover

    def interrupts(self) -> int:
        """KeyboardInterrupts that left the runtime (asyncio: out of the event loop)."""
        raise NotImplementedError  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError  # pragma: no cover


class AioDriver(Driver):
    runtime = "aio"

    def __init__(self, run: Run, isolation: Any) -> None:
        super().__init__(run, isolation)
        self.loop = asyncio.new_event_loop()
        self.escaped: list[BaseException] = []
        self.loop_errors: list[dict[str, Any]] = []
        # recorded, not logged: the manager's task ended by a KeyboardInterrupt is reported
        # ("exception was never retrieved") wherever it is collected
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self.thread = threading.Thread(target=self._loop_main, daemon=True)
        self.thread.start()
        self.worker = TaskWorker(self.loop)
        run.manager_thread = self.thread
        self.mgr = self.worker.run(aio.start)

    def _loop_main(self) -> None:
        asyncio.set_event_loop(self.loop)
        while True:  # a KeyboardInterrupt leaves run_forever: note it, and go on
            try:
                self.loop.run_forever()
            except BaseException as exc:
                self.escaped.append(exc)
                continue
            return

    def request(self, name: str, *args: Any, **kw: Any) -> Any:
        method = getattr(self.mgr, name)
        try:
            return self.worker.run(lambda: method(*args, **kw))
        except concurrent.futures.TimeoutError:
            raise Hung(name) from None

    def notify_many(self, events: list[Any]) -> list[BaseException | None]:
        def burst() -> list[BaseException | None]:
            out: list[BaseException | None] = []
            for e in events:  # one go in the loop: the manager finds them all queued
                try:
                    self.mgr.notify(e)
                    out.append(None)
                except BaseException as exc:
                    out.append(exc)
            return out

        try:
            return self.worker.run(burst)  # type: ignore[no-any-return]
        except concurrent.futures.TimeoutError:
            raise Hung("notify") from None

    def open_stream(self, maxsize: int, overflow: str) -> tuple[Any, list[Any], threading.Event]:
        stream = self.worker.run(lambda: self.mgr.stream(maxsize=maxsize, overflow=overflow))
        got: list[Any] = []
        done = threading.Event()

        async def consume() -> None:
            try:
                async for e in stream:
                    got.append(e)
            finally:
                done.set()

        asyncio.run_coroutine_threadsafe(consume(), self.loop)
        return stream, got, done

    def stats(self) -> Any:
        return self.worker.run(self.mgr.stats)

    def wait_stopped(self) -> bool:
        fut = asyncio.run_coroutine_threadsafe(self.mgr.wait_stopped(), self.loop)
        try:
            fut.result(WAIT)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def interrupts(self) -> int:
        for context in self.loop_errors:
            exc = context.get("exception")
            if not isinstance(exc, KeyboardInterrupt):
                self.run.violation(f"event loop error: {context.get('message')} {exc!r}")
        self.loop_errors.clear()
        return sum(isinstance(e, KeyboardInterrupt) for e in self.escaped)

    def close(self) -> None:
        self.worker.end()

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(drain(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class ThreadsDriver(Driver):
    runtime = "threads"

    def __init__(self, run: Run, isolation: Any) -> None:
        super().__init__(run, isolation)
        self.mgr = threads.start()
        run.manager_thread = self.mgr.thread

    def request(self, name: str, *args: Any, **kw: Any) -> Any:
        return getattr(self.mgr, name)(*args, **kw)

    def notify_many(self, events: list[Any]) -> list[BaseException | None]:
        out: list[BaseException | None] = []
        for e in events:
            try:
                self.mgr.notify(e)
                out.append(None)
            except GenEventError as exc:
                out.append(exc)
        return out

    def open_stream(self, maxsize: int, overflow: str) -> tuple[Any, list[Any], threading.Event]:
        stream = self.mgr.stream(maxsize=maxsize, overflow=overflow)
        got: list[Any] = []
        done = threading.Event()

        def consume() -> None:
            try:
                for e in stream:
                    got.append(e)
            finally:
                done.set()

        threading.Thread(target=consume, daemon=True).start()
        return stream, got, done

    def stats(self) -> Any:
        return self.mgr.stats()

    def wait_stopped(self) -> bool:
        try:
            self.mgr.wait_stopped(WAIT)
        except TimeoutError:
            return False
        return not self.mgr.is_running

    def interrupts(self) -> int:
        return 0  # on threads the manager stops as by stop; nothing leaves

    def close(self) -> None:
        if self.mgr.is_running:  # best effort: the run failed already
            with contextlib.suppress(GenEventError):
                self.mgr.stop(drain=False, timeout=WAIT)


class Hung(Exception):
    """A request was not answered within WAIT."""


# -- the driver: random operations -------------------------------------------------------------

TIMEOUT = {"timeout": WAIT}


def drive(d: Driver, run: Run, n_ops: int, ki: bool) -> None:
    """``n_ops`` random operations, then a stop (with or without draining)."""
    rng = run.rng
    seq = itertools.count(1)
    streams: list[tuple[Any, list[Any], threading.Event, int]] = []
    ki_at = rng.randrange(n_ops) if ki else -1
    stopped = False

    def answer(op: str, fn: Callable[[], Any]) -> Answer:
        run.ops.append(op)
        try:
            return Answer(op, True, fn())
        except Hung:
            run.violation(f"{op}: not answered within {WAIT} s")
            raise
        except GenEventError as exc:
            if type(exc).__name__ == "CallTimeout":
                run.violation(f"{op}: not answered within {WAIT} s ({exc})")
                raise Hung(op) from exc
            return Answer(op, False, exc)
        except BaseException as exc:
            run.violation(f"{op}: raised {type(exc).__name__}: {exc!r} (not a GenEventError)")
            return Answer(op, False, exc)

    def req(op: str, name: str, *args: Any, **kw: Any) -> Answer:
        return answer(op, lambda: d.request(name, *args, **kw))

    def event(action: str, target: Any, new_ref: Any = None, token: Any = None) -> Any:
        return ("act", next(seq), action, target, new_ref, token)

    def iso_kw() -> dict[str, Any]:
        if d.isolation is None or rng.random() < 0.35:
            return {}
        kw: dict[str, Any] = {"isolation": d.isolation}
        if rng.random() < 0.5:
            kw["maxsize"] = rng.choice([1, 2, 3])
            kw["overflow"] = rng.choice(["drop_oldest", "drop_newest"])
        return kw

    def notify(events: list[Any], op: str) -> None:
        run.ops.append(op)
        run.sent += len(events)
        for e, exc in zip(events, d.notify_many(events), strict=True):
            if exc is not None and not isinstance(exc, GenEventError):
                run.violation(f"{op}: notify {e!r} raised {exc!r}")

    try:
        for i in range(n_ops):
            if i == ki_at:
                notify([event("ki", rng.choice(REFS))], "notify(ki)")
                continue
            choice = rng.choices(
                ["add", "notify", "sync", "call", "delete", "swap", "burst", "stream", "which"],
                [20, 18, 10, 10, 8, 8, 10, 4, 4],
            )[0]
            if choice == "add":
                ref = rng.choice(REFS)
                sup = rng.random() < 0.5
                fail = rng.choice(["never"] * 6 + ["always", "restart"])
                spec = CSpec(run, ref, fail=fail, sup=sup)
                run.specs.append(spec)
                kw: dict[str, Any] = {**TIMEOUT, **iso_kw()}
                policy = rng.choice(["temporary", "transient", "permanent"])
                if policy != "temporary":
                    kw.update(restart=policy, max_restarts=rng.choice([0, 1, 2]))
                    kw["restart_period"] = 3600.0  # no restart falls out of the window
                name = "add_sup_handler" if sup else "add_handler"
                if sup:
                    kw["on_exit"] = run.notice
                req(f"{name}({ref}, fail={fail}, {kw})", name, ref, spec, **kw)
            elif choice in ("notify", "sync"):
                action = rng.choice(["plain", "crash", "bad", "remove", "swap"])
                e = event(action, rng.choice(REFS), rng.choice(REFS), ("tok", next(seq)))
                if choice == "notify":
                    notify([e], f"notify({e})")
                else:  # a sync_notify refused (ManagerNotRunning) is a request refused,
                    # unless the manager handled its event: a KeyboardInterrupt interrupted it
                    # (it is finished, then the manager stops), or its isolated handlers
                    # dropped it at a stop
                    a = req(f"sync_notify({e})", "sync_notify", e, **TIMEOUT)
                    why = str(a.value)
                    run.sent += (
                        a.ok
                        or type(a.value).__name__ != "ManagerNotRunning"
                        or "isolated handlers caught up with" in why
                        or "interrupted handling sync_notify" in why
                    )
            elif choice == "call":
                ref = rng.choice(REFS)
                request = (
                    rng.choice(["plain", "crash", "bad", "remove", "swap"]),
                    rng.choice(REFS),
                    ("tok", next(seq)),
                )
                req(f"call({ref}, {request})", "call", ref, request, **TIMEOUT)
            elif choice == "delete":
                ref = rng.choice(REFS)
                req(f"delete_handler({ref})", "delete_handler", ref, "del", **TIMEOUT)
            elif choice == "swap":
                old, new = rng.choice(REFS), rng.choice(REFS)
                sup = rng.random() < 0.4
                token = ("tok", next(seq))
                spec = CSpec(
                    run,
                    new,
                    fail=rng.choice(["never"] * 6 + ["always"]),
                    sup=True if sup else None,
                    origin="api_swap",
                    token=token,
                )
                run.specs.append(spec)
                if sup:
                    req(
                        f"swap_sup_handler({old}, {new}, fail={spec.fail})",
                        "swap_sup_handler",
                        old,
                        token,
                        new,
                        spec,
                        on_exit=run.notice,
                        **TIMEOUT,
                    )
                else:
                    req(
                        f"swap_handler({old}, {new}, fail={spec.fail})",
                        "swap_handler",
                        old,
                        token,
                        new,
                        spec,
                        **TIMEOUT,
                    )
            elif choice == "burst":
                target = rng.choice(REFS)
                gate = threading.Event()
                token = ("gate", next(seq))
                run.gates[token] = gate
                n = rng.randrange(3, 12)
                events = [event("hold", target, None, token)]
                events += [("e", next(seq)) for _ in range(n)]
                try:
                    notify(events, f"burst(hold {target}, {n} events)")
                finally:
                    gate.set()
            elif choice == "stream":
                if len(streams) < 2:
                    maxsize = rng.choice([2, 5, 100])
                    overflow = rng.choice(["drop_oldest", "drop_newest"])
                    run.ops.append(f"stream(maxsize={maxsize}, overflow={overflow})")
                    try:
                        s, got, done = d.open_stream(maxsize, overflow)
                    except GenEventError:
                        pass
                    else:
                        streams.append((s, got, done, next(seq)))
            else:
                name = rng.choice(["which_handlers", "get_state"])
                req(f"{name}()", name, **TIMEOUT)
        drain = rng.random() < 0.5
        stats_before = answer("stats()", d.stats)
        req(f"stop(drain={drain})", "stop", drain=drain, **TIMEOUT)
        stopped = True
    except Hung:
        pass
    finally:
        for gate in run.gates.values():
            gate.set()
    if not stopped:
        try:
            d.request("stop", drain=False, **TIMEOUT)
        except BaseException as exc:
            if type(exc).__name__ != "ManagerNotRunning":  # stopped already: answered
                run.violation(f"final stop raised {exc!r}")
        stats_before = Answer("stats()", False, None)
    if not d.wait_stopped():
        run.violation("the manager did not stop")
    for stream, got, done, _ in streams:
        if not done.wait(WAIT):
            run.violation(f"a stream did not end when the manager stopped: {stream!r}")
            continue
        c = stream.counts
        if c.handled + c.dropped + c.refused != c.sent:
            run.violation(f"stream counts do not add up: {c}")
        if c.handled != len(got):
            run.violation(f"stream handed out {len(got)} events but counts {c.handled}")
        seqs = [e[1] for e in got]
        if seqs != sorted(set(seqs)):
            run.violation(f"stream events out of order or repeated: {seqs}")
    check(d, run, stats_before.value if stats_before.ok else None)


# -- the invariants ------------------------------------------------------------------------------


def _sup(spec: CSpec, run: Run, terminated_by_token: dict[Any, dict[str, Any]]) -> bool:
    """Whether ``spec``'s handlers have an owner: explicit, or the owner of the handler whose
    swap made it (the instance terminated with ``Swapped(token, ...)``)."""
    if spec.sup is not None:
        return spec.sup
    if spec.origin == "add":
        return False
    t = terminated_by_token.get(spec.token)
    if t is None:
        spec.sup = False
        return False
    parent = t["spec"]
    spec.sup = _sup(parent, run, terminated_by_token)
    return spec.sup


def check(d: Driver, run: Run, stats_before: Any) -> None:
    log: list[dict[str, Any]] = list(run.log)
    inits = {e["n"]: e for e in log if e["kind"] == "init"}
    by_iid: dict[int, list[dict[str, Any]]] = {}
    for e in log:
        if "iid" in e:
            by_iid.setdefault(e["iid"], []).append(e)
    terminations: dict[int, list[dict[str, Any]]] = {}
    for e in log:
        if e["kind"] == "terminate":
            terminations.setdefault(e["iid"], []).append(e)
            e["spec"] = inits[e["iid"]]["spec"]
    left_behind = d.mgr.left_behind
    not_terminated = [i for i, e in inits.items() if e["ok"] and i not in terminations]
    if len(not_terminated) != left_behind:
        run.violation(
            f"{len(not_terminated)} initialised instances never terminated "
            f"({[(inits[i]['spec'].ref, i) for i in not_terminated]}), left_behind={left_behind}"
        )
    for iid, ts in terminations.items():
        if not inits[iid]["ok"]:
            run.violation(f"instance {iid} whose init failed was terminated: {ts[0]['reason']}")
        if len(ts) > 1:
            run.violation(f"instance {iid} terminated {len(ts)} times: {[t['reason'] for t in ts]}")
    for iid, events in by_iid.items():
        kinds = [e["kind"] for e in events]
        if "terminate" in kinds:
            after = kinds[kinds.index("terminate") + 1 :]
            if after:
                run.violation(f"instance {iid} had callbacks after its terminate: {after}")

    # crashes and returned outcomes are applied as such
    expected_crashes = 0
    for e in log:
        if e["kind"] not in ("crash", "outcome"):
            continue
        tlist = terminations.get(e["iid"])
        reason = tlist[0]["reason"] if tlist else None
        ref = inits[e["iid"]]["spec"].ref
        if e["kind"] == "crash":
            expected_crashes += 1
            want: tuple[type, ...] = (BadReturn,) if e["how"] == "bad" else (Crashed,)
        elif e["how"] == "remove":
            want = (RemovedItself,)
        else:
            want = (Swapped, BadReturn)  # BadReturn: the target id was installed
            if type(reason) is BadReturn:
                expected_crashes += 1
        if tlist is not None and type(reason) not in want:
            run.violation(
                f"{ref} instance {e['iid']} {e['kind']} ({e['how']}) but was terminated with "
                f"{reason!r}"
            )

    # owner notices: exactly one per supervised instance that left for good
    terminated_by_token = {
        t[0]["reason"].args: t[0]
        for t in terminations.values()
        if type(t[0]["reason"]) is Swapped and isinstance(t[0]["reason"].args, tuple)
    }
    expected: dict[Any, list[type]] = {}
    for spec in run.specs:
        if not spec.attempts or not _sup(spec, run, terminated_by_token):
            continue
        attempts = spec.attempts
        if not attempts[0][1]:  # the first init failed
            if spec.origin == "return_swap":
                expected.setdefault(spec.ref, []).append(StartFailed)
            continue
        for k, (iid, ok) in enumerate(attempts):
            if not ok or iid not in terminations:
                continue
            reason = terminations[iid][0]["reason"]
            later = attempts[k + 1 :]
            restarts: list[tuple[int, bool]] = []
            for a in later:
                restarts.append(a)
                if a[1]:
                    break
            if restarts and restarts[-1][1]:
                continue  # restarted: nobody is told
            if type(reason) is OwnerExited:
                continue
            expected.setdefault(spec.ref, []).append(StartFailed if restarts else type(reason))
    got: dict[Any, list[type]] = {}
    for e in log:
        if e["kind"] == "notice":
            got.setdefault(e["ref"], []).append(type(e["reason"]))
    for ref in sorted(set(expected) | set(got), key=repr):
        if sorted(expected.get(ref, []), key=repr) != sorted(got.get(ref, []), key=repr):
            run.violation(
                f"owner notices for {ref}: got {[t.__name__ for t in got.get(ref, [])]}, "
                f"expected {[t.__name__ for t in expected.get(ref, [])]}"
            )

    # KeyboardInterrupt: the manager stops; on asyncio it leaves the event loop
    raised_ki = any(e["kind"] == "crash" and e["how"] == "ki" for e in log)
    if d.interrupts() > int(raised_ki):
        run.violation(f"{d.interrupts()} KeyboardInterrupts left the loop; raised: {raised_ki}")
    if raised_ki and d.runtime == "aio" and d.interrupts() == 0:
        run.violation("a handler raised KeyboardInterrupt but it never left the event loop")

    # the counts
    s = d.stats()
    if s.queued != 0:
        run.violation(f"stopped manager still has {s.queued} messages queued")
    if s.events_in + s.refused != run.sent:
        run.violation(
            f"events_in {s.events_in} + refused {s.refused} != sent {run.sent} "
            f"(events {s.events}, dropped {s.dropped})"
        )
    own_dropped = s.events_in - s.events - s.queued
    if s.dropped < own_dropped:
        run.violation(f"dropped {s.dropped} < the manager's own drops {own_dropped}")
    if stats_before is not None:
        lanes = sum(h.dropped for h in stats_before.handlers)
        if stats_before.lane_dropped < lanes:
            run.violation(f"lane_dropped {stats_before.lane_dropped} < its lanes' drops {lanes}")
    if s.crashes != expected_crashes:
        run.violation(f"stats().crashes == {s.crashes}, the handlers recorded {expected_crashes}")


# -- the tests ---------------------------------------------------------------------------------

VARIANTS: list[tuple[str, Any]] = [
    ("aio", None),
    ("aio", "task"),
    ("aio", "thread"),
    ("threads", None),
    ("threads", True),
]
DRIVERS: dict[str, type[Driver]] = {"aio": AioDriver, "threads": ThreadsDriver}
RUNS = int(os.environ.get("GENEVENT_COMBO_RUNS", "30"))
ONE_SEED = os.environ.get("GENEVENT_COMBO_SEED")
VERBOSE = bool(os.environ.get("GENEVENT_COMBO_VERBOSE"))
N_OPS = 30
MAX_FAILED = 3  # seeds reported per test before it gives up


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def one_run(runtime: str, isolation: Any, seed: int, ki: bool) -> Run:
    """Run seed ``seed`` in a thread of its own; its violations are in ``run.violations``.
    (CPython 3.11 leaves a thread's recursion counter off after a KeyboardInterrupt left a
    task, which breaks a later ``ast.parse`` on that thread: the run, its event loop and the
    collection of what it leaves stay away from the test's thread.)"""
    box: list[Run | BaseException] = []

    def target() -> None:
        try:
            box.append(_one_run(runtime, isolation, seed, ki))
        except BaseException as exc:
            box.append(exc)
        gc.collect()

    thread = threading.Thread(target=target, name=f"combo-{runtime}-{seed}")
    thread.start()
    thread.join()  # every wait inside is bounded
    (result,) = box
    if isinstance(result, BaseException):
        raise result
    return result


def _one_run(runtime: str, isolation: Any, seed: int, ki: bool) -> Run:
    run = Run(seed)
    capture = _Capture()
    logger = logging.getLogger("genevent")
    logger.addHandler(capture)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the records hold the run's frames: they stay in this thread
    d = DRIVERS[runtime](run, isolation)
    try:
        drive(d, run, N_OPS, ki)
    finally:
        d.close()
        logger.removeHandler(capture)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    for e in run.log:  # let go of the frames the run's exceptions hold (collected here)
        reason = e.get("reason")
        if isinstance(reason, Crashed):
            reason.exception.__traceback__ = None
    for r in capture.records:
        text = r.getMessage()
        if "internal error" in text:
            exc = r.exc_info[1] if r.exc_info else None
            run.violation(f"logged: {text} ({exc!r})")
    return run


def _seeds(ki: bool) -> list[int]:
    if ONE_SEED is not None:
        return [int(ONE_SEED)]
    return list(range(RUNS // 2 if ki else RUNS))


def _report(runtime: str, isolation: Any, seed: int, run: Run) -> str:
    lines = [f"{runtime} isolation={isolation!r} seed={seed}:"]
    lines += [f"  - {v}" for v in dict.fromkeys(run.violations)]
    if VERBOSE:
        lines += [f"    {op}" for op in run.ops]
    return "\n".join(lines)


@pytest.mark.timeout(0)
@pytest.mark.parametrize("ki", [False, True], ids=["plain", "keyboard_interrupt"])
@pytest.mark.parametrize(("runtime", "isolation"), VARIANTS)
def test_features_combined(runtime: str, isolation: Any, ki: bool) -> None:
    failed: list[str] = []
    for seed in _seeds(ki):
        run = one_run(runtime, isolation, seed, ki)
        if run.violations:
            failed.append(_report(runtime, isolation, seed, run))
            if len(failed) >= MAX_FAILED:
                break
    assert not failed, "\n".join(failed)
