"""The rules fast paths apply are the core's: each cheap form agrees with the rule it stands
for, for any value."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from genevent import Remove, Swap
from genevent._core import (
    MAYBE_INSTRUCTION,
    ManagerCore,
    Returned,
    is_plain_reply,
    needs_attention,
    sole_target,
)
from tests.core.driver import H as Plain
from tests.core.driver import drive
from tests.handlers import H

VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(),
    st.lists(st.integers()),
    st.sampled_from([Remove, Swap, int, H, type, object]),
    st.builds(Remove, st.integers()),
    st.builds(lambda r: Swap("a", H, None, reply=r), st.integers()),
)


@settings(deadline=None, max_examples=300)
@given(VALUES)
def test_the_cheap_form_never_passes_an_instruction_for_a_reply(value: Any) -> None:
    """A value whose class is not in MAYBE_INSTRUCTION is a plain reply by the rule."""
    if value.__class__ not in MAYBE_INSTRUCTION:
        assert is_plain_reply(value)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (None, True),
        (0, True),
        ("Remove", True),
        (int, True),  # a class as a reply is a reply, unless it is Remove or Swap
        (Remove, False),  # a forgotten "()": a bad return
        (Swap, False),
        (Remove(1), False),
        (Swap("a", H, None), False),
    ],
)
def test_what_is_a_plain_reply(value: Any, plain: bool) -> None:
    assert is_plain_reply(value) is plain


@settings(deadline=None, max_examples=300)
@given(VALUES)
def test_a_result_needs_attention_exactly_when_the_core_acts_on_it(value: Any) -> None:
    """needs_attention (inlined by hot loops as ``is not None``): False exactly when the
    core's event_result would do nothing with the value (no effect, the table unchanged)."""
    assert needs_attention(value) is (value is not None)
    core = ManagerCore()
    drive(core, core.add_handler(Plain))
    ((entry, _),) = core.event_targets
    proc = core.event_result(entry, Returned(value), "ev")
    acted = True
    try:
        next(proc)
    except StopIteration:
        acted = False
    proc.close()
    assert acted is needs_attention(value)


def test_a_snapshot_of_one_handler_has_a_sole_target() -> None:
    """sole_target gives the function of a snapshot of exactly one handler, else None."""
    core = ManagerCore()
    assert sole_target(core.event_targets) is None
    drive(core, core.add_handler(Plain))
    ((_, fn),) = core.event_targets
    assert sole_target(core.event_targets) is fn
    drive(core, core.add_handler((Plain, 2)))
    assert sole_target(core.event_targets) is None
