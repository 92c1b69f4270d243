"""A scripted coordinator transport for the SDK tests (import after importorskip("httpx"))."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from participant._fixtures import make_params

from xaynet.participant.transport import (
    EventsNotSupported,
    GlobalModel,
    PostOutcome,
    TransportError,
)
from xaynet.round import RoundParameters

PARAMS = make_params()
NEXT = make_params(round_id=4, seed=bytes(range(1, 33)))
SUMS = {bytes([9]) * 32: bytes([8]) * 32}


@dataclass
class FakeTransport:
    """A coordinator script: what each GET returns, and a queue of stream events."""

    params: RoundParameters | None = PARAMS
    sums: dict[bytes, bytes] | None = None
    model: GlobalModel | None = None
    stream: asyncio.Queue[tuple[str, Any]] | None = None
    failing: bool = False
    calls: list[str] = field(default_factory=list)
    posted: list[bytes] = field(default_factory=list)
    url: str = "http://fake"

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failing:
            raise TransportError(f"{name}: connection refused")

    async def get_params(self, etag: str | None) -> tuple[RoundParameters | None, str | None]:
        self._call("params")
        if self.params is None:
            return None, None
        tag = f'"{self.params.round_id}"'
        return (None, tag) if etag == tag else (self.params, tag)

    async def get_sums(self) -> dict[bytes, bytes] | None:
        self._call("sums")
        return self.sums

    async def get_seeds(self, summer_pk: bytes) -> dict[bytes, bytes] | None:
        self._call("seeds")
        return None

    async def get_model(self) -> GlobalModel | None:
        self._call("model")
        return self.model

    async def post_message(self, body: bytes) -> PostOutcome:
        self._call("post")
        self.posted.append(body)
        return PostOutcome(202, "accepted")

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        if self.stream is None:
            raise EventsNotSupported("no stream here")
        while True:
            yield await self.stream.get()

    async def aclose(self) -> None:
        pass
