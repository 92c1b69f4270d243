"""Local models from the page: the provider of a participant embedded in a web app.

A web app that trains its own model (in JavaScript, WebGPU, ...) embeds a participant with
``web_participant/xaynet.mjs``. The participant runs in the worker like the demo's devices, but
when a round needs its local model, :class:`PageModels` asks the page through a
``need_model`` report -- with a request number, the round and the newest global model -- and
waits until the page answers with :meth:`PageModels.provide` (the worker's ``model`` command)
or :meth:`PageModels.decline` (``decline``: no model this time; it is asked again later).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from xaynet.errors import LocalProtocolError
from xaynet.participant.transport import GlobalModel
from xaynet.round import RoundParameters

__all__ = ["PageModels"]


class PageModels:
    """A :class:`~xaynet.sdk.agent.ModelProvider` answered by the page (see the module doc).

    ``ask(report)`` sends a report to the page; ``keep(round_id, model, weight)`` records what
    is sent (the device's ``keep_local_model``).
    """

    def __init__(
        self,
        ask: Callable[[dict[str, Any]], None],
        keep: Callable[[int, list[float], float, float], None],
        *,
        max_weight: float,
        model_length: int,
    ) -> None:
        self._ask = ask
        self._keep = keep
        self.max_weight = max_weight
        self.model_length = model_length
        self._pending: dict[int, asyncio.Future[tuple[list[float], float] | None]] = {}
        self._next = 0

    @property
    def waiting(self) -> list[int]:
        """The requests the page has not answered yet."""
        return sorted(self._pending)

    def wants_update(self, params: RoundParameters) -> bool:
        return params.model_length == self.model_length

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[list[float], float] | None:
        request = self._next
        self._next += 1
        future: asyncio.Future[tuple[list[float], float] | None]
        future = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        self._ask(
            {
                "type": "need_model",
                "request": request,
                "round_id": params.round_id,
                "model_length": params.model_length,
                "global_model": None
                if global_model is None
                else {"round_id": global_model.round_id, "values": list(global_model.values)},
            }
        )
        try:
            result = await future
        finally:
            self._pending.pop(request, None)
        if result is not None:
            self._keep(params.round_id, result[0], result[1], self.max_weight)
        return result

    def provide(self, request: int, model: Any, weight: Any) -> None:
        """The page's model for ``request``; a bad one is refused here, with the reason."""
        future = self._take(request)
        if not isinstance(model, list) or len(model) != self.model_length:
            raise LocalProtocolError(f"the model must be a list of {self.model_length} numbers")
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in model
        ):
            raise LocalProtocolError("the model must hold finite numbers only")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 <= weight <= self.max_weight
        ):
            raise LocalProtocolError(f"the weight must be a number from 0 to {self.max_weight}")
        del self._pending[request]
        future.set_result(([float(v) for v in model], float(weight)))

    def decline(self, request: int) -> None:
        """No model for ``request`` (the page's training failed or is not ready)."""
        future = self._take(request)
        del self._pending[request]
        future.set_result(None)

    def _take(self, request: int) -> asyncio.Future[tuple[list[float], float] | None]:
        future = self._pending.get(request)
        if future is None or future.done():
            raise LocalProtocolError(f"no model request {request} is waiting for an answer")
        return future
