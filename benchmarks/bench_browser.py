"""The browser participant against native CPython: cold start and a participant's tasks.

    make bench-browser        # or: .venv/bin/python benchmarks/bench_browser.py (after make web)

Starts ``xaynet-coordinator`` with the demo's config (``configs/demo.toml`` copied with a free
port, absolute paths and a Sum phase that never times out), then, in Debian's headless
Chromium driven by Playwright:

* **cold start** -- ``--cold`` times: a new browser context (empty HTTP cache), the page with
  ``?devices=0``, until the worker says ``ready``. Measured by the page (an init script wraps
  ``Worker`` to note when the worker is created and when its ``ready`` message arrives) and by
  the worker (its ``seconds`` since the worker's module started, ``python_seconds`` until
  ``loadPyodide`` resolved). Then ``--warm`` reloads of the last page (HTTP cache warm).
* **tasks** -- the ``bench`` command of that worker (:mod:`xaynet.browser.bench`: train, mask,
  seal, upload and a summer's aggregation of 100 masks) for each ``--lengths`` d, then the same
  functions in this process: the pure path (crypto by PyNaCl, keystream by OpenSSL, as natively
  installed) and, for ``mask`` and ``aggregate``, the numpy path. As a reference for the
  uploads, the page's own ``fetch`` (no Python) posts bodies of the same sizes.

Prints the cold start (min / median) and a table of milliseconds, each the best of ``--repeat``
runs after a warm-up (the least disturbed by other work on a shared machine), with the ratios
browser / native. Every awaited promise in the page is raced with a JS timer (``evaluate`` has
none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from xaynet.browser import bench, digits
from xaynet.sdk.http import HttpTransport

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "testing"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - shared with the browser tests

COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
BOOT_TIMEOUT = 90.0
BENCH_TIMEOUT = 600.0
NUMPY_TASKS = ("mask", "aggregate")

# Runs before the page's scripts: notes when app.js creates the worker and when the worker's
# "ready" message reaches the page, on the page's clock (performance.now(), 0 = navigation).
WORKER_PROBE = """
(() => {
  const Original = window.Worker;
  window.__bench = { created: null, ready: null };
  window.Worker = class extends Original {
    constructor(...args) {
      const created = performance.now();
      super(...args);
      window.__bench.created = created;
      this.addEventListener("message", (event) => {
        if (event.data && event.data.type === "ready") window.__bench.ready = performance.now();
      });
    }
  };
})();
"""


# -- the coordinator ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config_text(port: int, directory: Path) -> str:
    """configs/demo.toml with this run's port, absolute paths and an endless Sum phase."""
    text = (ROOT / "configs" / "demo.toml").read_text("utf-8")
    replacements = [
        (r'bind_address = "[^"]*"', f'bind_address = "127.0.0.1:{port}"'),
        # Without participants the Sum phase would time out and restart the round; kept open,
        # every POST meets a phase that takes messages (and is answered 400 undecryptable).
        (r"(\[pet\.sum\][^\[]*?time = \{ min = [0-9.]+, max = )[0-9.]+", r"\g<1>3600"),
        (r'directory = "[^"]*"', f'directory = "{directory / "models"}"'),
        (r'root = "[^"]*"', f'root = "{ROOT / "web_participant"}"'),
        (r'node_modules = "[^"]*"', f'node_modules = "{ROOT / "node_modules"}"'),
        (r'wheels = "[^"]*"', f'wheels = "{ROOT / ".cache" / "web"}"'),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, count=1)
        if count != 1:
            raise SystemExit(f"configs/demo.toml changed: no match for {pattern!r}")
    config = tomllib.loads(text)
    if not config["web"]["enabled"] or config["pet"]["sum"]["time"]["max"] != 3600:
        raise SystemExit("configs/demo.toml changed: the web page or the Sum phase")
    return text


