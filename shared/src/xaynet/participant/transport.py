"""What a participant needs from the network, as an interface, and the decoding of the answers.

:class:`Transport` is the coordinator's HTTP API (docs/PROTOCOL.md, section 10) seen from a
participant, as async methods. ``xaynet.sdk.http.HttpTransport`` implements it with httpx on
CPython; the browser participant implements it with ``fetch``. The driver
(``xaynet.sdk.agent``) feeds the results to a
:class:`~xaynet.participant.machine.ParticipantMachine`.

Two kinds of failure are kept apart:

* :class:`TransportError` -- the request did not get a usable answer (network error, timeout,
  a 5xx without a protocol answer, after the transport's own retries). Retry later.
* protocol answers -- ``POST /message`` always returns a :class:`PostOutcome` (status and reason
  word), which the state machine interprets; a ``GET`` that finds nothing returns ``None``.

The helpers below turn the JSON bodies (byte strings as hex) into Python values, so every
transport decodes them the same way; malformed bodies raise
:class:`~xaynet.errors.DecodeError`.
"""

from __future__ import annotations

import abc
import asyncio
import json
import random
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from xaynet.errors import DecodeError, XaynetError
from xaynet.participant.backoff import Backoff
from xaynet.round import RoundParameters

__all__ = [
    "Transport",
    "HttpApi",
    "Answer",
    "DEFAULT_RETRY_BACKOFF",
    "OCTET_STREAM",
    "TransportError",
    "EventsNotSupported",
    "PostOutcome",
    "GlobalModel",
    "decode_key_map",
    "decode_post_outcome",
    "decode_global_model",
]

OCTET_STREAM = "application/octet-stream"
#: Backoff between a transport's own retries of one request.
DEFAULT_RETRY_BACKOFF = Backoff(initial=0.2, factor=2.0, maximum=5.0, jitter=0.5)

_KEY_HEX = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


class TransportError(XaynetError):
    """A request to the coordinator got no usable answer (network error, timeout, 5xx).

    Not a protocol violation by either side: retrying later is the remedy.
    """


class EventsNotSupported(TransportError):  # noqa: N818 - a condition, not a failure
    """The coordinator serves no event stream: the driver polls instead."""


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The coordinator's answer to ``POST /message``: HTTP status, reason word and detail."""

    status: int
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError("PostOutcome.status must be an int")
        if not isinstance(self.reason, str) or not isinstance(self.detail, str):
            raise TypeError("PostOutcome.reason and detail must be strings")


@dataclass(frozen=True, slots=True, eq=False)
class GlobalModel:
    """A global model published by the coordinator.

    ``values`` is a float64 numpy array from the httpx transport, a list of floats from
    transports without numpy. ``model_id`` is ``None`` for an initial model configured on the
    coordinator (no round produced it). Compare models by :attr:`key`.
    """

    round_id: int
    model_id: str | None
    values: Any

    def __post_init__(self) -> None:
        if isinstance(self.round_id, bool) or not isinstance(self.round_id, int):
            raise TypeError("GlobalModel.round_id must be an int")

    @property
    def key(self) -> tuple[int, str | None]:
        """What tells two published models apart."""
        return (self.round_id, self.model_id)


class Transport(Protocol):
    """The coordinator's API for one participant. Every method may raise :class:`TransportError`.

    ``get_params`` returns ``(None, etag)`` when the parameters did not change since ``etag``
    (304) or when there is no round yet (204). ``get_sums`` / ``get_seeds`` return ``None`` while
    the dictionary is not published (204). ``events`` yields ``(kind, data)`` pairs from
    ``GET /events`` -- ``phase``, ``round``, ``model`` with their JSON data, plus ``open`` on
    every (re)connection and ``error`` when the stream broke (it reconnects by itself) -- or
    raises :class:`EventsNotSupported`.
    """

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]: ...

    async def get_sums(self) -> dict[bytes, bytes] | None: ...

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None: ...

    async def get_model(self) -> GlobalModel | None: ...

    async def post_message(self, body: bytes) -> PostOutcome: ...

    def events(self) -> AsyncIterator[tuple[str, Any]]: ...

    async def aclose(self) -> None: ...


# -- the API over one request primitive ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

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

    def text(self, limit: int = 200) -> str:
        return self.body[:limit].decode("utf-8", "replace")


