"""No args given versus ``args=None``, and a class whose constructor wants arguments, on every
runtime."""

from __future__ import annotations

from typing import Any

import pytest

from genevent import NO_ARGS, Args, HandlerInitFailed, aio, threads
from tests.runtimes import Runtime


class Base:
    limit: Any = None

    def handle_event(self, event: Any) -> None:
        if event == "boom":
            raise ValueError("boom")

    def handle_call(self, request: Any) -> Any:
        return ("limit", self.limit)


class NeedsArgs(Base):
    def init(self, limit: Any) -> None:
        self.limit = limit


class HasDefault(Base):
    def init(self, limit: Any = 7) -> None:
        self.limit = limit


class NoParams(Base):
    def init(self) -> None:
        self.limit = "none needed"


class WantsCtorArgs(Base):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def test_no_args_and_a_required_parameter_is_refused_before_anything_runs(
    rt: Runtime,
) -> None:
    m = rt.start()
    with pytest.raises(HandlerInitFailed) as info:
        m.add_handler(NeedsArgs, NO_ARGS)  # what add_handler(NeedsArgs) passes
    text = str(info.value)
    assert "init of NeedsArgs requires limit, and no args were given" in text
    assert "add_handler(NeedsArgs, args)" in text
    assert isinstance(info.value.cause, TypeError)
    if rt.name != "nats":
        assert info.value.missing == ("limit",)
    assert m.which_handlers() == []


def test_none_is_passed_and_defaults_apply_without_args(rt: Runtime) -> None:
    m = rt.start()
    m.add_handler(NeedsArgs, None)
    m.add_handler(HasDefault, NO_ARGS)
    m.add_handler((HasDefault, 1), Args(limit=3))
    m.add_handler(NoParams, NO_ARGS)
    replies = [m.call(ref, "q") for ref in (NeedsArgs, HasDefault, (HasDefault, 1), NoParams)]
    assert [tuple(r) for r in replies] == [
        ("limit", None),
        ("limit", 7),
        ("limit", 3),
        ("limit", "none needed"),
    ]


def test_a_swap_without_args2_calls_init_without_args(rt: Runtime) -> None:
    m = rt.start()
    m.add_handler(NoParams, NO_ARGS)
    m.swap_handler(NoParams, None, HasDefault, NO_ARGS)
    assert tuple(m.call(HasDefault, "q")) == ("limit", 7)
    with pytest.raises(HandlerInitFailed, match="init of NeedsArgs requires limit"):
        m.swap_handler(HasDefault, None, NeedsArgs, NO_ARGS)


def test_a_restart_gets_no_args_again(rt: Runtime) -> None:
    if rt.name == "nats":
        pytest.skip("restarts are the hosting node's: covered by the local runtimes")
    m = rt.start()
    m.add_handler(HasDefault, NO_ARGS, restart="transient")
    m.add_handler(NeedsArgs, None, restart="transient")
    m.sync_notify("boom")
    assert tuple(m.call(HasDefault, "q")) == ("limit", 7)
    assert tuple(m.call(NeedsArgs, "q")) == ("limit", None)


def test_a_class_whose_constructor_wants_arguments_is_explained(rt: Runtime) -> None:
    m = rt.start()
    with pytest.raises(HandlerInitFailed) as info:
        m.add_handler(WantsCtorArgs, 5)
    text = str(info.value)
    assert text.startswith("creating WantsCtorArgs raised TypeError")
    assert "its __init__ requires limit" in text
    assert "the manager creates the class without arguments, WantsCtorArgs()" in text
    assert "passes add_handler's args to its init()" in text


def test_the_public_signatures_default_to_no_args() -> None:
    import inspect  # noqa: PLC0415

    for cls in (aio.EventManager, threads.EventManager):
        for name, param in (
            ("add_handler", "args"),
            ("add_sup_handler", "args"),
            ("swap_handler", "args2"),
            ("swap_sup_handler", "args2"),
        ):
            sig = inspect.signature(getattr(cls, name))
            assert sig.parameters[param].default is NO_ARGS, (cls, name)
        assert inspect.signature(cls.delete_handler).parameters["args"].default is None
