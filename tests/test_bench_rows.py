"""The benchmark suite's summaries and rows (``python -m benchmarks``): every system is
summarised as a median with its spread, never its best run; OTP's memory is measured in a VM of
its own; the floors are what they say; the load rows run in the quick mode CI uses. Timing
figures themselves are never judged here."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The ``benchmarks`` package (importable from the checkout's root)."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks  # noqa: PLC0415 - after the path is set

    return benchmarks


def _run(bench: ModuleType, tmp_path: Path, only: str) -> dict[str, Any]:
    from benchmarks.__main__ import main  # noqa: PLC0415 - after the path is set

    out = tmp_path / "rows.json"
    assert main(["--quick", "--only", only, "--json", str(out)]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def _row(doc: dict[str, Any], scenario: str, impl: str) -> dict[str, Any]:
    found = [r for r in doc["rows"] if r["scenario"] == scenario and r["impl"] == impl]
    assert len(found) == 1, (scenario, impl, [r["impl"] for r in doc["rows"]])
    row: dict[str, Any] = found[0]
    return row


def _target(doc: dict[str, Any], start: str) -> dict[str, Any]:
    found = [t for t in doc["targets"] if t["name"].startswith(start)]
    assert len(found) == 1, start
    target: dict[str, Any] = found[0]
    return target


# ---------------------------------------------------------------- medians and spreads


def test_a_rate_row_is_the_median_of_its_runs_with_their_range(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415

    elapsed = iter([100, 400, 200, 50, 300])  # ns for 1 operation each run
    rows = h.run([h.rate(h.NOTIFY_1, "fake", 1, lambda: next(elapsed), 5)])
    (row,) = rows
    assert row.value == pytest.approx(1e9 / 200)  # the median run, not the best (50 ns)
    assert row.spread == pytest.approx((1e9 / 400, 1e9 / 50))
    assert row.spread_of == "min-max of 5 runs"
    assert "min-max of 5 runs" in h.fmt_spread(row)


def test_a_latency_row_is_the_median_of_its_samples_with_their_iqr(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415

    rounds = iter([[1_000_000], list(range(1_000, 101_000, 1_000))])  # a warm-up round first
    (med, p99) = h.run([h.latency("fake", lambda: next(rounds), 1)])
    assert med.value == pytest.approx(50.0)  # µs
    assert med.spread == pytest.approx((25.0, 75.0))
    assert med.spread_of == h.IQR
    assert p99.value == pytest.approx(99.0)
    assert p99.spread is None


def test_one_run_says_so_instead_of_a_range(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415

    row = h.runs_row(h.NOTIFY_1, "fake", [3e6])
    assert row.value == 3e6
    assert h.fmt_spread(row) == "1 run"


def test_the_json_rows_carry_the_spread(bench: ModuleType, tmp_path: Path) -> None:
    doc = _run(bench, tmp_path, "producer yields after every event")
    from benchmarks import _harness as h  # noqa: PLC0415

    row = _row(doc, h.NOTIFY_YIELD.name, h.GE_AIO)
    low, high = row["spread"]
    assert low <= row["value"] <= high
    assert row["spread_of"] == "1 run"
    target = _target(doc, "asyncio notify, producer yields after every event")
    assert target["status"] in ("met", "missed")


# ---------------------------------------------------------------- OTP

OUTPUT = """\
otp_release 25 release
notify_1 3000000.0 per_s
notify_1 1000000.0 per_s
notify_1 2000000.0 per_s
call_median 1.5000 us
call_median:q1 1.4000 us
call_median:q3 1.9000 us
call_p99 4.0000 us
"""


def test_otp_rows_are_medians_of_every_run_never_the_best(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415
    from benchmarks import _otp  # noqa: PLC0415

    cfg = h.Config.make(quick=True, only="notify, 1 handler, one")
    cfg.meta["otp"] = True
    first = _otp.parse(OUTPUT)
    assert first.figures["notify_1"] == [3e6, 1e6, 2e6]
    second = _otp.parse("notify_1 4000000.0 per_s\nnotify_1 5000000.0 per_s\n")
    row = h.find(_otp.rows(cfg, [first, second]), h.NOTIFY_1, h.OTP)
    assert row is not None
    assert row.value == 3e6  # the median of the five runs of both invocations
    assert row.spread == (1e6, 5e6)


def test_otp_latency_rows_carry_their_quartiles(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415
    from benchmarks import _otp  # noqa: PLC0415

    cfg = h.Config.make(quick=True, only="call round trip, queued (one event ahead)")
    cfg.meta["otp"] = True
    rows = _otp.rows(cfg, [_otp.parse(OUTPUT)])
    med, p99 = h.find(rows, h.CALL_MED, h.OTP), h.find(rows, h.CALL_P99, h.OTP)
    assert med is not None
    assert p99 is not None
    assert (med.value, med.spread, med.spread_of) == (1.5, (1.4, 1.9), h.IQR)
    assert (p99.value, p99.spread) == (4.0, None)


def test_without_erl_the_otp_rows_say_so(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no escript here
    doc = _run(bench, tmp_path, "memory per handler")
    from benchmarks import _harness as h  # noqa: PLC0415

    row = _row(doc, h.MEM_HANDLER.name, h.OTP)
    assert row["value"] is None
    assert row["note"].startswith("skipped: no erl")
    assert not row["error"]


FAKE_ESCRIPT = """\
#!{python}
import os, sys
with open({log!r}, "a") as f:
    f.write(str(os.getpid()) + " " + " ".join(sys.argv[2:]) + "\\n")
