"""A state machine over the core alone: random requests and outcomes, the invariants of
``_manager.py`` checked after every step."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from genevent._core import (
    ManagerCore,
    Raised,
    Remove,
    Returned,
    StartFailed,
    Swap,
    restart_spec,
)
from tests.core.driver import FakeClock, FakeLane, G, H, Run, check_table, drive, swap_to

REFS: list[Any] = [H, G, (H, 1), (H, 2), (G, 1)]
OWNERS: list[Any] = [None, "a", "b"]
refs = st.sampled_from(REFS)
owners = st.sampled_from(OWNERS)
policies = st.sampled_from(["temporary", "transient", "permanent"])

# what a callback may produce (handle_event, handle_info, handle_call alike)
outcomes = st.one_of(
    st.just(Returned(None)),
    st.builds(Returned, st.integers(0, 3)),
    st.just(Raised(ValueError("boom"))),
    st.builds(lambda r: Returned(Remove(r)), st.integers(0, 3)),
    st.just(Returned(Remove)),
    st.just(Returned(Swap)),
    st.builds(lambda ref: Returned(Swap("a1", ref, "a2", reply="swapped")), refs),
    st.just(Returned(swap_to("not a handler"))),
)


rarely = st.integers(0, 3).map(lambda n: n == 0)  # True one time in four


def label_of(ref: Any, callback: str) -> str:
    cls = ref if isinstance(ref, type) else ref[0]
    return f"{cls.__name__}.{callback}"


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.core = ManagerCore("m", clock=self.clock)
        #: instances ever installed (kept alive so that ids stay unique)
        self.installed: dict[int, Any] = {}
        #: how many times each instance's terminate ran
        self.terminates: Counter[int] = Counter()
        #: the owners the runtime watches, as the Watch/Unwatch effects say
        self.watched: set[Any] = set()
        self.notices: list[Any] = []
        self.before: list[Any] = []

    # -- the driver, with the checks that hold for every procedure ----------------------------

    def run(self, proc: Any, answers: dict[str, Any] | None = None) -> Run:
        before = {id(e.instance) for e in self.core.entries}
        supervised = {id(e.instance): e for e in self.core.entries if e.on_exit is not None}
        isolated_before = self.core.isolated
        self.before = self.core.which_handlers()
        run = drive(self.core, proc, answers)  # answers once; table consistent throughout
        for inst in run.terminated():
            self.terminates[id(inst)] += 1
        for kind, *rest in run.effects:
            if kind == "watch":
                assert rest[0] not in self.watched
                self.watched.add(rest[0])
            elif kind == "unwatch":
                assert rest[0] in self.watched
                self.watched.discard(rest[0])
            elif kind == "settle":
                assert isolated_before > 0
        self.check_notices(run)
        after = {id(e.instance) for e in self.core.entries}
        for entry in self.core.entries:
            self.installed.setdefault(id(entry.instance), entry.instance)
        for inst in run.created:
            if id(inst) not in after and id(inst) not in before:
                # its init failed, or it never got in: no terminate
                assert self.terminates[id(inst)] == 0, inst
        for ident in before - after:
            assert self.terminates[ident] == 1  # left: exactly one terminate
        # exactly one notice for each supervised handler that left for good, none for the
        # others (a restart, an owner's end); StartFailed notices are for a start that failed
        restarted = {e[2] for e in run.effects if e[:2] == ("report", "restarted")}
        told = Counter(n.handler for n in run.notices())
        plain = Counter(n.handler for n in run.notices() if not isinstance(n.reason, StartFailed))
        expected: Counter[Any] = Counter()
        if proc.__name__ != "owner_down":
            for ident in before - after:
                left = supervised.get(ident)
                if left is None or left.ref in restarted:
                    continue
                if self.core.retrying.get(left.ref, (None,))[0] is not left:
                    expected[left.ref] += 1  # not waiting for a restart either
        for ref, n in expected.items():
            assert told[ref] >= n, (ref, run.effects)  # told, maybe why its restart failed
        assert all(plain[ref] <= expected[ref] for ref in plain), run.effects
        return run

    def check_notices(self, run: Run) -> None:
        """A notice for a handler that left in this run comes after its terminate."""
        seen_terminates = 0
        for effect in run.effects:
            if effect[0] == "call" and effect[1].endswith(".terminate"):
                seen_terminates += 1
            elif effect[0] == "tell":
                notice = effect[1]
                self.notices.append(notice)
                if not isinstance(notice.reason, StartFailed):
                    assert seen_terminates > 0
        if "restarted" in run.reports():
            restarted = [e[2] for e in run.effects if e[:2] == ("report", "restarted")]
            assert not any(n.handler in restarted for n in run.notices())

    def pick(self, data: st.DataObject) -> Any:
        """Mostly an installed reference (else any)."""
        installed = self.core.which_handlers()
        if installed and data.draw(st.integers(0, 4)) > 0:
            return data.draw(st.sampled_from(installed))
        return data.draw(refs)

    # -- rules -------------------------------------------------------------------------------

    @precondition(lambda self: not self.core.stopped)
    @rule(
        ref=refs,
        owner=owners,
        policy=policies,
        isolated=rarely,
        init_fails=rarely,
    )
    def add(self, ref: Any, owner: Any, policy: str, isolated: bool, init_fails: bool) -> None:
        spec = restart_spec(policy, "args", 2, 1.0)
        lane = FakeLane() if isolated else None
        on_exit = self.notices.append if owner is not None else None
        answers = {label_of(ref, "init"): Raised(ValueError("no"))} if init_fails else None
        if ref in self.core.retrying:
            return  # see test_a_second_waiting_restart_of_an_id_keeps_the_first_owner
        exists = self.core.find(ref) is not None
        run = self.run(self.core.add_handler(ref, "args", owner, on_exit, spec, lane), answers)
        if exists or init_fails:
            assert run.error is not None
            assert self.core.which_handlers() == self.before
        else:
            assert run.error is None
            assert self.core.which_handlers() == [ref, *self.before]

    @precondition(lambda self: not self.core.stopped)
    @rule(ref=refs, owner=owners, policy=policies)
    def add_more(self, ref: Any, owner: Any, policy: str) -> None:
        self.add(ref, owner, policy, False, False)

    @precondition(lambda self: not self.core.stopped)
    @rule(data=st.data(), terminate_raises=rarely)
    def delete(self, data: st.DataObject, terminate_raises: bool) -> None:
        ref = self.pick(data)
        answers = {label_of(ref, "terminate"): Raised(KeyError())} if terminate_raises else None
        present = self.core.find(ref) is not None
        run = self.run(self.core.delete_handler(ref, "bye"), answers)
        assert self.core.which_handlers() == [r for r in self.before if r != ref]
        assert (run.error is None) == (present and not terminate_raises)

    @precondition(lambda self: not self.core.stopped)
    @rule(data=st.data(), new=refs, sup=st.booleans(), owner=owners, init_fails=rarely)
    def swap(self, data: st.DataObject, new: Any, sup: bool, owner: Any, init_fails: bool) -> None:
        old = self.pick(data)
        answers = {label_of(new, "init"): Raised(ValueError("no"))} if init_fails else None
        old_entry = self.core.find(old)
        refused = new != old and self.core.find(new) is not None
        on_exit = self.notices.append if owner is not None else None
        run = self.run(
            self.core.swap_handler(old, 1, new, 2, sup=sup, owner=owner, on_exit=on_exit),
            answers,
        )
        rest = [r for r in self.before if r != old]
        if refused:
            assert run.effects == []
            assert self.core.which_handlers() == self.before
        elif init_fails:
            assert run.error is not None
            assert self.core.which_handlers() == rest
        else:
            assert run.error is None
            assert self.core.which_handlers() == [new, *rest]  # the new one first
            entry = self.core.find(new)
            assert entry is not None
            expected = owner if sup else (old_entry.owner if old_entry else None)
            assert entry.owner == expected
            if old_entry is not None:
                handoff = entry.instance.handoff
                assert handoff[0] == "bye"  # old terminate's result

    @precondition(lambda self: not self.core.stopped)
    @rule(data=st.data(), out=outcomes, init_fails=rarely)
    def call(self, data: st.DataObject, out: Any, init_fails: bool) -> None:
        ref = self.pick(data)
        answers: dict[str, Any] = {label_of(ref, "handle_call"): out}
        if init_fails:
            answers["H.init"] = answers["G.init"] = Raised(ValueError("no"))
        entry = self.core.find(ref)
        run = self.run(self.core.call(ref, "q"), answers)
        if entry is None:
            assert run.effects == []
            return
        value = out.value if isinstance(out, Returned) else None
        if not isinstance(value, Swap) or not isinstance(value.handler, type | tuple):
            return
        if value.handler == ref or value.handler not in self.before:
            # a swap it asked for: its place is kept (or lost if the new init failed)
            after = self.core.which_handlers()
            if value.handler in after:
                assert after.index(value.handler) == self.before.index(ref)
            assert run.reply == "swapped"

    @precondition(lambda self: not self.core.stopped)
    @rule(data=st.data(), out=outcomes, init_fails=st.booleans())
    def event_result(self, data: st.DataObject, out: Any, init_fails: bool) -> None:
        ref = self.pick(data)
        entry = self.core.find(ref)
        if entry is None:
            return
        answers = {label_of(ref, "init"): Raised(ValueError("no"))} if init_fails else None
        isolated = self.core.isolated
        run = self.run(self.core.event_result(entry, out, "ev"), answers)
        changes = not (isinstance(out, Returned) and out.value is None)
        assert ("settle" in run.kinds()) == (changes and isolated > 0 and entry.lane is None)
        assert run.reply is None
        assert run.error is None

    @precondition(lambda self: not self.core.stopped)
    @rule(cls=st.sampled_from(["H", "G"]), out=outcomes, info=st.booleans())
    def notify(self, cls: str, out: Any, info: bool) -> None:
        callback = "handle_info" if info else "handle_event"
        proc = self.core.info("i") if info else self.core.notify("ev")
        run = self.run(proc, {f"{cls}.{callback}": out})
        assert run.error is None

    @precondition(lambda self: not self.core.stopped)
    @rule(owner=st.sampled_from(OWNERS[1:]))
    def owner_down(self, owner: Any) -> None:
        owned = [r for r in self.core.which_handlers() if self.core.by_ref[r].owner == owner]
        run = self.run(self.core.owner_down(owner, None))
        assert run.notices() == []
        assert run.reports() == []
        assert self.core.which_handlers() == [r for r in self.before if r not in owned]
        assert owner not in self.core.owners()
        assert all(e.owner != owner for e, _ in self.core.retrying.values())

    @precondition(lambda self: not self.core.stopped)
    @rule()
    def get_state(self) -> None:
        run = self.run(self.core.get_state())
        assert [ref for ref, _ in run.reply] == self.before

    @rule(seconds=st.sampled_from([0.05, 0.1, 0.3, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: not self.core.stopped)
    @rule(data=st.data(), init_fails=st.booleans())
    def retry(self, data: st.DataObject, init_fails: bool) -> None:
        waiting = list(self.core.retrying)
        ref = data.draw(st.sampled_from(waiting)) if waiting else data.draw(refs)
        answers = {label_of(ref, "init"): Raised(ValueError("no"))} if init_fails else None
        run = self.run(self.core.retry_restart(ref), answers)
        if ref not in waiting:
            assert run.effects == []

    @precondition(lambda self: not self.core.stopping)
    @rule(drop=st.booleans(), now=st.integers(0, 5))
    def begin_stop(self, drop: bool, now: int) -> None:
        if not now:
            self.core.begin_stop(drop)

    @precondition(lambda self: not self.core.stopped)
    @rule(now=st.integers(0, 5))
    def stop(self, now: int) -> None:
        if now:  # seldom: nothing happens after it
            return
        self.run(self.core.stop())
        assert self.core.entries == []
        assert self.core.retrying == {}
        assert self.core.owners() == []

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def table_is_consistent(self) -> None:
        check_table(self.core)
        assert set(self.core.owners()) == self.watched
        assert self.core.restarts >= 0
        for ident in (id(e.instance) for e in self.core.entries):
            assert self.terminates[ident] == 0  # installed: not terminated
        assert all(n <= 1 for n in self.terminates.values())


CoreMachine.TestCase.settings = settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=150,
    stateful_step_count=30,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoreMachine = CoreMachine.TestCase
