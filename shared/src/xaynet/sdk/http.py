"""The coordinator's HTTP API over httpx (CPython): an implementation of ``Transport``.

:class:`HttpTransport` speaks the JSON/raw API of docs/PROTOCOL.md, section 10:

* every request has a timeout; network errors and 5xx answers are retried ``retries`` times with
  exponential backoff and jitter (from an injectable ``random.Random``) before a
  :class:`~xaynet.participant.transport.TransportError` is raised -- except ``POST /message``
  answers that carry a reason word (e.g. 503 ``storage_unavailable``): those are protocol answers
  for the state machine;
* ``GET /params`` sends ``If-None-Match`` so an unchanged round costs a 304;
* ``GET /model`` asks for the raw little-endian float64 array (8 bytes per value, no JSON);
* :meth:`HttpTransport.events` follows ``GET /events`` and reconnects by itself; a coordinator
  without the stream raises :class:`~xaynet.participant.transport.EventsNotSupported` and the
  driver polls ``/params`` instead;
* TLS: ``verify`` is ``True`` (system trust), ``False`` (no verification, for tests only) or
  the path of a PEM CA bundle; ``client_cert`` is a PEM file holding certificate and key, or a
  ``(certificate, key)`` pair of paths, for mutual TLS.

This module imports httpx and numpy; ``xaynet`` itself never imports it.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import numpy as np

from xaynet import __version__
from xaynet.participant.backoff import Backoff
from xaynet.participant.transport import (
    DEFAULT_RETRY_BACKOFF,
    Answer,
    EventsNotSupported,
    HttpApi,
    TransportError,
)
from xaynet.sdk._sse import SSEParser

__all__ = ["HttpTransport", "ssl_context", "DEFAULT_RETRY_BACKOFF"]

#: A silent event stream is dead after this long: the coordinator sends a keep-alive every 15 s.
EVENTS_READ_TIMEOUT = 45.0

Sleep = Callable[[float], Awaitable[None]]
ClientCert = str | tuple[str, str]


def ssl_context(verify: bool | str = True, client_cert: ClientCert | None = None) -> ssl.SSLContext:
    """The TLS context for ``verify`` and ``client_cert`` (see the module docstring)."""
    if isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        if isinstance(client_cert, str):
            context.load_cert_chain(client_cert)
        else:
            context.load_cert_chain(client_cert[0], client_cert[1])
    return context


class HttpTransport(HttpApi):
    """The coordinator at ``url`` (e.g. ``http://127.0.0.1:8081``) over httpx.

    ``client`` replaces the internal ``httpx.AsyncClient`` (tests pass one with a mock
    transport; its base URL must then be set). ``sleep`` is the coroutine used between retries.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        verify: bool | str = True,
        client_cert: ClientCert | None = None,
        retries: int = 2,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        events_read_timeout: float = EVENTS_READ_TIMEOUT,
    ) -> None:
        super().__init__(url, retries=retries, backoff=backoff, rng=rng, sleep=sleep)
        self._timeout = timeout
        self._events_read_timeout = events_read_timeout
        if client is None:
            tls: ssl.SSLContext | bool = True
            if verify is not True or client_cert is not None:
                tls = ssl_context(verify, client_cert)
            client = httpx.AsyncClient(
                base_url=self.url,
                timeout=timeout,
                verify=tls,
                headers={"User-Agent": f"xaynet-sdk/{__version__}", **(headers or {})},
            )
        self._client = client

    def __repr__(self) -> str:
        return f"<HttpTransport {self.url}>"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        try:
            response = await self._client.request(method, path, headers=headers, content=body)
        except httpx.TransportError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        return Answer(response.status_code, response.headers, response.content)

    def _values(self, values: list[float]) -> Any:
        return np.asarray(values, dtype=np.float64)

    def _raw_values(self, raw: bytes) -> Any:
        return np.frombuffer(raw, dtype="<f8").astype(np.float64)

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """``GET /events`` as ``(kind, data)`` pairs, reconnecting after errors.

        Yields ``("open", {})`` on every connection and ``("error", {"error": ...})`` when the
        stream broke, then reconnects after a backoff. Raises :class:`EventsNotSupported` if the
        coordinator has no event stream.
        """
        attempt = 0
        timeout = httpx.Timeout(self._timeout, read=self._events_read_timeout)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        while True:
            try:
                async with self._client.stream(
                    "GET", "/events", headers=headers, timeout=timeout
                ) as response:
                    kind = response.headers.get("content-type", "")
                    if response.status_code in (404, 405, 501) or (
                        response.status_code == 200 and not kind.startswith("text/event-stream")
                    ):
                        raise EventsNotSupported(
                            f"{self.url}/events: HTTP {response.status_code} {kind}".rstrip()
                        )
                    if response.status_code != 200:
                        error = f"{self.url}/events: HTTP {response.status_code}"
                    else:
                        attempt = 0
                        yield "open", {}
                        parser = SSEParser()
                        async for text in response.aiter_text():
                            for event in parser.feed(text):
                                yield event.kind, _parse_data(event.data)
                        error = "the event stream ended"
            except httpx.TransportError as exc:
                error = f"{self.url}/events: {type(exc).__name__}: {exc}".rstrip(": ")
            yield "error", {"error": error}
            await self._sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1


def _parse_data(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data
