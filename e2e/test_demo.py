"""The demo page on a desktop screen: boot, browser-only masked rounds, what the page shows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from demo_support import BOOT_TIMEOUT, DemoPage, WebCoordinator

DEVICES = 6


@pytest.fixture(scope="module")
def coordinator(coordinator_factory: Callable[..., WebCoordinator]) -> WebCoordinator:
    return coordinator_factory("memory")


@pytest.fixture(scope="module")
def demo(coordinator: WebCoordinator, make_page: Callable[..., DemoPage]) -> DemoPage:
    page = make_page(coordinator.url, viewport={"width": 1280, "height": 900})
    page.open(f"?devices={DEVICES}&seed=1")
    return page


def test_the_page_boots_offline_from_the_coordinator_alone(
    demo: DemoPage, coordinator: WebCoordinator
) -> None:
    ready = demo.ready
    assert ready["crypto"] == "libsodium.js"
    assert ready["pyodide"] == "314.0.7"
    assert (ready["train"], ready["test"]) == (1347, 450)
    assert 0 < ready["seconds"] < BOOT_TIMEOUT
    # every request of the page and its worker went to the coordinator
    assert demo.requests
    foreign = [url for url in demo.requests if not url.startswith(coordinator.url + "/")]
    assert foreign == []
    paths = {urlsplit(url).path for url in demo.requests}
    assert {
        "/worker.mjs",
        "/vendor/pyodide/pyodide.mjs",
        "/vendor/pyodide/pyodide.asm.wasm",
        "/vendor/pyodide/python_stdlib.zip",
        "/vendor/sodium/libsodium-wrappers.mjs",
        "/vendor/sodium/libsodium.mjs",
        "/wheels/xaynet.whl",
        "/data/digits.json",
    } <= paths


def test_browser_devices_complete_masked_rounds_and_the_global_model_is_their_weighted_mean(
    demo: DemoPage, coordinator: WebCoordinator
) -> None:
    checked: dict[int, int] = {}
    roles: set[str] = set()
    deadline = time.monotonic() + 120
    while len(checked) < 2:
        assert time.monotonic() < deadline, (
            f"rounds checked in time: {checked}\n{coordinator.log()}"
        )
        time.sleep(0.3)
        roles |= {d["role"] for d in demo.state()["devices"] if d["role"]}
        answer = coordinator.get("/model")
        if answer.status_code != 200:
            continue
        published = answer.json()
        round_id = published["round_id"]
        if round_id in checked:
            continue
        local = [
            m for m in demo.call("local_models", {"round_id": round_id})["models"] if m["accepted"]
        ]
        if not local:
            continue
        weights = np.array([m["weight"] for m in local], dtype=float)
        expected = weights @ np.array([m["model"] for m in local]) / weights.sum()
        np.testing.assert_allclose(published["model"], expected, atol=1e-4)
        checked[round_id] = len(local)
    assert all(count >= 3 for count in checked.values())
    assert {"sum", "update"} <= roles


def test_the_page_shows_rounds_roles_counts_and_the_accuracy_chart(
    demo: DemoPage, artifacts: Path
) -> None:
    state = demo.wait_for(lambda s: len(s["models"]) >= 2, 90, "two global models on the chart")
    assert state["connection"] == "connected"
    page = demo.page
    assert page.locator("#connection").inner_text() == "coordinator connected"
    assert page.locator("#round").inner_text().isdigit()
    assert page.locator("#phase").inner_text() in {"idle", "sum", "update", "sum2", "unmask"}
    assert page.locator(".device").count() == DEVICES
    assert int(page.locator("#accepted").inner_text()) >= 6
    assert page.locator("#chart circle.dot").count() >= 2
    assert "held-out digits (round" in page.locator("#accuracy-now").inner_text()
    roles = page.locator(".device .role").all_inner_texts()
    assert any(r.startswith(("SUM", "UPDATE", "IDLE")) for r in roles), roles
    accuracies = [m["accuracy"] for m in state["models"]]
    assert max(accuracies) > 0.2  # better than guessing one class (~10 %)
    page.screenshot(path=str(artifacts / "demo-desktop.png"), full_page=True)
    assert demo.console_errors == []


def test_devices_are_added_and_removed_with_the_buttons(demo: DemoPage) -> None:
    page = demo.page
    page.get_by_role("button", name="Add device").click()
    demo.wait_for(lambda s: len(s["devices"]) == DEVICES + 1, 20, "the added device")
    assert page.locator(".device").count() == DEVICES + 1
    page.get_by_role("button", name="Remove device").click()
    state = demo.wait_for(lambda s: len(s["devices"]) == DEVICES, 20, "the removed device")
    assert [d["number"] for d in state["devices"]] == list(range(DEVICES))
    assert page.locator(".device").count() == DEVICES
    assert page.locator("#device-count").inner_text() == str(DEVICES)


def test_the_worker_refuses_bad_commands_with_a_clear_error(demo: DemoPage) -> None:
    error: Any = demo.js(
        "xaynetDemo.call('add', {count: 1000}).then(() => 'accepted', (e) => e.message)"
    )
    assert "can add 1 to" in error
    error = demo.js("xaynetDemo.call('launch').then(() => 'accepted', (e) => e.message)")
    assert "unknown command 'launch'" in error
    assert len(demo.state()["devices"]) == DEVICES
