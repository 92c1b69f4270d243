"""Local models from the page (xaynet.browser.page): asked for, answered, checked."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from xaynet.browser.page import PageModels
from xaynet.errors import LocalProtocolError
from xaynet.participant.transport import GlobalModel
from xaynet.round import RoundParameters

pytestmark = pytest.mark.skipif(
    sys.platform == "emscripten", reason="asyncio.run has no event loop in Pyodide under Node"
)


def _params(round_id: int = 3, length: int = 4) -> RoundParameters:
    from test_round import params  # the round tests' builder

    return params(round_id=round_id, model_length=length)


class Page:
    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.kept: list[tuple[int, list[float], float, float]] = []
        self.models = PageModels(
            self.asked.append,
            lambda *args: self.kept.append(args),
            max_weight=10,
            model_length=4,
        )


def test_the_page_is_asked_and_its_model_is_kept() -> None:
    page = Page()

    async def scenario() -> Any:
        params = _params()
        global_model = GlobalModel(2, "m", [0.5, 0.5, 0.5, 0.5])
        task = asyncio.ensure_future(page.models.local_model(params, global_model))
        await asyncio.sleep(0)
        (request,) = page.asked
        assert request["type"] == "need_model"
        assert request["round_id"] == params.round_id
        assert request["global_model"] == {"round_id": 2, "values": [0.5] * 4}
        assert page.models.waiting == [request["request"]]
        page.models.provide(request["request"], [1, 2, 3, 4], 5)
        return await task

    assert asyncio.run(scenario()) == ([1.0, 2.0, 3.0, 4.0], 5.0)
    assert page.kept == [(3, [1.0, 2.0, 3.0, 4.0], 5.0, 10)]
    assert page.models.waiting == []


@pytest.mark.parametrize(
    ("model", "weight", "message"),
    [
        ([1, 2, 3], 1, "a list of 4 numbers"),
        ("1234", 1, "a list of 4 numbers"),
        ([1, 2, 3, float("nan")], 1, "finite numbers"),
        ([1, 2, 3, True], 1, "finite numbers"),
        ([1, 2, 3, 4], 11, "from 0 to 10"),
        ([1, 2, 3, 4], -1, "from 0 to 10"),
        ([1, 2, 3, 4], "5", "from 0 to 10"),
    ],
)
def test_a_bad_answer_is_refused_and_the_request_still_waits(
    model: Any, weight: Any, message: str
) -> None:
    page = Page()

    async def scenario() -> Any:
        task = asyncio.ensure_future(page.models.local_model(_params(), None))
        await asyncio.sleep(0)
        request = page.asked[0]["request"]
        assert page.asked[0]["global_model"] is None
        with pytest.raises(LocalProtocolError, match=message):
            page.models.provide(request, model, weight)
        assert page.models.waiting == [request]
        page.models.decline(request)
        return await task

    assert asyncio.run(scenario()) is None
    assert page.kept == []


def test_unknown_or_answered_requests_are_refused() -> None:
    page = Page()
    with pytest.raises(LocalProtocolError, match="no model request 7"):
        page.models.provide(7, [1, 2, 3, 4], 1)
    with pytest.raises(LocalProtocolError, match="no model request 7"):
        page.models.decline(7)


def test_rounds_of_another_length_are_declined() -> None:
    page = Page()
    assert page.models.wants_update(_params(length=4))
    assert not page.models.wants_update(_params(length=5))
