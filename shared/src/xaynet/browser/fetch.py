"""The coordinator's HTTP API over the browser's ``fetch`` and ``EventSource`` (Pyodide only).

:class:`FetchTransport` is the browser's implementation of
:class:`~xaynet.participant.transport.Transport`; it behaves like the CPython
``xaynet.sdk.http.HttpTransport``: a timeout on every request (``AbortSignal.timeout``),
network errors and 5xx answers retried with backoff and jitter, ``If-None-Match`` on
``GET /params``, the raw float64 model from ``GET /model``, and ``POST /message`` answers with
a reason word handed to the state machine as they are.

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
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js

from xaynet.errors import DecodeError
from xaynet.participant.backoff import Backoff
from xaynet.participant.transport import (
    GlobalModel,
    PostOutcome,
    TransportError,
    decode_global_model,
    decode_key_map,
    decode_post_outcome,
)
from xaynet.round import RoundParameters

__all__ = ["FetchTransport", "FetchAnswer"]

OCTET_STREAM = "application/octet-stream"
DEFAULT_RETRY_BACKOFF = Backoff(initial=0.2, factor=2.0, maximum=5.0, jitter=0.5)
_EVENT_KINDS = ("phase", "round", "model")
_CLOSED = 2  # EventSource.CLOSED: the browser stopped reconnecting


class FetchAnswer:
    """Status, headers and body of one ``fetch``."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise DecodeError(f"{what}: the answer is not JSON: {exc}") from None

    def maybe_json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class FetchTransport:
    """The coordinator at ``url`` (``""`` or ``"/"``: the page's own origin) over ``fetch``."""

    def __init__(
        self,
        url: str = "",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_request: Callable[[str, str, int | None, int], None] | None = None,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError("retries must be an integer >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        #: ``on_request(method, path, status or None, bytes sent)`` after every fetch (the page's
        #: traffic counters)
        self._on_request = on_request

    def __repr__(self) -> str:
        return f"<FetchTransport {self.url or 'same origin'}>"

    async def aclose(self) -> None:
        """Nothing to close: the browser owns the connections."""

    # -- requests with retries -------------------------------------------------------------------

    async def _fetch_once(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> FetchAnswer:
        options: dict[str, Any] = {
            "method": method,
            "headers": to_js(dict(headers), dict_converter=js.Object.fromEntries),
            "cache": "no-store",
            "signal": js.AbortSignal.timeout(int(self._timeout * 1000)),
        }
        if body is not None:
            options["body"] = to_js(body)
        init = to_js(options, dict_converter=js.Object.fromEntries)
        response = await js.fetch(self.url + path, init)
        data = await response.arrayBuffer()
        answer_headers = {
            name: value
            for name in ("etag", "content-type", "x-xaynet-round", "x-xaynet-model-id")
            if (value := response.headers.get(name)) is not None
        }
        return FetchAnswer(int(response.status), answer_headers, bytes(data.to_bytes()))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        final: Callable[[FetchAnswer], bool] = lambda answer: answer.status < 500,
    ) -> FetchAnswer:
        error = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await self._sleep(self._backoff.delay(attempt - 1, self._rng))
            try:
                answer = await self._fetch_once(method, path, headers or {}, body)
            except JsException as exc:
                error = f"{method} {self.url}{path}: {exc}"
                self._report(method, path, None, body)
                continue
            self._report(method, path, answer.status, body)
            if final(answer):
                return answer
            error = f"{method} {self.url}{path}: HTTP {answer.status}"
        raise TransportError(f"{error} (after {self._retries + 1} attempts)")

    def _report(self, method: str, path: str, status: int | None, body: bytes | None) -> None:
        if self._on_request is not None:
            self._on_request(method, path, status, len(body) if body is not None else 0)

    def _unexpected(self, answer: FetchAnswer, path: str) -> TransportError:
        text = answer.body[:200].decode("utf-8", "replace")
        return TransportError(f"GET {self.url}{path}: unexpected HTTP {answer.status}: {text}")

    # -- the API ---------------------------------------------------------------------------------

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        answer = await self._request(
            "GET", "/params", headers={"If-None-Match": etag} if etag else {}
        )
        if answer.status == 304:
            return None, answer.headers.get("etag", etag)
        if answer.status == 204:
            return None, None
        if answer.status != 200:
            raise self._unexpected(answer, "/params")
        params = RoundParameters.from_json_dict(answer.json("round parameters"))
        return params, answer.headers.get("etag")

    async def get_sums(self) -> dict[bytes, bytes] | None:
        answer = await self._request("GET", "/sums")
        if answer.status == 204:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, "/sums")
        return decode_key_map(answer.json("sum dict"), "sum dict")

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        answer = await self._request("GET", f"/seeds?pk={bytes(summer_pk).hex()}")
        if answer.status == 204:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, "/seeds")
        return decode_key_map(answer.json("seed dict"), "seed dict")

    async def get_model(self) -> GlobalModel | None:
        answer = await self._request("GET", "/model", headers={"Accept": OCTET_STREAM})
        if answer.status == 204:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, "/model")
        if answer.headers.get("content-type", "").startswith(OCTET_STREAM):
            raw, round_header = answer.body, answer.headers.get("x-xaynet-round", "")
            if len(raw) % 8 or not round_header.isdigit():
                raise DecodeError("global model: a raw model is float64 values with a round id")
            model_id = answer.headers.get("x-xaynet-model-id")
            values = list(struct.unpack(f"<{len(raw) // 8}d", raw))
            return GlobalModel(
                int(round_header), None if model_id in (None, "initial") else model_id, values
            )
        return decode_global_model(answer.json("global model"))

    async def post_message(self, body: bytes) -> PostOutcome:
        def final(answer: FetchAnswer) -> bool:
            # A 5xx with a reason word is the coordinator speaking; one without is worth a retry.
            return (
                answer.status < 500
                or decode_post_outcome(answer.status, answer.maybe_json()) is not None
            )

        answer = await self._request(
            "POST",
            "/message",
            headers={"Content-Type": OCTET_STREAM},
            body=bytes(body),
            final=final,
        )
        outcome = decode_post_outcome(answer.status, answer.maybe_json())
        if outcome is None:
            text = answer.body[:200].decode("utf-8", "replace")
            return PostOutcome(answer.status, f"http_{answer.status}", text)
        return outcome

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
