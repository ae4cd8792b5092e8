"""One-line breaks of genevent's fast paths, and the tests that must catch each.

Each fast path (a loop or test a runtime inlines for speed) applies a rule the sans-I/O core
defines. A path that no test forces can be broken without the suite noticing; this script
breaks each path on purpose, one line at a time, in a scratch copy of ``src/``, and runs the
tests named for it. Every mutant must be *caught* (a test fails); one that survives names a
path the suite does not hold.

    python tools/mutants.py            # every mutant (a few minutes)
    python tools/mutants.py --list     # the mutants, without running them
    python tools/mutants.py --only NAME [--only NAME ...]

``tests/test_mutants.py`` checks that each mutant's original text still exists exactly once,
so the list cannot silently rot when the code moves.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


@dataclass(frozen=True)
class Mutant:
    """A one-line break: in ``path`` (under ``src/genevent``), ``old`` becomes ``new``."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_CONF = "tests/conformance"
_AIO_QUEUED = (_CONF, "tests/test_runtime_variants.py", "-k", "aio-queued or queued")
_AIO_INLINE = (_CONF, "-k", "aio and not queued and not isolated")
_THREADS = (_CONF, "-k", "threads and not isolated")
_ISOLATED = (_CONF, "tests/test_isolation.py", "tests/test_isolation_order.py", "-k", "isolated")

