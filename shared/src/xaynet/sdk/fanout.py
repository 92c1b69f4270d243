"""Many participants in one process over one transport: one event stream, shared model fetches.

A fleet of agents (``xaynet-test-drive``, simulations) should not open one event stream and one
connection pool per participant. :class:`SharedTransport` wraps one transport and hands out
:meth:`SharedTransport.view` objects, each a full ``Transport`` for one agent:

* requests go through the wrapped transport (its connection pool is shared);
* one ``GET /events`` stream is read and every event is copied to each view's subscriber
  queue (bounded: a slow subscriber loses its oldest events, as with the coordinator's stream);
* ``GET /model`` is single-flight: concurrent fetches share one request, and its answer is
  reused until a ``model`` or ``round`` event arrives or ``model_ttl`` seconds passed.

::

    shared = SharedTransport(HttpTransport(url))
    agents = [Agent(machine, shared.view(), provider) for machine in machines]
    ...
    await shared.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from xaynet.participant.transport import (
    EventsNotSupported,
    GlobalModel,
    PostOutcome,
    Transport,
)
from xaynet.round import RoundParameters

__all__ = ["SharedTransport"]

_CLOSED = ("closed", None)


class SharedTransport:
    """One transport for many agents (see the module docstring)."""

    def __init__(
        self, transport: Transport, *, queue_size: int = 256, model_ttl: float = 1.0
    ) -> None:
        self.transport = transport
        self.url: str = getattr(transport, "url", "the coordinator")
        self._queue_size = queue_size
        self._model_ttl = model_ttl
        self._subscribers: set[asyncio.Queue[tuple[str, Any]]] = set()
        self._reader: asyncio.Task[None] | None = None
        # Whether the stream is connected now: a view that subscribes later still learns it.
        self._open = False
        self._unsupported: EventsNotSupported | None = None
        self._model_fetch: asyncio.Future[GlobalModel | None] | None = None
        self._model_fetched_at = float("-inf")

    def view(self) -> SharedView:
        """A ``Transport`` for one agent."""
        return SharedView(self)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def aclose(self) -> None:
        """Stop the event stream and close the wrapped transport."""
        reader, self._reader = self._reader, None
        self._open = False
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self.transport.aclose()

    # -- events ----------------------------------------------------------------------------------

    def _publish(self, event: tuple[str, Any]) -> None:
        if event[0] == "open":
            self._open = True
        elif event[0] in ("error", "closed"):
            self._open = False
        if event[0] in ("model", "round"):
            self._model_fetched_at = float("-inf")
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def _read(self) -> None:
        try:
            async for event in self.transport.events():
                self._publish(event)
        except EventsNotSupported as exc:
            self._unsupported = exc
            self._publish(_CLOSED)

    async def _events(self) -> AsyncIterator[tuple[str, Any]]:
        if self._unsupported is not None:
            raise self._unsupported
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        if self._open:
            queue.put_nowait(("open", {}))
        try:
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())
            while True:
                event = await queue.get()
                if event == _CLOSED and self._unsupported is not None:
                    raise self._unsupported
                yield event
        finally:
            self._subscribers.discard(queue)

    # -- the global model ------------------------------------------------------------------------

    async def _get_model(self) -> GlobalModel | None:
        loop = asyncio.get_running_loop()
        fetch = self._model_fetch
        fresh = loop.time() - self._model_fetched_at < self._model_ttl
        if fetch is None or not (fresh or not fetch.done()):
            fetch = self._model_fetch = loop.create_task(self._fetch_model())
        return await asyncio.shield(fetch)

    async def _fetch_model(self) -> GlobalModel | None:
        try:
            return await self.transport.get_model()
        except BaseException:
            self._model_fetch = None  # do not cache a failure
            raise
        finally:
            self._model_fetched_at = asyncio.get_running_loop().time()


class SharedView:
    """One agent's ``Transport`` on a :class:`SharedTransport`; closing it closes nothing."""

    def __init__(self, shared: SharedTransport) -> None:
        self.shared = shared
        self.url = shared.url

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        return await self.shared.transport.get_params(etag)

    async def get_sums(self) -> dict[bytes, bytes] | None:
        return await self.shared.transport.get_sums()

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        return await self.shared.transport.get_seeds(summer_pk)

    async def get_model(self) -> GlobalModel | None:
        return await self.shared._get_model()

    async def post_message(self, body: bytes) -> PostOutcome:
        return await self.shared.transport.post_message(body)

    def events(self) -> AsyncIterator[tuple[str, Any]]:
        return self.shared._events()

    async def aclose(self) -> None:
        """Nothing to do: the :class:`SharedTransport` owns the connections."""
