"""The demo on a phone: Playwright's Pixel 5 profile (touch, 393 px wide, mobile user agent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from demo_support import DemoPage, WebCoordinator
from playwright.sync_api import Playwright


@pytest.fixture(scope="module")
def phone(
    coordinator_factory: Callable[..., WebCoordinator],
    make_page: Callable[..., DemoPage],
    playwright: Playwright,
) -> DemoPage:
    coordinator = coordinator_factory("memory")
    profile = dict(playwright.devices["Pixel 5"])
    profile.pop("default_browser_type", None)
    page = make_page(coordinator.url, **profile)
    page.open("?devices=5")
    return page


def test_a_phone_completes_a_masked_round(phone: DemoPage) -> None:
    state = phone.wait_for(
        lambda s: s["modelsSeen"] >= 1 and any(d["accepted"] for d in s["devices"]),
        90,
        "a global model after the devices' messages",
    )
    assert state["connection"] == "connected"
    assert phone.js("navigator.userAgent").find("Mobile") >= 0
    assert phone.js("matchMedia('(pointer: coarse)').matches") is True


def test_the_layout_fits_the_phone_screen(phone: DemoPage, artifacts: Path) -> None:
    width = phone.js("window.innerWidth")
    assert width < 500
    # nothing sticks out sideways: no horizontal scrolling
    assert phone.js("document.documentElement.scrollWidth") <= width
    overflowing = phone.js(
        "[...document.querySelectorAll('body *')].filter(e => {"
        " const r = e.getBoundingClientRect();"
        " return r.width > 0 && (r.left < -1 || r.right > window.innerWidth + 1);"
        "}).map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert overflowing == []
    # one column: the chart above the devices, both the width of the screen (minus margins)
    chart = phone.page.locator("#chart-panel").bounding_box()
    devices = phone.page.locator("#devices-panel").bounding_box()
    assert chart is not None
    assert devices is not None
    assert chart["width"] > width * 0.85
    assert devices["width"] > width * 0.85
    assert devices["y"] >= chart["y"] + chart["height"]
    # the buttons are big enough to tap
    button = phone.page.get_by_role("button", name="Add device").bounding_box()
    assert button is not None
    assert button["height"] >= 32
    phone.page.screenshot(path=str(artifacts / "demo-phone.png"), full_page=True)
