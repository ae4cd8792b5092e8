"""HandlerNotFound for an id that was installed says how it left; a close id is named; on
every runtime."""

from __future__ import annotations

import pytest

from genevent import HandlerNotFound, Remove
from tests.handlers import H2, H, Recorder, Spec, raise_, returns
from tests.runtimes import Runtime


def test_a_crashed_handler_says_why_it_left(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, Spec(rec, "f", event=raise_(ValueError("bad input"))))
    m.sync_notify("boom")
    for request in ("call", "delete_handler"):
        with pytest.raises(HandlerNotFound) as info:
            m.call(H, "q") if request == "call" else m.delete_handler(H)
        text = str(info.value)
        assert text.startswith("handler H is not installed; it crashed in handle_event")
        assert "(ValueError: bad input)" in text
        if rt.name != "nats":  # the text crosses the wire, the object does not
            assert info.value.left is not None
            assert info.value.left.how == "crashed"


def test_every_way_of_leaving_is_named(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "bad"), Spec(rec, "b", event=returns(42)))
    m.add_handler((H, "rm"), Spec(rec, "r", event=returns(Remove())))
    m.add_handler((H, "del"), Spec(rec, "d"))
    m.add_handler((H, "old"), Spec(rec, "o"))
    m.sync_notify("go")
    m.delete_handler((H, "del"))
    m.swap_handler((H, "old"), None, (H2, "new"), Spec(rec, "n"))
    expected = {
        (H, "bad"): "it returned a bad value from handle_event: 42",
        (H, "rm"): "it removed itself (returned Remove())",
        (H, "del"): "it was deleted (delete_handler)",
        (H, "old"): "it was swapped for (H2, 'new') (swap_handler)",
    }
    for ref, text in expected.items():
        with pytest.raises(HandlerNotFound) as info:
            m.call(ref, "q")
        assert text in str(info.value)


def test_a_close_id_is_named(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "eu"), Spec(rec, "eu"))
    with pytest.raises(HandlerNotFound) as info:
        m.call((H, "ue"), "q")
    assert str(info.value) == "handler (H, 'ue') is not installed; did you mean (H, 'eu')?"
    with pytest.raises(HandlerNotFound, match=r"did you mean \(H, 'eu'\)\?"):
        m.delete_handler(H)
