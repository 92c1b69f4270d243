"""Browser tests: the demo page and its Pyodide participant in Debian's headless Chromium.

pytest-playwright drives ``/usr/bin/chromium`` (``XAYNET_CHROMIUM`` overrides it): Playwright's
own browser download needs a CDN this project never uses. Every host but localhost is made
unresolvable, so a stray CDN request fails loudly instead of hanging. Each module boots one page
and shares it between its tests: Pyodide takes seconds to start.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _coordinator import ROOT, WebCoordinator
from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("XAYNET_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "e2e" / "artifacts"
#: The worker must be ready within this many seconds (about 3-7 s on this kind of machine).
BOOT_TIMEOUT = 60.0
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
]


def _require(path: Path, hint: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: {hint}", pytrace=False)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    _require(CHROMIUM, "install Debian's chromium (apt-get install -y chromium)")
    _require(ROOT / "node_modules" / "pyodide" / "pyodide.mjs", "run `npm ci`")
    _require(ROOT / ".cache" / "web" / ".built", "run `make web`")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class DemoPage:
    """The demo page in its own browser context, with what a test needs to drive it."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        self.page: Page = context.new_page()
        self.page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        self.ready: dict[str, Any] = {}

    def open(self, query: str = "") -> dict[str, Any]:
        """Load the page and wait for the worker's ``ready`` (raced with a JS timer)."""
        self.page.goto(f"{self.base_url}/{query}")
        self.ready = self.js("xaynetDemo.ready", timeout=BOOT_TIMEOUT)
        return self.ready

    def js(self, promise: str, timeout: float = 30.0) -> Any:
        """Await a JS expression in the page; the timer makes a hang a failure, not a freeze."""
        script = (
            "async ([ms]) => JSON.stringify(await Promise.race(["
            f"Promise.resolve({promise}),"
            "new Promise((_, reject) => setTimeout(() => reject(new Error("
            f"'timed out after ' + ms + ' ms: ' + {json.dumps(promise)})), ms))]))"
        )
        text = self.page.evaluate(script, [int(timeout * 1000)])
        return None if text is None else json.loads(text)

    def call(self, command: str, args: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        return self.js(f"xaynetDemo.call({json.dumps(command)}, {json.dumps(args or {})})", timeout)

    def state(self) -> dict[str, Any]:
        """The page's view: connection, coordinator, devices and global models."""
        result: dict[str, Any] = self.js(
            "({connection: xaynetDemo.connection, coordinator: xaynetDemo.coordinator,"
            " devices: [...xaynetDemo.devices.values()], models: xaynetDemo.models,"
            " modelsSeen: xaynetDemo.modelsSeen})"
        )
        return result

    def wait_for(
        self, condition: Callable[[dict[str, Any]], Any], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the page's state until ``condition`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if condition(state):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; page state: {state}")
            time.sleep(0.25)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def make_page(browser: Browser) -> Iterator[Callable[..., DemoPage]]:
    pages: list[DemoPage] = []

    def make(base_url: str, **context_args: Any) -> DemoPage:
        page = DemoPage(browser.new_context(**context_args), base_url)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def coordinator_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., WebCoordinator]]:
    started: list[WebCoordinator] = []

    def make(backend: str = "memory") -> WebCoordinator:
        coordinator = WebCoordinator(tmp_path_factory.mktemp("coordinator"), backend)
        started.append(coordinator)
        coordinator.start()
        return coordinator

    yield make
    for coordinator in started:
        coordinator.close()
