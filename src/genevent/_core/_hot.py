"""The rules of the runtimes' shortest event paths: which shape of the handler snapshot
(:attr:`ManagerCore.event_targets`) has a path of its own, and which results of
``handle_event`` need the core. A runtime calls these, or inlines them where a call would
cost more than the rule (each says how), and decides nothing of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ("needs_attention", "sole_target")

T = TypeVar("T")


def needs_attention(result: object) -> bool:
    """Whether what a plain ``handle_event`` returned needs the core
    (``ManagerCore.event_result``): anything but ``None`` (an instruction, or a bad return).
    ``None``, the common answer, needs nothing. Hot loops inline it as ``result is not
    None``."""
    return result is not None


def sole_target(
    targets: tuple[tuple[T, Callable[[Any], Any]], ...],
) -> Callable[[Any], Any] | None:
    """The handler function of a snapshot of exactly one handler (``targets``, as
    :attr:`ManagerCore.event_targets` gives it), else None. A drain loop calls it once per
    snapshot and, given a function, calls it per event with no walk over the snapshot: the
    handler is ``targets[0][0]``, and no other handler follows it."""
    return targets[0][1] if len(targets) == 1 else None
