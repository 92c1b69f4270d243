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

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from xaynet.errors import DecodeError, XaynetError
from xaynet.round import RoundParameters

__all__ = [
    "Transport",
    "TransportError",
    "EventsNotSupported",
    "PostOutcome",
    "GlobalModel",
    "decode_key_map",
    "decode_post_outcome",
    "decode_global_model",
]

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