@contextmanager
def coordinator(directory: Path) -> Iterator[str]:
    """A running coordinator serving the page; yields its URL (localhost: see CHROMIUM_ARGS)."""
    port = free_port()
    config = directory / "coordinator.toml"
    config.write_text(config_text(port, directory), encoding="utf-8")
    log_path = directory / "coordinator.log"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(COORDINATOR), "--config", str(config)],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                tail = log_path.read_text("utf-8", errors="replace")[-3000:]
                raise SystemExit(f"the coordinator exited with {process.returncode}:\n{tail}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the coordinator did not get ready in 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- the browser ----------------------------------------------------------------------------------


def js(page: Page, promise: str, timeout: float) -> Any:
    """Await a JS expression in the page, raced with a timer (evaluate has no timeout)."""
    script = (
        "async ([ms, what]) => JSON.stringify(await Promise.race(["
        f"Promise.resolve({promise}),"
        "new Promise((_, reject) => setTimeout("
        "() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))]))"
    )
    return json.loads(page.evaluate(script, [int(timeout * 1000), promise]))


def wait_ready(page: Page) -> dict[str, Any]:
    """The worker's ``ready`` message and the page's probe times, in seconds."""
    info: dict[str, Any] = js(
        page, "xaynetDemo.ready.then((boot) => ({boot, ...window.__bench}))", BOOT_TIMEOUT
    )
    boot = info["boot"]
    return {
        "page_seconds": (info["ready"] - info["created"]) / 1000,
        "navigation_seconds": info["ready"] / 1000,
        "worker_seconds": boot["seconds"],
        "python_seconds": boot["python_seconds"],
        "boot": boot,
    }


def start_runs(browser: Browser, url: str, cold: int, warm: int) -> tuple[Page, dict[str, Any]]:
    """Cold starts in fresh contexts, then warm reloads of the last; the last page stays open."""
    runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    page: Page | None = None
    for number in range(cold):
        if page is not None:
            page.context.close()
        context = browser.new_context()
        context.add_init_script(WORKER_PROBE)
        page = context.new_page()
        page.goto(f"{url}/?devices=0")
        runs["cold"].append(wait_ready(page))
        print(f"  cold start {number + 1}: {runs['cold'][-1]['page_seconds']:.2f} s", flush=True)
    assert page is not None
    for number in range(warm):
        page.reload()
        runs["warm"].append(wait_ready(page))
        print(f"  warm reload {number + 1}: {runs['warm'][-1]['page_seconds']:.2f} s", flush=True)
    return page, runs


def browser_bench(page: Page, length: int, repeat: int) -> dict[str, Any]:
    args = {"length": length, "repeat": repeat, "tasks": list(bench.TASKS)}
    result: dict[str, Any] = js(
        page, f"xaynetDemo.call('bench', {json.dumps(args)})", BENCH_TIMEOUT
    )
    return result


# Reference for the uploads: the same POSTs by the page's own fetch, no Python involved.
FETCH_REFERENCE = """async ([size, count, repeat]) => {
  const body = new Uint8Array(size);
  const post = async () => {
    for (let i = 0; i < count; i++) {
      const answer = await fetch("message", {
        method: "POST", body, cache: "no-store",
        headers: { "Content-Type": "application/octet-stream" },
      });
      await answer.arrayBuffer();
    }
  };
  await post();
  const seconds = [];
  for (let i = 0; i < repeat; i++) {
    const began = performance.now();
    await post();
    seconds.push((performance.now() - began) / 1000);
  }
  return seconds;
}"""


def fetch_reference(page: Page, result: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    """JS fetch of one body of the sealed Update's size, and of its chunks' count and size."""
    chunk_size = -(-result["chunk_bytes"] // result["chunks"])
    script = f"([a, b, c]) => Promise.race([({FETCH_REFERENCE})([a, b, c]), " + (
        f"new Promise((_, reject) => setTimeout(() => reject(new Error('fetch timed out')), "
        f"{int(BENCH_TIMEOUT * 1000)}))])"
    )
    return {
        "upload": page.evaluate(script, [result["body_bytes"], 1, repeat]),
        "upload_chunks": page.evaluate(script, [chunk_size, result["chunks"], repeat]),
    }


# -- native ---------------------------------------------------------------------------------------


async def native_bench(
    url: str, length: int, repeat: int, dataset: digits.Dataset
) -> dict[str, dict[str, Any]]:
    """The same tasks in this process: pure path, then the numpy path where the library has it."""
    fixture = bench.prepare(length, dataset=dataset)
    transport = HttpTransport(url.replace("localhost", "127.0.0.1"))
    try:
        pure = await bench.run(fixture, bench.TASKS, repeat=repeat, poster=transport)
    finally:
        await transport.aclose()
    try:
        import numpy as np
    except ImportError:
        return {"pure": pure}
    fixture.model = np.asarray(fixture.model, dtype=np.float32)
    if bench.mask(fixture, "numpy") != fixture.masked:  # the paths agree byte for byte
        raise SystemExit("the numpy path masked differently from the pure path")
    numpy = await bench.run(fixture, NUMPY_TASKS, repeat=repeat, path="numpy")
    return {"pure": pure, "numpy": numpy}


# -- report ---------------------------------------------------------------------------------------


def best_ms(result: dict[str, Any] | None, task: str) -> float | None:
    if result is None or task not in result["seconds"]:
        return None
    return 1000 * min(result["seconds"][task])


def print_starts(runs: dict[str, list[dict[str, Any]]]) -> None:
    keys = (
        ("page_seconds", "worker created -> ready (page)"),
        ("worker_seconds", "worker module start -> ready (worker)"),
        ("python_seconds", "worker module start -> Pyodide loaded"),
        ("navigation_seconds", "navigation -> ready (page)"),
    )
    for kind, label in (("cold", "cold start, new context"), ("warm", "warm reload")):
        samples = runs[kind]
        if not samples:
            continue
        print(f"{label} ({len(samples)} runs), seconds   min  median")
        for key, what in keys:
            values = [run[key] for run in samples]
            print(f"  {what:42} {min(values):5.2f}  {statistics.median(values):5.2f}")


def print_table(results: dict[int, dict[str, Any]]) -> None:
    def cell(value: float | None) -> str:
        return f"{value:10.2f}" if value is not None else f"{'-':>10}"

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:9.1f}x" if a is not None and b else f"{'-':>10}"

    print(
        f"{'task':14} {'d':>8} {'browser':>10} {'native':>10} {'numpy':>10} "
        f"{'br/native':>10} {'br/numpy':>10}   (best, ms)"
    )
    for length, result in results.items():
        for task in bench.TASKS:
            b = best_ms(result["browser"], task)
            p = best_ms(result["native"]["pure"], task)
            n = best_ms(result["native"].get("numpy"), task)
            print(
                f"{task:14} {length:>8,} {cell(b)} {cell(p)} {cell(n)} {ratio(b, p)} {ratio(b, n)}"
            )


def print_sizes(results: dict[int, dict[str, Any]]) -> None:
    for length, result in results.items():
        browser = result["browser"]
        answers = sorted(
            {answer for answers in browser["answers"].values() for answer in answers}
            | {a for answers in result["native"]["pure"]["answers"].values() for a in answers}
        )
        print(
            f"d = {length:,}: training {browser['training']}, sealed Update "
            f"{browser['body_bytes']:,} B in one body or {browser['chunks']} chunks "
            f"({browser['chunk_bytes']:,} B); coordinator answered {', '.join(answers)}"
        )
        reference = result["fetch_reference"]
        print(
            f"  reference, the page's own fetch (no Python): one body "
            f"{1000 * min(reference['upload']):.1f} ms, {browser['chunks']} chunks "
            f"{1000 * min(reference['upload_chunks']):.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="650,100000", help="comma-separated model lengths")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each task")
    parser.add_argument("--cold", type=int, default=5, help="cold starts (new contexts)")
    parser.add_argument("--warm", type=int, default=2, help="reloads of the last page")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    lengths = [int(part) for part in args.lengths.split(",")]
    if args.cold < 1:
        parser.error("--cold must be at least 1")
    for path, hint in (
        (CHROMIUM, "install Debian's chromium"),
        (ROOT / "node_modules" / "pyodide" / "pyodide.mjs", "run `npm ci`"),
        (ROOT / ".cache" / "web" / ".built", "run `make web`"),
        (COORDINATOR, "run `make` to install the coordinator"),
    ):
        if not path.exists():
            raise SystemExit(f"{path} is missing: {hint}")
    dataset = digits.parse_dataset(
        json.loads((ROOT / "web_participant" / "data" / "digits.json").read_text("utf-8"))
    )
    began, load = time.monotonic(), os.getloadavg()[0]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, coordinator(Path(tmp)) as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            version = browser.version
            print(f"coordinator at {url}; Chromium {version}", flush=True)
            page, runs = start_runs(browser, url, args.cold, args.warm)
            for length in lengths:
                print(f"  browser tasks, d = {length:,}", flush=True)
                result = browser_bench(page, length, args.repeat)
                results[length] = {
                    "browser": result,
                    "fetch_reference": fetch_reference(page, result, args.repeat),
                }
            browser.close()
        for length in lengths:
            print(f"  native tasks, d = {length:,}", flush=True)
            results[length]["native"] = asyncio.run(native_bench(url, length, args.repeat, dataset))
    boot = runs["cold"][-1]["boot"]
    print()
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.platform()}\n"
        f"browser: Chromium {version}, Pyodide {boot['pyodide']} (Python {boot['python']}), "
        f"{boot['crypto']} {boot['sodium']}\n"
        f"native: CPython {platform.python_version()}, crypto "
        f"{results[lengths[0]]['native']['pure']['crypto']}; best of {args.repeat} runs "
        f"after one warm-up; the whole benchmark took {time.monotonic() - began:.0f} s "
        f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    print()
    print_starts(runs)
    print()
    print_table(results)
    print()
    print_sizes(results)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"chromium": version, "starts": runs, "tasks": results}, indent=2),
            encoding="utf-8",
        )
    return 0


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    raise SystemExit(main())
