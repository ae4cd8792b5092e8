"""Clear errors for common first mistakes: the asyncio runtime started from plain code."""

from __future__ import annotations

import pytest

from genevent import WrongRuntime, aio


def test_aio_start_outside_a_running_loop_says_what_to_do() -> None:
    with pytest.raises(WrongRuntime) as info:
        aio.start()
    assert isinstance(info.value, RuntimeError)
    text = str(info.value)
    assert "needs a running event loop" in text
    assert "async def main()" in text
    assert "asyncio.run(main())" in text
    assert "genevent.threads.start()" in text


# -- the genevent command ---------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import genevent  # noqa: PLC0415
    from genevent.__main__ import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"genevent {genevent.__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["top", "--help"], ["notify", "--help"]])
def test_help_is_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from genevent.__main__ import main  # noqa: PLC0415

    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert "usage: genevent" in out
    assert "`" not in out


@pytest.mark.parametrize("command", ["ls", "node", "notify", "call"])
def test_nats_commands_without_the_extra_name_it(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys  # noqa: PLC0415

    from genevent.__main__ import main  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "genevent.nats._cli", None)  # the extra is missing
    assert main([command, "--server", "nats://x", "NAME"]) == 2
    err = capsys.readouterr().err
    assert f"genevent {command} needs the nats extra" in err
    assert "pip install -e '.[nats]'" in err
    assert "invalid choice" not in err


@pytest.mark.parametrize(
    ("argv", "what"),
    [(["notify", "NAME", "hello"], "event"), (["call", "NAME", "H", "{oops"], "request")],
)
def test_a_value_that_is_not_json_is_explained(
    argv: list[str], what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("nats")
    from genevent.__main__ import main  # noqa: PLC0415

    assert main(argv) == 2  # refused before connecting to anything
    err = capsys.readouterr().err
    assert f"the {what} must be JSON" in err
    assert """'{"kind": "ping"}'""" in err
    assert """'"text"'""" in err
    assert "Traceback" not in err
    assert "JSONDecodeError" not in err


def test_top_fits_80_columns() -> None:
    pytest.importorskip("rich")
    from rich.console import Console  # noqa: PLC0415

    from genevent import threads  # noqa: PLC0415
    from genevent.top import render, snapshot  # noqa: PLC0415
    from tests.handlers import NoInfo, Recorder, Spec  # noqa: PLC0415

    with threads.start("orders") as mgr:
        mgr.add_handler(NoInfo, Spec(Recorder()))
        mgr.subscribe(lambda event: None)
        mgr.sync_notify(1)
        snap = snapshot([mgr])
    console = Console(record=True, width=80, color_system=None)
    console.print(render(snap, None, 80))
    lines = console.export_text().splitlines()
    assert "genevent: 1 manager" in lines[0]
    header = next(line for line in lines if "state" in line)
    assert header.split() == [
        "name",
        "state",
        "queue",
        "high",
        "ev/s",
        "events",
        "drop",
        "refus",
        "crash",
        "rest",
        "p50ms",
        "p99ms",
    ]
    assert any(line.split()[:1] == ["<lambda>()"] for line in lines)
    assert not any("…" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)
