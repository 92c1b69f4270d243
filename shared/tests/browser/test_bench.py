"""The browser benchmark's tasks, each run once at a tiny size (also inside Pyodide).

The figures come from benchmarks/bench_browser.py; this only keeps the tasks working. Pyodide
under Node cannot ``asyncio.run``, so coroutines that never suspend are driven by hand.
"""

from __future__ import annotations

import math
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from browser._data import dataset
from xaynet.browser import bench, digits
from xaynet.errors import LocalProtocolError
from xaynet.message import ORIGINAL_MAX_MESSAGE_SIZE
from xaynet.participant.transport import PostOutcome

T = TypeVar("T")

LENGTH = 12
UPDATERS = 3


class RecordingPoster:
    """A transport that answers every POST as the coordinator does a box it cannot open."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def post_message(self, body: bytes) -> PostOutcome:
        self.bodies.append(body)
        return PostOutcome(400, "undecryptable")


def complete(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise AssertionError("the coroutine suspended")


@pytest.fixture(scope="module")
def fixture() -> bench.Fixture:
    return bench.prepare(LENGTH, updaters=UPDATERS)


def test_every_task_runs_and_is_timed(fixture: bench.Fixture) -> None:
    poster = RecordingPoster()
    result = complete(bench.run(fixture, bench.TASKS, repeat=2, poster=poster))
    assert set(result["seconds"]) == set(bench.TASKS)
    assert all(len(s) == 2 and min(s) >= 0 for s in result["seconds"].values())
    assert result["answers"] == {
        "upload": ["400 undecryptable"],
        "upload_chunks": ["400 undecryptable"],
    }
    assert result["training"] == "linear"
    assert result["length"] == LENGTH
    assert result["updaters"] == UPDATERS
    # one warm-up and two timed runs of each upload
    assert poster.bodies.count(fixture.body) == 3
    assert len(poster.bodies) == 3 + 3 * len(fixture.chunk_bodies)


def test_mask_matches_the_updater_task(fixture: bench.Fixture) -> None:
    expected = fixture.updater.masked_model(
        fixture.model, scalar=fixture.scalar, mask_seed=fixture.mask_seed
    )
    assert bench.mask(fixture) == expected == fixture.masked


def test_aggregate_is_the_summers_mask(fixture: bench.Fixture) -> None:
    assert bench.aggregate(fixture) == fixture.summer.model_mask(fixture.encrypted_seeds)


def test_sealed_bodies_carry_the_update(fixture: bench.Fixture) -> None:
    body = bench.seal(fixture)
    assert len(body) == len(fixture.body) > len(fixture.masked.to_bytes())
    chunks = bench.seal_chunks(fixture)
    assert all(len(chunk) <= ORIGINAL_MAX_MESSAGE_SIZE for chunk in chunks)


def test_the_linear_stand_in_learns() -> None:
    rng = random.Random(1)
    samples = [[rng.uniform(-1, 1) for _ in range(5)] for _ in range(40)]
    labels = [int(x[0] + x[1] > 0) for x in samples]
    weights = [0.0] * 6
    losses = []
    for _ in range(20):
        weights, loss = bench.train_linear(weights, samples, labels, rng=rng, learning_rate=1.0)
        losses.append(loss)
    assert len(weights) == 6
    assert losses[-1] < 0.6 * losses[0]


def test_d_650_trains_the_digits() -> None:
    fixture = bench.prepare(digits.MODEL_LENGTH, dataset=dataset(), updaters=1)
    assert fixture.training == "digits"
    model, loss = bench.train(fixture)
    assert len(model) == digits.MODEL_LENGTH
    assert math.isfinite(loss)
    assert loss > 0


def test_the_command_checks_its_arguments() -> None:
    def command(args: dict[str, Any]) -> dict[str, Any]:
        return complete(bench.run_command(args, dataset=None, poster=RecordingPoster()))

    with pytest.raises(LocalProtocolError, match="length"):
        command({"length": 0})
    with pytest.raises(LocalProtocolError, match="repeat"):
        command({"length": LENGTH, "repeat": True})
    with pytest.raises(LocalProtocolError, match="unknown tasks"):
        command({"length": LENGTH, "tasks": ["fly"]})
    with pytest.raises(LocalProtocolError, match="digits"):
        command({"length": digits.MODEL_LENGTH, "tasks": ["train"]})
    with pytest.raises(LocalProtocolError, match="transport"):
        complete(bench.run_command({"length": LENGTH}, dataset=None, poster=None))
    result = command({"length": LENGTH, "repeat": 1, "tasks": ["mask"]})
    assert list(result["seconds"]) == ["mask"]
