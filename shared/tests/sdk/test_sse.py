"""The server-sent events parser: framing, fields, and text cut at any point."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from hypothesis import given
from hypothesis import strategies as st

from xaynet.sdk._sse import ServerSentEvent, SSEParser

STREAM = (
    'id: 1\nevent: phase\ndata: {"phase": "sum"}\n\n'
    ": keep-alive\n\n"
    "event: round\r\ndata: a\r\ndata: b\r\n\r\n"
    "data:no space\rid: 7\r\r"
    "retry: 1500\nevent: ignored-without-data\n\n"
    "event: model\nunknown: x\ndata\n\n"
)
EXPECTED = [
    ServerSentEvent("phase", '{"phase": "sum"}', "1"),
    ServerSentEvent("round", "a\nb", "1"),
    ServerSentEvent("message", "no space", "7"),
    ServerSentEvent("model", "", "7"),
]


def test_a_stream_in_one_piece() -> None:
    parser = SSEParser()
    assert parser.feed(STREAM) == EXPECTED
    assert parser.retry == 1500
    assert parser.last_id == "7"


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    parser = SSEParser()
    events = []
    start = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        events += parser.feed(STREAM[start:cut])
        start = cut
    assert events == EXPECTED


def test_an_unfinished_event_is_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed("event: round\ndata: x\n") == []
    assert parser.feed("\n") == [ServerSentEvent("round", "x")]


def test_ids_with_nul_and_bad_retry_values_are_ignored() -> None:
    parser = SSEParser()
    parser.feed("id: a\0b\nretry: 12a\ndata: x\n\n")
    assert parser.last_id is None
    assert parser.retry is None
