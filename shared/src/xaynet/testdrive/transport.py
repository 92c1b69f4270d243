"""The fleet's side of HTTP: one httpx client for all participants, bounded and coalescing.

:func:`http_client` builds the one ``httpx.AsyncClient`` (connection pool, timeouts, TLS, a
:class:`Traffic` counter on every request); :class:`Gate` sits between the SDK's
``HttpTransport`` and the ``SharedTransport`` that hands each participant its view.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from xaynet import __version__
from xaynet.participant.transport import GlobalModel, PostOutcome
from xaynet.round import RoundParameters
from xaynet.sdk.http import ClientCert, HttpTransport, ssl_context

__all__ = ["Traffic", "Gate", "http_client"]

_T = TypeVar("_T")


@dataclass
class Traffic:
    """HTTP bodies per endpoint (``"POST /message"``): requests, bytes sent and received.

    Bodies only: headers add a few hundred bytes per request. A streamed answer (the event
    stream) counts no received bytes.
    """

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    received: collections.Counter[str] = field(default_factory=collections.Counter)
    #: answers with a non-empty body (not 204 or 304)
    bodies: collections.Counter[str] = field(default_factory=collections.Counter)

    async def on_request(self, request: httpx.Request) -> None:
        key = f"{request.method} {request.url.path}"
        self.requests[key] += 1
        length = request.headers.get("content-length")
        if length is not None and length.isdigit():
            self.sent[key] += int(length)

    async def on_response(self, response: httpx.Response) -> None:
        key = f"{response.request.method} {response.request.url.path}"
        length = response.headers.get("content-length")
        if length is not None and length.isdigit():
            self.received[key] += int(length)
            if int(length):
                self.bodies[key] += 1

    def to_json(self) -> dict[str, dict[str, int]]:
        return {
            key: {
                "requests": self.requests[key],
                "sent": self.sent[key],
                "received": self.received[key],
                "bodies": self.bodies[key],
            }
            for key in sorted(self.requests)
        }


def http_client(
    url: str,
    *,
    connections: int,
    timeout: float,
    verify: bool | str,
    client_cert: ClientCert | None,
    traffic: Traffic,
) -> httpx.AsyncClient:
    """The client of a fleet: ``connections`` pooled connections, TLS as in the SDK."""
    tls: Any = True
    if verify is not True or client_cert is not None:
        tls = ssl_context(verify, client_cert)
    # Waiting for a free connection is not a failure (pool=None): the connect and read
    # timeouts still apply.
    return httpx.AsyncClient(
        base_url=url.rstrip("/"),
        timeout=httpx.Timeout(timeout, pool=None),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        verify=tls,
        headers={"User-Agent": f"xaynet-test-drive/{__version__}"},
        event_hooks={"request": [traffic.on_request], "response": [traffic.on_response]},
    )


class Gate:
    """The fleet's transport under the :class:`SharedTransport`: bounded and coalescing.

    * At most ``slots`` requests are in flight: httpx's connection pool scans its whole queue
      for every request it assigns, which turns quadratic with a thousand queued requests.
    * With ``coalesce``, concurrent ``GET /params`` (same ETag) and ``GET /sums`` share one
      request, as an HTTP cache in front of the coordinator would serve them (the coordinator
      marks them cacheable). A request started before the latest event from the stream is not
      shared with later callers, so nobody gets an answer older than the event that woke it.
    """

    def __init__(self, inner: HttpTransport, *, slots: int, coalesce: bool) -> None:
        self.inner = inner
        self.url = inner.url
        self.coalesce = coalesce
        self._slots = asyncio.Semaphore(slots)
        self._generation = 0
        self._flights: dict[tuple[Any, ...], asyncio.Future[Any]] = {}

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        async with self._slots:
            return await call()

    async def _shared(self, key: tuple[Any, ...], call: Callable[[], Awaitable[_T]]) -> _T:
        if not self.coalesce:
            return await self._call(call)
        key = (*key, self._generation)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._call(call))
            self._flights[key] = flight
            flight.add_done_callback(functools.partial(self._landed, key))
        result: _T = await asyncio.shield(flight)
        return result

    def _landed(self, key: tuple[Any, ...], flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        return await self._shared(("params", etag), lambda: self.inner.get_params(etag))

    async def get_sums(self) -> dict[bytes, bytes] | None:
        return await self._shared(("sums",), self.inner.get_sums)

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        return await self._call(lambda: self.inner.get_seeds(summer_pk))

    async def get_model(self) -> GlobalModel | None:
        return await self._call(self.inner.get_model)

    async def post_message(self, body: bytes) -> PostOutcome:
        return await self._call(lambda: self.inner.post_message(body))

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        async for event in self.inner.events():
            self._generation += 1
            yield event

    async def aclose(self) -> None:
        await self.inner.aclose()
