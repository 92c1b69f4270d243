"""Server-sent events: phase changes, new rounds and new global models, fanned out to clients.

Publishing never blocks the engine: every subscriber has a bounded queue, and a subscriber too
slow to keep up loses its oldest events (it can always re-read ``GET /state``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "EventBus", "CLOSE"]


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``kind`` is the SSE event name, ``data`` its JSON payload."""

    id: int
    kind: str
    data: dict[str, Any]

    def encode(self) -> str:
        """The event in ``text/event-stream`` framing."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n"


#: What a subscriber's queue yields last when the bus closes (never sent to clients).
CLOSE = Event(0, "close", {})


class EventBus:
    """Fan-out of events to any number of subscribers."""

    def __init__(self, queue_size: int = 64) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._next_id = 1
        self.last: dict[str, Event] = {}
        #: set by :meth:`close`: streams end and new subscribers get nothing
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        event = Event(self._next_id, kind, data)
        self._next_id += 1
        self.last[kind] = event
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest for this slow subscriber
            queue.put_nowait(event)
        return event

    def close(self) -> None:
        """End every stream (server shutdown): each queue gets a final ``close`` event.

        Without this, a server shutting down waits for its graceful-shutdown timeout, since an
        event stream never ends by itself, and meanwhile refuses every new connection.
        """
        self.closed = True
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(CLOSE)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue that receives every event published while the context is open."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        if self.closed:
            queue.put_nowait(CLOSE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