class HttpApi(abc.ABC):
    """The coordinator's API (docs/PROTOCOL.md, section 10) over one request primitive.

    A subclass implements :meth:`_send` (one request, no retry; a network failure raises
    :class:`TransportError`), :meth:`events` and :meth:`aclose`. Everything else is here, the
    same for every runtime: network errors and 5xx answers are retried ``retries`` times with
    backoff and jitter -- except ``POST /message`` answers with a reason word, which are
    protocol answers for the state machine; ``If-None-Match`` on ``GET /params``; the raw
    float64 model.
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 2,
        backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError("retries must be an integer >= 0")
        self.url = url.rstrip("/")
        self._retries = retries
        self._backoff = backoff
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep

    @abc.abstractmethod
    async def _send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """One request; raises :class:`TransportError` when no answer came."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[tuple[str, Any]]:
        """``GET /events`` as ``(kind, data)`` pairs (see :class:`Transport`)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the connections."""

    def _values(self, values: list[float]) -> Any:
        """The model values as this transport hands them out (a list; numpy on CPython)."""
        return values

    def _raw_values(self, raw: bytes) -> Any:
        """Little-endian float64 values as this transport hands them out."""
        return self._values(list(struct.unpack(f"<{len(raw) // 8}d", raw)))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        final: Callable[[Answer], bool] = lambda answer: answer.status < 500,
    ) -> Answer:
        """Send a request, retrying network errors and answers ``final`` refuses."""
        error = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await self._sleep(self._backoff.delay(attempt - 1, self._rng))
            try:
                answer = await self._send(method, path, headers or {}, body)
            except TransportError as exc:
                error = f"{method} {self.url}{path}: {exc}".rstrip(": ")
                continue
            if final(answer):
                return answer
            error = f"{method} {self.url}{path}: HTTP {answer.status}"
        raise TransportError(f"{error} (after {self._retries + 1} attempts)")

    def _unexpected(self, answer: Answer, path: str) -> TransportError:
        return TransportError(
            f"GET {self.url}{path}: unexpected HTTP {answer.status}: {answer.text()}".rstrip(": ")
        )

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
        return await self._key_map("/sums", "sum dict")

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        return await self._key_map(f"/seeds?pk={bytes(summer_pk).hex()}", "seed dict")

    async def _key_map(self, path: str, what: str) -> dict[bytes, bytes] | None:
        answer = await self._request("GET", path)
        if answer.status == 204:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, path.partition("?")[0])
        return decode_key_map(answer.json(what), what)

    async def get_model(self) -> GlobalModel | None:
        answer = await self._request("GET", "/model", headers={"Accept": OCTET_STREAM})
        if answer.status == 204:
            return None
        if answer.status != 200:
            raise self._unexpected(answer, "/model")
        if not answer.headers.get("content-type", "").startswith(OCTET_STREAM):
            model = decode_global_model(answer.json("global model"))
            return GlobalModel(model.round_id, model.model_id, self._values(model.values))
        raw, round_header = answer.body, answer.headers.get("x-xaynet-round", "")
        if len(raw) % 8 or not round_header.isdigit():
            raise DecodeError("global model: a raw model is float64 values with a round id")
        model_id = answer.headers.get("x-xaynet-model-id")
        return GlobalModel(
            int(round_header),
            None if model_id in (None, "initial") else model_id,
            self._raw_values(raw),
        )

    async def post_message(self, body: bytes) -> PostOutcome:
        def final(answer: Answer) -> bool:
            # A 5xx with a reason word is the coordinator speaking (e.g. phase_full); one without
            # is a proxy or a crash, worth a retry.
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
            return PostOutcome(answer.status, f"http_{answer.status}", answer.text())
        return outcome


# -- decoding ------------------------------------------------------------------------------------


def decode_key_map(data: object, what: str) -> dict[bytes, bytes]:
    """``{hex key: hex value}`` (a sum dict or a seed column) as bytes; keys are 32 bytes."""
    if not isinstance(data, Mapping):
        raise DecodeError(f"{what}: expected a JSON object")
    result: dict[bytes, bytes] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY_HEX.fullmatch(key):
            raise DecodeError(f"{what}: a key is not 64 lowercase hex digits")
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise DecodeError(f"{what}: a value is not lowercase hex bytes")
        result[bytes.fromhex(key)] = bytes.fromhex(value)
    return result


def decode_post_outcome(status: int, data: object) -> PostOutcome | None:
    """The outcome in a ``POST /message`` answer, or ``None`` if the body is not one.

    A proxy's error page has no ``reason``: the transport then treats the answer as a
    :class:`TransportError` (5xx) or a failure without a reason word.
    """
    if not isinstance(data, Mapping):
        return None
    reason, detail = data.get("reason"), data.get("detail", "")
    if not isinstance(reason, str) or not reason:
        return None
    return PostOutcome(status, reason, detail if isinstance(detail, str) else "")


def decode_global_model(data: object) -> GlobalModel:
    """``{"round_id", "model_id", "model": [floats]}`` from ``GET /model`` (values as a list)."""
    if not isinstance(data, Mapping):
        raise DecodeError("global model: expected a JSON object")
    round_id, model_id, values = data.get("round_id"), data.get("model_id"), data.get("model")
    if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
        raise DecodeError("global model: round_id must be a non-negative integer")
    if model_id is not None and not isinstance(model_id, str):
        raise DecodeError("global model: model_id must be a string or null")
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise DecodeError("global model: model must be a list of numbers")
    return GlobalModel(round_id, model_id, [float(v) for v in values])
