"""The coordinator goes away mid-round and comes back (Redis keeps its state): the page says so
clearly, and the devices carry on by themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from demo_support import DemoPage, WebCoordinator


@pytest.fixture(scope="module")
def coordinator(coordinator_factory: Callable[..., WebCoordinator]) -> WebCoordinator:
    return coordinator_factory("redis")


@pytest.fixture(scope="module")
def demo(coordinator: WebCoordinator, make_page: Callable[..., DemoPage]) -> DemoPage:
    page = make_page(coordinator.url, viewport={"width": 1100, "height": 800})
    page.open("?devices=5")
    return page


def test_a_stopped_coordinator_shows_and_the_devices_resume_when_it_returns(
    demo: DemoPage, coordinator: WebCoordinator, artifacts: Path
) -> None:
    demo.wait_for(lambda s: s["modelsSeen"] >= 1, 90, "a first global model")
    # stop it in the middle of a round: once some device has sent its message for it
    demo.wait_for(
        lambda s: s["coordinator"]["phase"] in ("update", "sum2"), 30, "a round under way"
    )
    coordinator.terminate()

    down = demo.wait_for(lambda s: s["connection"] == "unreachable", 15, "the page to notice")
    page = demo.page
    assert page.locator("#connection").inner_text() == "coordinator unreachable"
    assert "unreachable" in page.locator("#log").inner_text()
    # the devices keep trying (and say so) instead of dying
    retrying = demo.wait_for(
        lambda s: any("retrying" in d["activity"] for d in s["devices"]),
        30,
        "a device retrying",
    )
    # why it retries is a note on its card, not an error (it carries on)
    assert any(d["note"] for d in retrying["devices"])
    assert all(d["error"] is None for d in retrying["devices"])
    page.screenshot(path=str(artifacts / "demo-outage.png"), full_page=True)
    seen = down["modelsSeen"]
    assert all(d["activity"] != "stopped" for d in demo.state()["devices"])

    coordinator.start()
    demo.wait_for(lambda s: s["connection"] == "connected", 15, "the page to reconnect")
    state = demo.wait_for(lambda s: s["modelsSeen"] > seen, 120, "a global model after the restart")
    assert all(d["activity"] != "stopped" for d in state["devices"]), state["devices"]
    assert "The coordinator is back" in page.locator("#log").inner_text()
    demo.wait_for(lambda s: all(d["note"] is None for d in s["devices"]), 30, "the notes to clear")
