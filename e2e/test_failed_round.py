"""Too few devices for a round: the page says that the round failed, and why."""

from __future__ import annotations

from collections.abc import Callable

from demo_support import DemoPage, WebCoordinator


def test_a_failed_round_is_explained_in_the_log(
    coordinator_factory: Callable[..., WebCoordinator], make_page: Callable[..., DemoPage]
) -> None:
    coordinator = coordinator_factory("memory")
    demo = make_page(coordinator.url)
    # two devices can never bring the three updates a round needs (or a summer, at times)
    demo.open("?devices=2")
    demo.wait_for(lambda s: s["failures"] >= 1, 60, "a failed round")
    text = demo.page.locator("#log").inner_text()
    assert "failed:" in text
    assert "phase timed out with" in text  # the coordinator's reason, from GET /state
    assert demo.state()["connection"] == "connected"
