"""The shared overflow rules and counts (no runtime)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genevent._overflow import (
    OVERFLOW_POLICIES,
    Action,
    Counts,
    OverflowPolicy,
    check_bound,
    decide,
)


def test_room_is_always_accepted() -> None:
    for policy in OVERFLOW_POLICIES:
        assert decide(0, 1, policy) is Action.ACCEPT
        assert decide(10**9, None, policy) is Action.ACCEPT


@pytest.mark.parametrize(
    ("policy", "action"),
    [
        ("block", Action.WAIT),
        ("drop_newest", Action.DROP_NEWEST),
        ("drop_oldest", Action.DROP_OLDEST),
        ("raise", Action.REFUSE),
    ],
)
def test_full_buffer(policy: OverflowPolicy, action: Action) -> None:
    assert decide(3, 3, policy) is action


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        check_bound(0, "block")
    with pytest.raises(TypeError):
        check_bound(True, "block")
    with pytest.raises(TypeError):
        check_bound(2.5, "block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overflow must be one of"):
        check_bound(3, "drop")
    check_bound(None, "raise")


@settings(deadline=None)
@given(
    maxsize=st.integers(1, 5),
    policy=st.sampled_from(OVERFLOW_POLICIES),
    script=st.lists(st.booleans(), max_size=60),
)
def test_counts_add_up(maxsize: int, policy: OverflowPolicy, script: list[bool]) -> None:
    """A model buffer driven by offers (True) and takes (False): handled + dropped + refused
    equals sent once drained, and the buffer never exceeds maxsize."""
    counts = Counts()
    buf: list[int] = []
    for i, offer in enumerate(script):
        if offer:
            action = counts.offer(len(buf), maxsize, policy)
            if action is Action.WAIT:
                counts.refuse()  # this producer cannot wait
            elif action is Action.ACCEPT:
                buf.append(i)
            elif action is Action.DROP_OLDEST:
                buf.pop(0)
                buf.append(i)
        elif buf:
            buf.pop(0)
            counts.handled += 1
        assert len(buf) <= maxsize
        assert counts.high_water <= maxsize
    counts.handled += len(buf)
    assert counts.handled + counts.dropped + counts.refused == counts.sent