MUTANTS: tuple[Mutant, ...] = (
    # -- the core's rules ------------------------------------------------------------------
    Mutant(
        "core-plain-reply-remove",
        "is_plain_reply takes the Remove class for a plain reply",
        "_core/_instructions.py",
        "cls is not Remove",
        "True",
        ("tests/core", _CONF),
    ),
    Mutant(
        "core-maybe-instruction-type",
        "the cheap test forgets that a class (Remove, Swap) may be an instruction",
        "_core/_instructions.py",
        "MAYBE_INSTRUCTION: Final = frozenset({Remove, Swap, type})",
        "MAYBE_INSTRUCTION: Final = frozenset({Remove, Swap})",
        ("tests/core", _CONF),
    ),
    Mutant(
        "core-concerned-kinds",
        "which_handlers no longer waits for isolated handlers to catch up",
        "_core/_kinds.py",
        "        Kind.SYNC_NOTIFY,\n        Kind.WHICH_HANDLERS,\n",
        "        Kind.SYNC_NOTIFY,\n",
        _ISOLATED,
    ),
    Mutant(
        "aio-caught-up-counted-twice",
        "a request back from waiting for isolated handlers is counted a second time",
        "aio/_dispatch.py",
        "if req.what in COUNTED and not req.caught_up:",
        "if req.what in COUNTED:",
        ("tests/conformance/test_counts.py", "tests/test_metrics.py", "-k", "isol"),
    ),
    # -- asyncio: the queued answer for plain handlers (quick) ---------------------------------
    Mutant(
        "aio-quick-call-remove",
        "a queued call takes the Remove class returned by handle_call as a plain reply",
        "aio/_server.py",
        "if result.__class__ in MAYBE_INSTRUCTION:  # the core tells them apart",
        "if False:",
        _AIO_QUEUED,
    ),
    Mutant(
        "aio-quick-sync-crash-ends-round",
        "a crash ends a queued sync_notify round: the older handlers never see the event",
        "aio/_server.py",
        "                rest = targets[targets.index((entry, fn)) + 1 :]\n"
        "                req.proc",
        "                rest = []\n                req.proc",
        _AIO_QUEUED,
    ),
    Mutant(
        "aio-quick-sync-uncounted",
        "a queued sync_notify answered on the quick path does not count its event",
        "aio/_server.py",
        "            core.events += 1\n            result = None",
        "            result = None",
        ("tests/conformance/test_counts.py", "tests/test_metrics.py", "-k", "aio"),
    ),
    Mutant(
        "core-restart-shortcut-negative",
        "the shortcut for add_handler's usual restart options lets a negative max_restarts by",
        "_core/_restart.py",
        "        and max_restarts >= 0\n",
        "",
        ("tests/conformance/test_restart.py", "-k", "bad_restart_options"),
    ),
    Mutant(
        "core-plain-add-bad-init-return",
        "the plain add takes an init that returned something for one that returned None",
        "_core/_plain.py",
        "        if value is not None:",
        "        if value is None:",
        ("tests/core/test_plain_add.py", _CONF, "-k", "plain_add or aio-"),
    ),
    Mutant(
        "aio-lean-init-crash-taken-for-success",
        "a table edit driven by the manager itself takes a callback that raised for one that "
        "returned",
        "aio/_server.py",
        "                    send = Raised(exc)\n                else:\n",
        "                    send = Returned(None)\n                else:\n",
        _AIO_QUEUED,
    ),
    Mutant(
        "aio-lean-fatal-swallowed",
        "a KeyboardInterrupt from a callback of a table edit driven by the manager itself is "
        "taken for a crash and goes no further",
        "aio/_server.py",
        "                    if isinstance(exc, (*FATAL, asyncio.CancelledError)):",
        "                    if isinstance(exc, asyncio.CancelledError):",
        (_CONF, "tests/test_aio_hardening.py", "-k", "aio"),
    ),
    Mutant(
        "aio-lean-resume-loses-the-outcome",
        "the rest of a table edit handed to the general driver loses the outcome of the effect "
        "it stopped at",
        "aio/_common.py",
        "eff = proc.send(outcome)",
        "eff = proc.send(None)",
        (_CONF, "-k", "aio"),
    ),
    Mutant(
        "aio-busy-sync-from-a-lane",
        "an isolated handler's sync_notify to its own busy manager is queued, not refused",
        "aio/_requests.py",
        "        and not srv.lanes\n",
        "",
        _ISOLATED,
    ),
    # -- asyncio: the drain loop -----------------------------------------------------------
    Mutant(
        "aio-drain-ignores-returns",
        "the drain loop ignores what handle_event returns (Remove, Swap, a bad return)",
        "aio/_drain.py",
        "                                if result is not None:",
        "                                if False:",
        (_CONF, "-k", "aio"),
    ),
    Mutant(
        "aio-drain-keeps-stale-targets",
        "the drain loop keeps dispatching to the handlers it read before a crash",
        "aio/_drain.py",
        "await event_outcome(srv, entry, Raised(exc), msg)\n"
        "                                targets = None",
        "await event_outcome(srv, entry, Raised(exc), msg)",
        (_CONF, "-k", "aio"),
    ),
    Mutant(
        "aio-drain-sole-ignores-returns",
        "the drain loop's path for one handler ignores what handle_event returns",
        "aio/_drain.py",
        "if result is None:  # the core's needs_attention, inlined",
        "if True:",
        (_CONF, "-k", "aio"),
    ),
    Mutant(
        "aio-drain-sole-keeps-stale-handler",
        "the drain loop's path for one handler keeps calling a handler that left",
        "aio/_drain.py",
        "await event_outcome(srv, targets[0][0], result, msg)\n"
        "                            targets = None",
        "await event_outcome(srv, targets[0][0], result, msg)",
        (_CONF, "-k", "aio"),
    ),
    Mutant(
        "aio-drain-keeps-targets-after-a-quick-edit",
        "the drain loop keeps the handlers it read before a table edit it answered itself",
        "aio/_drain.py",
        "                                targets = None  # read again (the same one unless edited)",
        "",
        ("tests/test_aio.py", "tests/test_streams.py", "-k", "aio"),
    ),
    Mutant(
        "aio-drain-miscounts",
        "the drain loop counts one event too few per batch",
        "aio/_drain.py",
        "core.events = base + batch - requests",
        "core.events = base + batch - requests - 1",
        ("tests/conformance/test_counts.py", "tests/test_metrics.py", "-k", "aio"),
    ),
    # -- asyncio: the inline paths (the caller runs the handlers) -----------------------------
    Mutant(
        "aio-inline-sync-crash-ends-round",
        "a crash ends an inline sync_notify round: the older handlers never see the event",
        "aio/_manager.py",
        "                    rest = targets[targets.index((entry, fn)) + 1 :]\n"
        "                    work = finish_dispatch",
        "                    rest = []\n                    work = finish_dispatch",
        _AIO_INLINE,
    ),
    Mutant(
        "aio-inline-call-remove",
        "an inline call takes the Remove class returned by handle_call as a plain reply",
        "aio/_manager.py",
        "if reply.__class__ not in MAYBE_INSTRUCTION:",
        "if True:",
        _AIO_INLINE,
    ),
    Mutant(
        "aio-rest-after-first-outcome",
        "after the first handler that returned something, the rest of the round is skipped",
        "aio/_dispatch.py",
        "            if result is None:\n                continue",
        "            if result is None:\n                break",
        (_CONF, "-k", "aio"),
    ),
    # -- threads: the mailbox loop, the queued and inline calls, dispatch ------------------
    Mutant(
        "threads-call-remove",
        "a queued call takes the Remove class returned by handle_call as a plain reply",
        "threads/_server.py",
        "if result.__class__ not in MAYBE_INSTRUCTION:  # the core's rule, cheap",
        "if True:",
        _THREADS,
    ),
    Mutant(
        "threads-inline-call-remove",
        "an inline call takes the Remove class returned by handle_call as a plain reply",
        "threads/_server.py",
        "if reply.__class__ in MAYBE_INSTRUCTION:  # the core tells them apart",
        "if False:",
        _THREADS,
    ),
    Mutant(
        "threads-drain-ignores-returns",
        "the mailbox loop ignores what handle_event returns",
        "threads/_server.py",
        "                                if result is not None:\n"
        "                                    i = batch",
        "                                if False:\n                                    i = batch",
        _THREADS,
    ),
    Mutant(
        "threads-drain-keeps-stale-targets",
        "the mailbox loop keeps dispatching to the handlers it read before a crash",
        "threads/_server.py",
        "outcome(entry, Raised(exc), msg)\n"
        "                                targets = core.event_targets",
        "outcome(entry, Raised(exc), msg)",
        _THREADS,
    ),
    Mutant(
        "threads-drain-sole-ignores-returns",
        "the mailbox loop's path for one handler ignores what handle_event returns",
        "threads/_server.py",
        "if result is None:  # the core's needs_attention, inlined",
        "if True:",
        _THREADS,
    ),
    Mutant(
        "threads-drain-sole-keeps-stale-handler",
        "the mailbox loop's path for one handler keeps calling a handler that left",
        "threads/_server.py",
        "outcome(seen[0][0], out, msg)\n                            targets = core.event_targets",
        "outcome(seen[0][0], out, msg)",
        _THREADS,
    ),
    Mutant(
        "threads-dispatch-ignores-returns",
        "an event dispatched outside the loop (sync_notify, inline) ignores what handlers return",
        "threads/_server.py",
        "                if result is not None:\n"
        "                    self.event_outcome(entry, Returned(result), event)",
        "                if False:\n"
        "                    self.event_outcome(entry, Returned(result), event)",
        _THREADS,
    ),
    Mutant(
        "threads-dispatch-uncounted",
        "an event dispatched outside the loop is not counted",
        "threads/_server.py",
        "        core.events += 1\n        for entry, fn in core.event_targets:",
        "        for entry, fn in core.event_targets:",
        ("tests/conformance/test_counts.py", "tests/test_metrics.py", "-k", "threads"),
    ),
    Mutant(
        "threads-interrupt-skips-the-rest",
        "after a KeyboardInterrupt in one handler, the handlers after it never see the event",
        "threads/_stop.py",
        "        rest = core.entries[core.entries.index(entry) + 1 :]",
        "        rest = []",
        (_CONF, "tests/test_threads_hardening.py", "-k", "threads"),
    ),
    # -- bounded mailboxes -------------------------------------------------------------------
    Mutant(
        "mailbox-drop-oldest-drops-a-request",
        "drop_oldest on a full mailbox drops a control request at its head",
        "_mailbox.py",
        "            if is_control(oldest):",
        "            if False:",
        ("tests/test_mailbox.py",),
    ),
    Mutant(
        "mailbox-drop-oldest-uncounted",
        "drop_oldest drops without counting",
        "_mailbox.py",
        "            counts.dropped += 1\n            self.drops.note",
        "            self.drops.note",
        ("tests/test_mailbox.py", "tests/conformance/test_counts.py"),
    ),
    # -- isolated handlers' lanes -------------------------------------------------------------
    Mutant(
        "lane-call-remove",
        "an isolated handler's call takes the Remove class as a plain reply",
        "_lanes/_lane.py",
        "if out.__class__ is Returned and is_plain_reply(out.value):",
        "if out.__class__ is Returned:",
        _ISOLATED,
    ),
    Mutant(
        "lane-ignores-returns",
        "a task lane ignores what handle_event returns",
        "_lanes/_task_lane.py",
        "                    if value is None:\n                        if self.maxsize",
        "                    if True:\n                        if self.maxsize",
        _ISOLATED,
    ),
)


