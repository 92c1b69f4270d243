"""An incremental parser of ``text/event-stream`` (server-sent events), fed text as it arrives.

Follows the WHATWG event-stream interpretation: lines end in CR LF, LF or CR; ``event``,
``data``, ``id`` and ``retry`` fields; comment lines start with a colon; a blank line dispatches
the event (without any ``data`` line nothing is dispatched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ServerSentEvent", "SSEParser"]

_LINE_END = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: ``kind`` is the event name (``message`` by default)."""

    kind: str
    data: str
    id: str | None = None


class SSEParser:
    """Feed text chunks with :meth:`feed`; it returns the events they complete."""

    def __init__(self) -> None:
        self._buffer = ""
        self._kind = ""
        self._data: list[str] = []
        #: the last event id seen (for ``Last-Event-ID`` on reconnection)
        self.last_id: str | None = None
        #: the reconnection time the server asked for, in milliseconds
        self.retry: int | None = None

    def feed(self, text: str) -> list[ServerSentEvent]:
        self._buffer += text
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            match = _LINE_END.search(self._buffer, start)
            if match is None:
                break
            if match.group() == "\r" and match.end() == len(self._buffer):
                break  # a CR at the end may be the first half of CR LF: wait for more text
            event = self._line(self._buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = self._buffer[start:]
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._kind = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, kind = self._data, self._kind
        self._data, self._kind = [], ""
        if not data:
            return None
        return ServerSentEvent(kind or "message", "\n".join(data), self.last_id)
