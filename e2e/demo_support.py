"""What the browser tests drive: the coordinator serving the page, and the page itself.

:class:`WebCoordinator` is the real coordinator process with ``[web]`` enabled; phases are
short, and a phase without enough messages gives up after a few seconds, so a round that drew no
summer is soon replaced by the next. ``terminate()`` and ``start()`` again keep the port, so a
page sees the same coordinator go away and come back. :class:`DemoPage` is the demo page in a
browser context of its own.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from coordinator_process import (
    ROOT,
    CoordinatorProcess,
    config_toml,
    delete_prefix,
    free_port,
    redis_client,
    web_toml,
)
from playwright.sync_api import BrowserContext, Page

__all__ = [
    "ROOT",
    "ARTIFACTS",
    "BOOT_TIMEOUT",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "MODEL_LENGTH",
    "DemoPage",
    "WebCoordinator",
]

ARTIFACTS = ROOT / "e2e" / "artifacts"
#: The worker must be ready within this many seconds (about 3-7 s on this kind of machine).
BOOT_TIMEOUT = 60.0

MODEL_LENGTH = 650


class WebCoordinator(CoordinatorProcess):
    """``xaynet-coordinator`` with the page, on memory or Redis (keys under a fresh prefix)."""

    def __init__(self, directory: Path, backend: str = "memory") -> None:
        port = free_port()
        self.directory = directory
        self.backend = backend
        self.key_prefix = f"xaynet-e2e-{uuid.uuid4().hex[:12]}:"
        config = directory / "coordinator.toml"
        config.write_text(
            config_toml(
                port,
                models_dir=directory / "models",
                model_length=MODEL_LENGTH,
                sum_phase={"probability": 0.35, "count": (1, 50), "time": (0.5, 3)},
                update_phase={"probability": 1.0, "count": (3, 50), "time": (1.0, 5)},
                sum2_phase={"count": (1, 50), "time": (0.5, 5)},
                backend=backend,
                key_prefix=self.key_prefix,
                extra=web_toml(ROOT / ".cache" / "web"),
            ),
            encoding="utf-8",
        )
        # localhost, not 127.0.0.1: the browser resolves nothing else (--host-resolver-rules)
        super().__init__(config, port, directory / "coordinator.log", host="localhost")
        self._redis: Any = redis_client(skip=False) if backend == "redis" else None

    @property
    def models_dir(self) -> Path:
        return self.directory / "models"

    def close(self) -> None:
        if self.running:
            self.terminate()
        if self._redis is not None:
            delete_prefix(self._redis, self.key_prefix)
            self._redis.close()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10)


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
            " modelsSeen: xaynetDemo.modelsSeen, failures: xaynetDemo.failures})"
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
