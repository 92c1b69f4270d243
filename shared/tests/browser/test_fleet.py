"""The browser's device fleet, driven natively (HttpTransport) against the real coordinator.

The browser runs the same fleet over ``fetch``; e2e/ checks that part in Chromium.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import pytest

from browser._data import dataset
from xaynet.browser import digits

pytest.importorskip("httpx")
np = pytest.importorskip("numpy")

from sdk._coordinator import started  # noqa: E402 - needs httpx

from xaynet.browser.fleet import DeviceFleet  # noqa: E402
from xaynet.sdk.http import HttpTransport  # noqa: E402


async def _wait_for(condition: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_devices_complete_rounds_and_the_global_model_is_their_weighted_mean(
    tmp_path: Path,
) -> None:
    coordinator = started(tmp_path, model_length=digits.MODEL_LENGTH)
    reports: list[dict[str, Any]] = []

    async def scenario() -> None:
        transport = HttpTransport(coordinator.url)
        fleet = DeviceFleet(
            transport, dataset(), reports.append, random_bytes=os.urandom, rng=random.Random(1)
        )
        for _ in range(6):
            fleet.add_device()
        checked: set[int] = set()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while len(checked) < 2:
                assert loop.time() < deadline, f"only rounds {checked} checked in time"
                await asyncio.sleep(0.2)
                published = await transport.get_model()
                if published is None or published.round_id in checked:
                    continue
                local = [m for m in fleet.local_models(published.round_id) if m["accepted"]]
                if not local:
                    continue
                weights = np.array([m["weight"] for m in local], dtype=float)
                models = np.array([m["model"] for m in local])
                expected = weights @ models / weights.sum()
                np.testing.assert_allclose(published.values, expected, atol=1e-4)
                checked.add(published.round_id)
            await _wait_for(lambda: len(fleet.global_models()) >= 2, 10, "the fleet's models")
            statuses = fleet.statuses()
            assert {s["role"] for s in statuses} & {"sum", "update"}
            assert sum(s["accepted"] for s in statuses) >= 6
            assert await fleet.remove_device(0)
            assert not await fleet.remove_device(0)
            assert fleet.numbers == [1, 2, 3, 4, 5]
        finally:
            await fleet.aclose()

    try:
        asyncio.run(scenario())
    finally:
        coordinator.kill()
    kinds = {r["type"] for r in reports}
    assert {"device", "global_model", "coordinator", "timing", "removed"} <= kinds
    models = [r for r in reports if r["type"] == "global_model"]
    assert all(0.0 <= m["accuracy"] <= 1.0 for m in models)
    tasks = {r["task"] for r in reports if r["type"] == "timing"}
    assert {"train", "mask", "post"} <= tasks
