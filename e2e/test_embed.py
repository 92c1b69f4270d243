"""A web app embeds a participant with web_participant/xaynet.mjs: its page trains, the
participant masks and sends, beside the demo's devices in the same rounds."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from demo_support import BOOT_TIMEOUT, DemoPage, WebCoordinator

APP = """
async () => {
  const { startParticipant } = await import('/xaynet.mjs');
  window.app = { asked: [], globals: [], statuses: 0 };
  window.participant = await startParticipant({
    maxWeight: 16,
    modelLength: 650,
    async train(globalModel, roundId) {
      app.asked.push({ roundId, global: globalModel === null ? null : globalModel.length });
      if (app.asked.length === 1) throw new Error('the app is not ready yet');  // asked again
      return { model: new Float64Array(650).fill(0.25 + roundId / 1000), weight: 8 };
    },
    onGlobalModel(values, roundId) { app.globals.push({ roundId, length: values.length }); },
    onStatus() { app.statuses += 1; },
  });
  return participant.number;
}
"""


def test_an_embedded_participant_trains_in_the_page_and_shares_rounds(
    coordinator_factory: Callable[..., WebCoordinator], make_page: Callable[..., DemoPage]
) -> None:
    coordinator = coordinator_factory("memory")
    demo = make_page(coordinator.url)
    demo.open("?devices=4")
    app = make_page(coordinator.url)
    app.page.goto(f"{coordinator.url}/state")  # any page of the coordinator's origin
    app.js(f"({APP})()", timeout=BOOT_TIMEOUT)

    deadline = time.monotonic() + 120
    checked = None
    while checked is None:
        assert time.monotonic() < deadline, f"no shared round\n{coordinator.log()}"
        time.sleep(0.5)
        answer = coordinator.get("/model")
        if answer.status_code != 200:
            continue
        published = answer.json()
        round_id = published["round_id"]
        mine = app.js(f"participant.sent({round_id})")
        if not mine or not mine["accepted"]:
            continue
        devices = [
            m for m in demo.call("local_models", {"round_id": round_id})["models"] if m["accepted"]
        ]
        sent = [*devices, mine]
        scalars = np.array([m["scalar"] for m in sent])
        expected = scalars @ np.array([m["model"] for m in sent]) / scalars.sum()
        np.testing.assert_allclose(published["model"], expected, atol=1e-4)
        assert mine["scalar"] == 0.5
        assert mine["model"][0] == 0.25 + round_id / 1000
        checked = round_id

    app_state = app.js("app")
    # the first request was declined (train threw) and asked again
    assert len(app_state["asked"]) >= 2
    assert app_state["statuses"] > 0
    assert any(g["length"] == 650 for g in app_state["globals"])
    status = app.js("participant.status()")
    assert status["accepted"] >= 1
    assert status["shard"] is None  # no digits data: the page supplies the models


def test_a_bad_model_from_the_page_is_refused_with_the_reason(
    coordinator_factory: Callable[..., WebCoordinator], make_page: Callable[..., DemoPage]
) -> None:
    coordinator = coordinator_factory("memory")
    app = make_page(coordinator.url)
    app.page.goto(f"{coordinator.url}/state")
    bad_start = """
    async () => {
      const { startParticipant } = await import('/xaynet.mjs');
      try {
        await startParticipant({ maxWeight: 0, modelLength: 650, train: async () => null });
        return 'started';
      } catch (error) { return error.message; }
    }
    """
    assert "max_weight must be a number > 0" in app.js(f"({bad_start})()", timeout=BOOT_TIMEOUT)
