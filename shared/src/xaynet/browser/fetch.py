"""The coordinator's HTTP API over the browser's ``fetch`` and ``EventSource`` (Pyodide only).

:class:`FetchTransport` is the browser's implementation of
:class:`~xaynet.participant.transport.Transport`. The API itself (retries, decoding) is
:class:`~xaynet.participant.transport.HttpApi`, shared with the CPython ``HttpTransport``; this
module adds one ``fetch`` per request, with a timeout (``AbortSignal.timeout``).

Events come from an ``EventSource`` on ``GET /events``; it reconnects by itself, and when the
browser gives up on it (an answer that is not an event stream) this transport opens a new one
after a backoff. Several agents in one worker must share it through
:class:`xaynet.sdk.fanout.SharedTransport`: a browser allows six HTTP/1.1 connections per
origin, and each open stream holds one.

Importable only inside Pyodide (it imports ``js`` and ``pyodide.ffi``).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js

from xaynet.participant.backoff import Backoff
from xaynet.participant.transport import DEFAULT_RETRY_BACKOFF, Answer, HttpApi, TransportError

__all__ = ["FetchTransport"]

_EVENT_KINDS = ("phase", "round", "model")
_CLOSED = 2  # EventSource.CLOSED: the browser stopped reconnecting
#: The answer headers the API reads.
_HEADERS = ("etag", "content-type", "x-xaynet-round", "x-xaynet-model-id")


class FetchTransport(HttpApi):
    """The coordinator at ``url`` (``""``: the page's own origin) over ``fetch``."""

    def __init__(
        self,
        url: str = "",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(url, retries=retries, backoff=backoff, rng=rng, sleep=sleep)
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<FetchTransport {self.url or 'same origin'}>"

    async def aclose(self) -> None:
        """Nothing to close: the browser owns the connections."""

    async def _send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        options: dict[str, Any] = {
            "method": method,
            "headers": to_js(dict(headers), dict_converter=js.Object.fromEntries),
            "cache": "no-store",
            "signal": js.AbortSignal.timeout(int(self._timeout * 1000)),
        }
        if body is not None:
            options["body"] = to_js(body)
        try:
            response = await js.fetch(
                self.url + path, to_js(options, dict_converter=js.Object.fromEntries)
            )
            data = await response.arrayBuffer()
        except JsException as exc:
            raise TransportError(str(exc)) from exc
        answer_headers = {
            name: value for name in _HEADERS if (value := response.headers.get(name)) is not None
        }
        return Answer(int(response.status), answer_headers, bytes(data.to_bytes()))

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """``GET /events`` as ``(kind, data)`` pairs: ``open`` on every connection, ``error``
        when it broke; the browser reconnects, and after it gives up a new stream is opened."""
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        attempt = 0
        while True:
            source = js.EventSource.new(self.url + "/events")
            proxies = [create_proxy(lambda _e: queue.put_nowait(("open", {})))]
            source.addEventListener("open", proxies[-1])

            def on_error(_event: Any, source: Any = source) -> None:
                closed = int(source.readyState) == _CLOSED
                queue.put_nowait(("error", {"error": "the event stream broke", "closed": closed}))

            proxies.append(create_proxy(on_error))
            source.addEventListener("error", proxies[-1])
            for kind in _EVENT_KINDS:
                proxies.append(
                    create_proxy(lambda e, kind=kind: queue.put_nowait((kind, _parse(e.data))))
                )
                source.addEventListener(kind, proxies[-1])
            try:
                while True:
                    kind, data = await queue.get()
                    if kind == "open":
                        attempt = 0
                    yield kind, data
                    if kind == "error" and data.get("closed"):
                        break
            finally:
                source.close()
                for proxy in proxies:
                    proxy.destroy()
            await self._sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1


def _parse(data: Any) -> Any:
    text = str(data)
    try:
        return json.loads(text)
    except ValueError:
        return text
