"""``python -m benchmarks [--quick] [--json FILE] [--only SUBSTRING] [--plot DIR]``: run,
print, judge (and plot).

Exits 0 when every measurement ran (missing optional peers and OTP are skips, not failures),
1 when a measurement raised: the quick run in CI keeps the suite from rotting. Timing figures are
never asserted on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from types import ModuleType

from . import _baselines, _memory, _otp, _peers, _targets
from . import _harness as h


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts, seconds")
    p.add_argument("--json", metavar="FILE", help="also write the rows and targets as JSON")
    p.add_argument("--only", metavar="SUBSTRING", help="only scenarios whose name contains this")
    p.add_argument("--plot", metavar="DIR", help="also write SVG plots into DIR (needs matplotlib)")
    return p.parse_args(argv)


def genevent_module(cfg: h.Config) -> ModuleType | None:
    """``_genevent_rows``, or None (and a line saying why) when genevent cannot be imported."""
    try:
        from . import _genevent_rows  # noqa: PLC0415 - lazy on purpose
    except ImportError as exc:
        print(f"genevent rows skipped: {exc}", flush=True)
        cfg.meta["genevent"] = f"skipped: {exc}"
        return None
    cfg.meta["genevent"] = "measured"
    return _genevent_rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; the exit status says whether every measurement ran."""
    args = parse_args(argv)
    cfg = h.Config.make(quick=args.quick, only=args.only)
    cfg.meta.update(
        quick=cfg.quick,
        only=cfg.only,
        python=platform.python_version(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    t0 = time.perf_counter()
    genevent = genevent_module(cfg)
    benches = _baselines.benches(cfg) + _peers.benches(cfg)
    if genevent is not None:
        from . import _genevent_load  # noqa: PLC0415 - imports genevent, as _genevent_rows

        benches += genevent.benches(cfg) + _genevent_load.benches(cfg)
    otp_runs = [_otp.measure(cfg)]
    rows = h.run(benches)
    if not cfg.quick:
        otp_runs.append(_otp.measure(cfg))
    otp_runs += _otp.measure_memory(cfg)
    rows += _otp.rows(cfg, otp_runs)
    rows += _memory.rows(cfg)
    if genevent is not None:
        rows += genevent.memory_rows(cfg)
        rows += genevent.flood_rows(cfg)
        rows += genevent.scale_rows(cfg)
    rows += _memory.fit_rows(cfg, rows)
    cfg.meta["seconds"] = round(time.perf_counter() - t0, 1)

    kind = "quick smoke run (tiny counts: figures are not meaningful)" if cfg.quick else "full run"
    print(
        f"genevent benchmarks: {kind}; Python {cfg.meta['python']}, {cfg.meta['cpus']} CPUs, "
        f"{cfg.meta['seconds']} s"
    )
    if cfg.meta.get("otp") is False:
        print(f"OTP gen_event: {_otp.NOT_FOUND}")
    elif cfg.meta.get("otp_release"):
        print(f"OTP gen_event: OTP {cfg.meta['otp_release']} via escript")
    if not rows:
        print(f"no scenario matches --only {cfg.only!r}")
        return 2
    h.print_table(rows)
    targets = _targets.evaluate(rows, cfg)
    _targets.print_targets(targets)
    if args.json:
        h.write_json(args.json, rows, targets, cfg.meta)
        print(f"\nwrote {args.json}")
    if args.plot:
        from . import _plots  # noqa: PLC0415 - matplotlib only when asked for

        for path in _plots.write(rows, args.plot):
            print(f"wrote {path}")
    errors = [r for r in rows if r.error]
    if errors:
        print(f"\n{len(errors)} measurement(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