if sys.argv[2] == "mem_manager":
    print("mem_manager 2600.0 bytes")
elif sys.argv[2] == "mem_handler":
    print("mem_handler 110.0 bytes")
"""


def test_each_otp_memory_figure_is_measured_in_a_vm_of_its_own(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in for escript that logs its process per invocation (erl may be absent here;
    # the test after this one runs the real script when it is not)
    log = tmp_path / "calls.log"
    fake = tmp_path / "escript"
    fake.write_text(FAKE_ESCRIPT.format(python=sys.executable, log=str(log)), encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    from benchmarks import _harness as h  # noqa: PLC0415
    from benchmarks import _otp  # noqa: PLC0415

    cfg = h.Config.make(quick=False, only="memory per")
    runs = _otp.measure_memory(cfg)
    calls = log.read_text(encoding="utf-8").splitlines()
    assert len(calls) == len(runs) == 2 * cfg.reps
    assert len({c.split()[0] for c in calls}) == len(calls)  # one process each
    assert sorted(c.split(maxsplit=1)[1] for c in calls) == sorted(
        [f"mem_handler {cfg.mem_handlers}"] * cfg.reps
        + [f"mem_manager {cfg.mem_managers}"] * cfg.reps
    )
    rows = _otp.rows(cfg, list(runs))
    mgr = h.find(rows, h.MEM_MANAGER, h.OTP)
    assert mgr is not None
    assert mgr.value == 2600.0
    assert mgr.spread_of == f"min-max of {cfg.reps} runs"
    assert "fresh Erlang VM" in mgr.note


@pytest.mark.skipif(shutil.which("escript") is None, reason="needs escript (Erlang/OTP)")
def test_the_real_script_measures_memory_per_manager(bench: ModuleType) -> None:
    from benchmarks import _harness as h  # noqa: PLC0415
    from benchmarks import _otp  # noqa: PLC0415

    cfg = h.Config.make(quick=True, only="memory per idle manager")
    (run,) = _otp.measure_memory(cfg)
    assert isinstance(run, _otp.Output)
    # the managers' own process memory: no other process of the VM blurs it
    assert run.figures["mem_manager"][0] > 0


# ---------------------------------------------------------------- the floors


def test_the_thread_hand_off_floor_runs_between_long_lived_threads(bench: ModuleType) -> None:
    from benchmarks import _baselines  # noqa: PLC0415

    assert len(_baselines.sq_busy(20, call=True, latency=True)) == 20
    server = _baselines.HandOffServer.get()
    before = set(threading.enumerate())
    assert _baselines.sq_busy(20, call=False, latency=False)
    assert _baselines.HandOffServer.get() is server
    assert server.thread.is_alive()
    assert set(threading.enumerate()) <= before  # no thread started for the round


FLOOR_CHECK = """\
from benchmarks import _memory
from benchmarks._workloads import Tally

handlers = []

def bound_method_only():
    handlers.append(Tally().handle)

print(_memory.traced_per_item_sync(500, bound_method_only)[0], _memory._plain_per_handler(500))
"""


def test_the_handler_memory_floor_includes_a_registry_entry(bench: ModuleType) -> None:
    # in a fresh interpreter: tracemalloc counts every thread's allocations, and threads that
    # other tests left behind would blur the figures here
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    without, floor = map(float, done.stdout.split())
    # a (class, id) tuple key and its dict slot on top of the object and its bound method
    assert floor > without + 50


# ---------------------------------------------------------------- the load rows


def test_round_robin_rows_compare_10000_managers_with_1000(
    bench: ModuleType, tmp_path: Path
) -> None:
    doc = _run(bench, tmp_path, "round-robin")
    from benchmarks import _harness as h  # noqa: PLC0415

    for impl in (h.DEQUE, h.GE_AIO):
        few = _row(doc, h.ROUND_ROBIN.name, h.rr_impl(impl, 1_000))
        many = _row(doc, h.ROUND_ROBIN.name, h.rr_impl(impl, 10_000))
        assert few["value"]
        assert many["value"]
        assert many["baseline"] == few["impl"]
        assert many["ratio"] == pytest.approx(many["value"] / few["value"])
    target = _target(doc, "asyncio notify round-robin over 10,000 managers")
    assert target["status"] in ("met", "missed")
    assert "deque:" in target["measured"]


def test_overflow_rows_compare_with_the_unbounded_burst(bench: ModuleType, tmp_path: Path) -> None:
    doc = _run(bench, tmp_path, "bounded mailbox vs unbounded")
    from benchmarks import _harness as h  # noqa: PLC0415

    for sc in (h.BOUNDED_AIO, h.BOUNDED_THREADS):
        row = _row(doc, sc.name, h.OVERFLOWING)
        assert row["value"]
        assert not row["error"]
        assert row["baseline"] == h.UNBOUNDED
        assert row["ratio"] is not None
        assert "handled or dropped" in row["note"]
    target = _target(doc, "asyncio burst overflowing a drop_oldest mailbox")
    assert target["status"] in ("met", "missed")
