"""Browser tests: the demo page and its Pyodide participant in Debian's headless Chromium.

pytest-playwright drives ``/usr/bin/chromium`` (``XAYNET_CHROMIUM`` overrides it): Playwright's
own browser download needs a CDN this project never uses. Every host but localhost is made
unresolvable, so a stray CDN request fails loudly instead of hanging. Each module boots one page
and shares it between its tests: Pyodide takes seconds to start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, DemoPage, WebCoordinator
from playwright.sync_api import Browser


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
