"""``python -m benchmarks --plot DIR`` writes its SVG plots (a quick run of one scenario; the
figures themselves are never judged here)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_plot_writes_the_svg_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.__main__ import main  # noqa: PLC0415 - after the path is set
    from benchmarks._plots import FILES  # noqa: PLC0415

    out = tmp_path / "plots"
    assert main(["--quick", "--only", "fan-out, 10 handlers", "--plot", str(out)]) == 0
    for name in FILES:
        text = (out / name).read_text(encoding="utf-8")
        assert "<svg" in text, name