def apply(mutant: Mutant, src: Path) -> None:
    """Apply ``mutant`` to the tree ``src`` (a copy of ``src/``), in place."""
    file = src / "genevent" / mutant.path
    text = file.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"{mutant.name}: its text occurs {count} times in {mutant.path}")
    file.write_text(text.replace(mutant.old, mutant.new))


def run(mutant: Mutant) -> tuple[str, str, float]:
    """Run the mutant's tests on a mutated copy: (verdict, first failing test, seconds)."""
    with tempfile.TemporaryDirectory(prefix="genevent-mutant-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        apply(mutant, src)
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
        # native tracebacks: pytest's own parse of the failing test's source (ast) can stop
        # with an internal error after a KeyboardInterrupt crossed the interpreter's C stack,
        # which would hide the failure the mutant caused
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "--tb=native", "-p", "no:cacheprovider"]
        started = time.perf_counter()
        proc = subprocess.run(
            [*cmd, *mutant.tests], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        took = time.perf_counter() - started
    if proc.returncode == 0:
        return "SURVIVED", "", took
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.MULTILINE)
    if proc.returncode == 1 and failed:
        return "caught", failed.group(1), took
    return f"error (pytest exit {proc.returncode})", proc.stdout[-300:], took


def main(argv: list[str] | None = None) -> int:
    """Run the mutants; exit 1 if any survived."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", action="append", default=[], help="run this mutant only")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:28} {m.path:28} {m.what}")
        return 0
    survived = 0
    for m in chosen:
        verdict, test, took = run(m)
        survived += verdict != "caught"
        print(f"{m.name:28} {verdict:8} {took:6.1f} s  {test}", flush=True)
    print(f"{len(chosen) - survived} of {len(chosen)} mutants caught")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
