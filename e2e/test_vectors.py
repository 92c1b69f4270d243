"""Every known-answer vector of shared/tests/vectors, checked inside Chromium.

The vector tests themselves (shared/tests/crypto/test_vectors.py for crypto.json,
shared/tests/test_vectors_protocol.py for the protocol files) run under pytest in a web worker
that loads the runtime exactly as the demo's worker does: Pyodide, libsodium.js and the xaynet
wheel from the coordinator. The test's own worker script, the test files and the pytest wheels
are served through Playwright's routing, so the coordinator serves nothing for tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from demo_support import ROOT, DemoPage, WebCoordinator
from playwright.sync_api import Route

WHEELS = ROOT / ".cache" / "pyodide-wheels"
VECTOR_TESTS = ["shared/tests/crypto/test_vectors.py", "shared/tests/test_vectors_protocol.py"]
FILES = [
    "pyproject.toml",
    "shared/tests/conftest.py",
    "shared/tests/crypto/__init__.py",
    *VECTOR_TESTS,
    # the vectors, and the generators that one test re-runs to prove they reproduce them
    *(
        f"shared/tests/vectors/{p.name}"
        for p in sorted((ROOT / "shared/tests/vectors").iterdir())
        if p.suffix in (".json", ".py")
    ),
]


def _serve(route: Route) -> None:
    path = route.request.url.split("/__e2e__/", 1)[1]
    if path == "vectors_worker.mjs":
        source = ROOT / "e2e" / "vectors_worker.mjs"
        route.fulfill(status=200, content_type="text/javascript", body=source.read_bytes())
    elif path.startswith("wheels/") and (WHEELS / path[7:]).is_file():
        route.fulfill(status=200, body=(WHEELS / path[7:]).read_bytes())
    elif path.startswith("repo/") and path[5:] in FILES:
        route.fulfill(status=200, body=(ROOT / path[5:]).read_bytes())
    else:
        route.fulfill(status=404, body=b"not served to tests")


def test_libsodium_js_in_the_browser_reproduces_every_known_answer_vector(
    coordinator_factory: Callable[..., WebCoordinator], make_page: Callable[..., DemoPage]
) -> None:
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        pytest.fail(f"no wheels in {WHEELS}: run tools/fetch_pyodide_wheels.sh", pytrace=False)
    coordinator = coordinator_factory("memory")
    demo = make_page(coordinator.url)
    demo.page.route("**/__e2e__/**", _serve)
    demo.page.goto(f"{coordinator.url}/state")  # the origin the worker must come from
    message = {
        "wheels": [f"/__e2e__/wheels/{w.name}" for w in wheels],
        "files": FILES,
        "args": ["-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", *VECTOR_TESTS],
    }
    result = demo.js(
        "new Promise((resolve) => {"
        " const worker = new Worker('/__e2e__/vectors_worker.mjs', {type: 'module'});"
        " worker.onmessage = (event) => resolve(event.data);"
        " worker.onerror = (event) => resolve({rc: -1, output: 'worker error: ' + event.message});"
        f" worker.postMessage({json.dumps(message)});"
        "})",
        timeout=240,
    )
    output = result["output"]
    assert result["rc"] == 0, output
    # it ran in the browser, with libsodium.js, and ran them all
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary, summary
    assert "failed" not in summary, summary
    assert "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 90, summary
    assert demo.requests
    assert all(url.startswith(coordinator.url) for url in demo.requests)
