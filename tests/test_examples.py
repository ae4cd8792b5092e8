"""Every program in ``examples/`` runs as a user would run it (mypy --strict checks them too,
as part of the project's type check)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_tested() -> None:
    tested = {
        "broadcast.py",
        "durable_ledger.py",
        "orders_service.py",
        "orders_service_pyee.py",
        "supervised_restart.py",
        "two_nodes.py",
        "worker_pool.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_broadcast() -> None:
    assert run("broadcast.py").splitlines() == [
        "[\"Meetup at 10 o'clock\", 'I dare you!']",
        "[]",
        "['Assemble in class']",
    ]


def test_orders_service() -> None:
    out = run("orders_service.py").splitlines()
    assert out[0] == "revenue: 1505.5"  # the call saw every event notified before it
    assert "FraudCheck" not in out[1]  # it crashed on the large order and was removed
    assert "Revenue" in out[1]
    assert out[2] == "after the watcher's task: 3 handlers"  # Watcher left with its owner
    assert out[3] == "revenue: 1501.0"  # + order 99 (the watcher's), - order 3
    assert not any("watcher left" in line for line in out)  # a dead owner is not told
    assert "alert: PaymentFailed(order=1, reason='card declined')" in out
    assert not any("order=3, reason='timeout'" in line for line in out)  # unsubscribed


@pytest.mark.skipif(importlib.util.find_spec("pyee") is None, reason="pyee not installed")
def test_orders_service_pyee() -> None:
    out = run("orders_service_pyee.py").splitlines()
    assert out[0] == "revenue: 1505.5"


def test_worker_pool() -> None:
    assert run("worker_pool.py").strip() == "started 40 jobs, finished 40 of 40"


def test_supervised_restart() -> None:
    assert run("supervised_restart.py").splitlines() == [
        "after one bad quote: {'ACME': 11.0, 'INIT': 2.0}",  # restarted with a fresh state
        "restarts so far: 1",
        "owner told: Crashed",  # told only when the limit removed it for good
        "installed now: []",
    ]


@pytest.mark.skipif(importlib.util.find_spec("nats") is None, reason="the nats extra")
def test_two_nodes() -> None:
    assert run("two_nodes.py").splitlines() == [
        "managers: True",
        "[\"Meetup at 10 o'clock\", 'I dare you!']",  # the call saw both notifies, in order
        "crashed remotely: HandlerCrashed",  # the serving node's crash, as the local error
        "left: []",  # the crashed handler was removed, as in one process
    ]


@pytest.mark.skipif(importlib.util.find_spec("nats") is None, reason="the nats extra")
def test_durable_ledger() -> None:
    assert run("durable_ledger.py").splitlines() == [
        "stored: 1 retry stored once: True 1",  # a retry with the same msg_id: stored once
        "first: {'alice': 10, 'bob': 5}",
        "second replayed: 2 then handled: 1",  # the first node's events, then the live one
        "second: {'alice': 10, 'bob': 6}",  # the state rebuilt by replay
        "audit replayed: 3 {'alice': 10, 'bob': 6}",  # a handler added later, fed the past
    ]
