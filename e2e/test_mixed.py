"""Browser devices and native test-drive participants in the same masked rounds, on Redis.

The browser's devices send digits models, the test-drive participants seeded random models (their
``--dump-models`` manifests say which were accepted, with what weight); the global model of a round
they shared is the weighted mean of all of them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from demo_support import DemoPage, WebCoordinator

from xaynet.browser.digits import MAX_WEIGHT

TEST_DRIVE = Path(sys.executable).parent / "xaynet-test-drive"


def _shared_round(
    demo: DemoPage, dumps: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """A finished round with accepted updates from both kinds of participant, if any yet."""
    for manifest_path in sorted(dumps.glob("round-*/manifest.json"), reverse=True):
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if manifest["global_model"] is None:
            continue
        if not any(u["status"] == "accepted" for u in manifest["updates"]):
            continue
        browser = demo.call("local_models", {"round_id": manifest["round_id"]})["models"]
        accepted = [m for m in browser if m["accepted"]]
        if accepted:
            return manifest, accepted
    return None


def test_browser_devices_and_test_drive_participants_share_rounds_on_redis(
    coordinator_factory: Callable[..., WebCoordinator],
    make_page: Callable[..., DemoPage],
    tmp_path: Path,
) -> None:
    coordinator = coordinator_factory("redis")
    demo = make_page(coordinator.url)
    demo.open("?devices=4")
    dumps = tmp_path / "dumps"
    drive = subprocess.Popen(
        [
            str(TEST_DRIVE),
            *("-n", "6", "-u", coordinator.url, "--duration", "100", "--seed", "3"),
            *("--dump-models", str(dumps)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 100
        found = None
        while found is None:
            assert drive.poll() is None, drive.communicate()[0]
            assert time.monotonic() < deadline, f"no shared round\n{coordinator.log()}"
            time.sleep(0.5)
            found = _shared_round(demo, dumps)
    finally:
        drive.send_signal(signal.SIGINT)
        try:
            drive.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            drive.kill()
            drive.communicate()
    manifest, browser = found
    round_dir = dumps / f"round-{manifest['round_id']:06d}"
    scalars, models = [], []
    for update in manifest["updates"]:
        if update["status"] == "accepted":
            scalars.append(update["weight"] / manifest["max_weight"])
            models.append(np.load(round_dir / update["file"]))
    for local in browser:
        scalars.append(local["weight"] / MAX_WEIGHT)
        models.append(np.array(local["model"]))
    expected = np.array(scalars) @ np.array(models) / sum(scalars)
    published = np.load(round_dir / manifest["global_model"])
    # test-drive's values reach +-100: the fixed-point resolution of the mean scales with them
    np.testing.assert_allclose(published, expected, atol=1e-3 * max(1.0, np.abs(expected).max()))
    assert coordinator.backend == "redis"
