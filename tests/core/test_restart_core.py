"""The restart intensity rule, driven by a fake clock (no runtime)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from genevent._core import Intensity, restart_spec


def test_intensity_window_slides() -> None:
    i = Intensity(2, 10.0)
    assert i.allow(0.0)
    assert i.allow(1.0)
    assert not i.allow(5.0)  # two already within the last 10 s
    assert not i.allow(9.9)
    assert i.allow(10.0)  # the first one left the window
    assert not i.allow(10.5)
    assert i.allow(11.0)


def test_zero_restarts_never_allows() -> None:
    assert not Intensity(0, 1.0).allow(0.0)


def test_temporary_needs_no_state() -> None:
    assert restart_spec("temporary", None) is None
    spec = restart_spec("transient", ("a",), 4, 2.0)
    assert spec is not None
    assert spec.args == ("a",)
    assert (spec.intensity.max_restarts, spec.intensity.period) == (4, 2.0)


@settings(deadline=None)
@given(
    max_restarts=st.integers(0, 5),
    period=st.floats(0.1, 100.0),
    gaps=st.lists(st.floats(0.0, 50.0), max_size=40),
)
def test_never_more_than_max_in_any_window(
    max_restarts: int, period: float, gaps: list[float]
) -> None:
    i = Intensity(max_restarts, period)
    now, allowed = 0.0, []
    for gap in gaps:
        now += gap
        if i.allow(now):
            allowed.append(now)
    for t in allowed:
        assert sum(1 for u in allowed if t - period < u <= t) <= max_restarts
