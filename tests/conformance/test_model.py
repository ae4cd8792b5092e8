"""docs/semantics.md items 62 and 63: random add/delete/swap/notify/call/crash/owner-exit
sequences, checked against a plain list model after every step, on every runtime.

After each step ``which_handlers`` must equal the model; the sequence of terminate reasons
and the sequence of owner notices must equal the model's, so every handler that left got
exactly one terminate (with the right reason) and every supervised one exactly one notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from genevent import (
    BadReturn,
    Crashed,
    Deleted,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    OwnerExited,
    Remove,
    RemovedItself,
    Stopped,
    Swap,
    Swapped,
)
from tests.handlers import H2, H, Recorder, Spec
from tests.runtimes import AVAILABLE, RUNTIMES, Facade, Runtime, Worker

REFS: list[Any] = [(H, i) for i in range(3)] + [(H2, i) for i in range(2)]
ACTIONS = ["plain", "crash", "bad", "remove", "swap"]


@dataclass
class Installed:
    ref: Any
    name: int
    owner: Any  # None, "main", or a Worker


def behave_event(handler: Any, event: Any) -> Any:
    """Handlers act only on events addressed to them: ``(action, name, new_ref, new_name)``."""
    action, target, new_ref, new_name = event
    if target != handler.spec.name:
        return None
    if action == "crash":
        raise RuntimeError(f"crash {target}")
    if action == "bad":
        return ("bad", target)
    if action == "remove":
        return Remove()
    if action == "swap":
        return Swap("swap-args", new_ref, make_spec(handler.spec.rec, new_name))
    return None


def behave_call(handler: Any, request: Any) -> Any:
    action = request
    if action == "crash":
        raise RuntimeError("call crash")
    if action == "remove":
        return Remove(("removed", handler.spec.name))
    return ("reply", handler.spec.name)


def make_spec(rec: Recorder, name: int, fail: bool = False) -> Spec:
    def init(h: Any) -> None:
        if fail:
            raise ValueError("refused")

    return Spec(rec, name, init=init, event=behave_event, call=behave_call)


class ManagerModel(RuleBasedStateMachine):
    runtime_name = "aio"

    def __init__(self) -> None:
        super().__init__()
        self.rt: Runtime = RUNTIMES[self.runtime_name]()
        self.rec = Recorder()
        self.m: Facade = self.rt.start()
        self.model: list[Installed] = []
        self.next_name = 0
        self.terminations: list[tuple[int, type]] = []
        self.notices: list[tuple[Any, type]] = []
        self.owners: list[Worker] = []

    def teardown(self) -> None:
        try:
            if self.m.is_running:
                self.m.stop()
                for inst in self.model:
                    self._leave(inst, Stopped)
                self.model = []
                self.check_logs()
        finally:
            for w in self.owners:
                w.end()
            self.rt.close()

    # -- helpers ------------------------------------------------------------------------------

    def _name(self) -> int:
        self.next_name += 1
        return self.next_name

    def _find(self, ref: Any) -> Installed | None:
        return next((i for i in self.model if i.ref == ref), None)

    def _leave(self, inst: Installed, reason: type, notify: bool = True) -> None:
        self.terminations.append((inst.name, reason))
        if inst.owner is not None and notify:
            self.notices.append((inst.ref, reason))

    def _facade(self, owner: Any) -> Facade:
        return self.m if owner == "main" else self.m.via(owner)

    # -- rules --------------------------------------------------------------------------------

    @rule(ref=st.sampled_from(REFS), sup=st.booleans(), fail=st.booleans())
    def add(self, ref: Any, sup: bool, fail: bool) -> None:
        name = self._name()
        s = make_spec(self.rec, name, fail)
        try:
            if sup:
                self.m.add_sup_handler(ref, s, on_exit=self.rec.notice)
            else:
                self.m.add_handler(ref, s)
        except HandlerExists:
            assert self._find(ref) is not None
            return
        except HandlerInitFailed:
            assert fail
            return
        assert self._find(ref) is None
        assert not fail
        self.model.insert(0, Installed(ref, name, "main" if sup else None))

    @precondition(lambda self: len(self.owners) < 3)
    @rule(ref=st.sampled_from(REFS))
    def add_owned_by_worker(self, ref: Any) -> None:
        if self._find(ref) is not None:
            return
        owner = self.rt.worker()
        self.owners.append(owner)
        name = self._name()
        self.m.via(owner).add_sup_handler(ref, make_spec(self.rec, name), on_exit=self.rec.notice)
        self.model.insert(0, Installed(ref, name, owner))

    @precondition(lambda self: bool(self.owners))
    @rule(data=st.data())
    def end_owner(self, data: st.DataObject) -> None:
        owner = data.draw(st.sampled_from(self.owners))
        self.owners.remove(owner)
        gone = [i for i in self.model if i.owner is owner]
        owner.end()
        for inst in gone:
            self.rec.wait(inst.name, "terminate")
            self._leave(inst, OwnerExited, notify=False)
            self.model.remove(inst)

    @rule(ref=st.sampled_from(REFS))
    def delete(self, ref: Any) -> None:
        inst = self._find(ref)
        try:
            self.m.delete_handler(ref, "del")
        except HandlerNotFound:
            assert inst is None
            return
        assert inst is not None
        self.model.remove(inst)
        self._leave(inst, Deleted)

    @rule(
        old=st.sampled_from(REFS), new=st.sampled_from(REFS), sup=st.booleans(), fail=st.booleans()
    )
    def swap(self, old: Any, new: Any, sup: bool, fail: bool) -> None:
        old_inst, new_inst = self._find(old), self._find(new)
        name = self._name()
        s = make_spec(self.rec, name, fail)
        try:
            if sup:
                self.m.swap_sup_handler(old, "a1", new, s, on_exit=self.rec.notice)
            else:
                self.m.swap_handler(old, "a1", new, s)
            failed = False
        except HandlerExists:
            assert new_inst is not None
            assert new_inst is not old_inst
            return
        except HandlerInitFailed:
            failed = True
        assert failed == fail
        assert new_inst is None or new_inst is old_inst
        owner = "main" if sup else (old_inst.owner if old_inst else None)
        if old_inst is not None:
            self.model.remove(old_inst)
            self._leave(old_inst, Swapped)
        if fail:
            return
        self.model.insert(0, Installed(new, name, owner))

    @rule(data=st.data(), action=st.sampled_from(ACTIONS), new=st.sampled_from(REFS))
    def notify_action(self, data: st.DataObject, action: str, new: Any) -> None:
        if not self.model:
            self.m.sync_notify(("plain", 0, None, 0))
            return
        target = data.draw(st.sampled_from(self.model))
        new_name = self._name()
        self.m.sync_notify((action, target.name, new, new_name))
        index = self.model.index(target)
        if action in ("crash", "bad"):
            self.model.remove(target)
            self._leave(target, Crashed if action == "crash" else BadReturn)
        elif action == "remove":
            self.model.remove(target)
            self._leave(target, RemovedItself)
        elif action == "swap":
            other = self._find(new)
            self.model.remove(target)
            if other is not None and other is not target:
                self._leave(target, BadReturn)
            else:
                self._leave(target, Swapped)
                self.model.insert(index, Installed(new, new_name, target.owner))

    @rule(ref=st.sampled_from(REFS), action=st.sampled_from(["plain", "crash", "remove"]))
    def call(self, ref: Any, action: str) -> None:
        inst = self._find(ref)
        try:
            reply = self.m.call(ref, action)
        except HandlerNotFound:
            assert inst is None
            return
        except HandlerCrashed:
            assert inst is not None
            assert action == "crash"
            self.model.remove(inst)
            self._leave(inst, Crashed)
            return
        assert inst is not None
        if action == "remove":
            assert reply == ("removed", inst.name)
            self.model.remove(inst)
            self._leave(inst, RemovedItself)
        else:
            assert reply == ("reply", inst.name)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def handlers_match_model(self) -> None:
        assert self.m.which_handlers() == [i.ref for i in self.model]

    @invariant()
    def check_logs(self) -> None:
        got = [(name, type(reason)) for name, reason in self.rec.terminations()]
        assert got == self.terminations
        notices = [(ref, type(reason)) for ref, reason in self.rec.notices()]
        assert notices == self.notices
        names = [name for name, _ in got]
        assert len(names) == len(set(names))  # nobody terminated twice


def _machine(name: str) -> type[ManagerModel]:
    return type(f"ManagerModel_{name}", (ManagerModel,), {"runtime_name": name})


@pytest.mark.parametrize("runtime", AVAILABLE)
def test_c62_c63_model(runtime: str) -> None:
    exempt = RUNTIMES[runtime].exempt
    if "test_c62_c63_model" in exempt:
        pytest.skip(f"not on the {runtime} runtime: {exempt['test_c62_c63_model']}")
    machine = _machine(runtime)
    machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
