"""OTP's gen_event on the same scenarios: runs ``otp_gen_event.escript`` and parses its lines.

The script prints ``<name> <value> <unit>`` per figure. Without ``escript`` on the PATH the rows
say "skipped (escript not on PATH)".
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import _harness as h

SCRIPT = Path(__file__).with_name("otp_gen_event.escript")
NOT_FOUND = "skipped (escript not on PATH)"
OTP_4P = "OTP gen_event, 4 producer processes"
OTP_OFF_HEAP = "OTP gen_event, off-heap mailbox"
QUEUED_NOTE = "one notify ahead of each request (included)"

# script's name -> (scenario, implementation name, note)
FIGURES: dict[str, tuple[h.Scenario, str, str]] = {
    "notify_1": (h.NOTIFY_1, h.OTP, ""),
    "notify_1_offheap": (h.NOTIFY_1, OTP_OFF_HEAP, "message_queue_data = off_heap"),
    "notify_10": (h.NOTIFY_10, h.OTP, ""),
    "notify_100": (h.NOTIFY_100, h.OTP, ""),
    "notify_4p": (h.NOTIFY_4P, OTP_4P, ""),
    "sync_notify": (h.SYNC, h.OTP, QUEUED_NOTE),
    "call_median": (h.CALL_MED, h.OTP, QUEUED_NOTE),
    "call_p99": (h.CALL_P99, h.OTP, QUEUED_NOTE),
    "call_tput": (h.CALL_TPUT, h.OTP, QUEUED_NOTE),
    "call_flooded": (h.CALL_FLOODED, h.OTP, ""),
    "call_idle": (h.CALL_INLINE_MED, h.OTP, "no inline path: a round trip to an idle manager"),
    "life": (h.LIFE, h.OTP, ""),
    "add_busy": (h.ADD_BUSY, h.OTP, QUEUED_NOTE),
    "delete_busy": (h.DELETE_BUSY, h.OTP, QUEUED_NOTE),
    "mem_manager": (h.MEM_MANAGER, h.OTP, "erlang:memory(processes) growth"),
    "mem_handler": (h.MEM_HANDLER, h.OTP, "manager's process_info memory growth"),
}


def available() -> str | None:
    """The path of ``escript``, or None when it is not on the PATH."""
    return shutil.which("escript")


def parse(output: str) -> tuple[dict[str, float], dict[str, str]]:
    """The script's figures by name, and its informational lines (release, schedulers)."""
    figures: dict[str, float] = {}
    info: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        name, value, _unit = parts
        if name in FIGURES:
            figures[name] = float(value)
        else:
            info[name] = value
    return figures, info


def _wanted(cfg: h.Config) -> list[tuple[str, h.Scenario, str, str]]:
    return [(name, sc, impl, note) for name, (sc, impl, note) in FIGURES.items() if cfg.wants(sc)]


Run = dict[str, float] | Exception
"""One run of the script: its figures by name, or what went wrong."""


def measure(cfg: h.Config) -> Run | None:
    """Run the script once with ``cfg``'s counts (None: nothing to run, or no escript).

    The full run calls this twice, before and after the Python benches, and keeps each
    figure's better value: the machine's slow spells then hit OTP about as they hit Python."""
    escript = available()
    cfg.meta["otp"] = escript is not None
    if escript is None or not _wanted(cfg):
        return None
    h.progress("OTP gen_event (escript)")
    args = [
        cfg.notify_events,
        cfg.fanout_invocations,
        cfg.roundtrips,
        cfg.latency_samples,
        cfg.reps,
        cfg.mem_managers,
        cfg.mem_handlers,
        cfg.control_samples,
    ]
    try:
        done = subprocess.run(
            [escript, str(SCRIPT), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        return RuntimeError(f"{exc} {detail.strip()[-300:]}".strip())
    figures, info = parse(done.stdout)
    cfg.meta["otp_release"] = info.get("otp_release")
    return figures


def rows(cfg: h.Config, runs: list[Run | None]) -> list[h.Row]:
    """OTP's rows from one or more runs of the script, or rows saying why there are none."""
    wanted = _wanted(cfg)
    if not wanted:
        return []
    if cfg.meta.get("otp") is False:
        return [h.skipped(sc, impl, NOT_FOUND) for _, sc, impl, _ in wanted]
    done = [r for r in runs if isinstance(r, dict)]
    errors = [r for r in runs if isinstance(r, Exception)]
    out: list[h.Row] = []
    for name, sc, impl, note in wanted:
        values = [r[name] for r in done if name in r]
        if values:
            best = max(values) if sc.better == "higher" else min(values)
            out.append(h.row(sc, impl, best, note))
        else:
            why = errors[0] if errors else RuntimeError(f"no {name!r} line in the script's output")
            out.append(h.failed(sc, impl, why))
    return out
