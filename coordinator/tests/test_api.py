"""The HTTP API in-process: every endpoint, every POST /message status, through httpx.

The app runs with its lifespan (storage, model store, engine) but without its timer loop: the
tests tick the engine with a fake clock, so nothing depends on wall-clock time.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import (
    OCTET_STREAM,
    Clock,
    FlakyStorage,
    Fleet,
    HttpDriver,
    RoundRun,
    StreamingASGITransport,
    assert_model,
    make_settings,
    read_sse,
)

from xaynet.round import RoundParameters
from xaynet_coordinator.app import create_app
from xaynet_coordinator.engine import Engine
from xaynet_coordinator.phase import Phase

pytestmark = pytest.mark.anyio

BASE_URL = "http://coordinator.test"


@dataclass
class Service:
    """The app inside its lifespan, a client on it, and what the tests drive it with."""

    app: Any
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    storage: FlakyStorage
    fleet: Fleet

    @property
    def driver(self) -> HttpDriver:
        return HttpDriver(self.client)

    async def start_round(self) -> RoundRun:
        await self.engine.tick()
        return self.run()

    def run(self, **kw: int) -> RoundRun:
        return RoundRun(self.engine, self.clock, self.driver, self.fleet, **kw)

    async def post(self, body: bytes, **headers: str) -> httpx.Response:
        headers = {"content-type": OCTET_STREAM, **headers}
        return await self.client.post("/message", content=body, headers=headers)


@asynccontextmanager
async def serve(tmp_path: Path, **sections: Any) -> AsyncIterator[Service]:
    settings = make_settings(tmp_path / "models", **sections)
    clock = Clock()
    storage = FlakyStorage()
    app = create_app(settings, clock=clock, storage=storage, run_loop=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Service(app, app.state.engine, client, clock, storage, Fleet())


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**kw: str) -> frozenset[tuple[str, str]]:
    return frozenset(kw.items())


# -- GET /params -----------------------------------------------------------------------------------


async def test_params_are_json_with_an_etag(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        client = service.client
        assert (await client.get("/params")).status_code == 204  # no round yet
        await service.engine.tick()
        response = await client.get("/params")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        data = response.json()
        assert set(data) == {
            "round_id",
            "coordinator_pk",
            "sum_probability",
            "update_probability",
            "seed",
            "mask_config",
            "model_length",
        }
        keys = service.engine.state.round_keys
        assert keys is not None
        assert data["round_id"] == 1
        assert data["coordinator_pk"] == keys.public.hex()
        assert data["sum_probability"] == 0.4
        assert data["update_probability"] == 0.9
        assert data["model_length"] == 8
        assert data["mask_config"]["vect"]["bound_type"] == "B2"
        assert RoundParameters.from_json_dict(data) == service.engine.round_parameters()

        etag = response.headers["etag"]
        assert etag.startswith('"')
        assert etag.endswith('"')
        assert "max-age=" in response.headers["cache-control"]
        assert "public" in response.headers["cache-control"]
        cached = await client.get("/params", headers={"if-none-match": etag})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == etag
        listed = await client.get("/params", headers={"if-none-match": f'"other", {etag}'})
        assert listed.status_code == 304
        stale = await client.get("/params", headers={"if-none-match": '"other"'})
        assert stale.status_code == 200

        service.clock.advance(10)  # round 1 times out, round 2 has other parameters
        await service.engine.tick()
        fresh = await client.get("/params", headers={"if-none-match": etag})
        assert fresh.status_code == 200
        assert fresh.json()["round_id"] == 2
        assert fresh.headers["etag"] != etag


# -- GET /sums and /seeds --------------------------------------------------------------------------


async def test_sums_are_published_during_update_and_sum2(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        client = service.client
        run = await service.start_round()
        await run.send_sums()
        assert (await client.get("/sums")).status_code == 204  # still collecting
        await run.close_phase(Phase.UPDATE)
        expected = {s.pk.hex(): s.sum_task().ephemeral_pk.hex() for s in run.summers}
        response = await client.get("/sums")
        assert response.status_code == 200
        assert response.json() == expected
        etag = response.headers["etag"]
        # Revalidated on every use: a cached sum dict of the previous round would make updaters
        # seal their seeds to the wrong summers.
        assert response.headers["cache-control"] == "public, no-cache"
        assert (await client.get("/sums", headers={"if-none-match": etag})).status_code == 304
        await run.send_updates(close=True)
        assert (await client.get("/sums")).json() == expected
        await run.send_sum2s(close=True)
        assert (await client.get("/sums")).status_code == 204  # round 2 collects again


async def test_seeds_are_published_per_summer_during_sum2(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        client = service.client
        run = await service.start_round()
        summer = run.summers[0]
        for bad in ("zz" * 32, "ab", "0" * 65, ""):
            response = await client.get("/seeds", params={"pk": bad})
            assert response.status_code == 400, bad
        assert (await client.get("/seeds")).status_code == 422  # pk is required
        await run.send_sums(close=True)
        await run.send_updates()
        assert (await client.get("/seeds", params={"pk": summer.pk.hex()})).status_code == 204
        await run.close_phase(Phase.SUM2)
        response = await client.get("/seeds", params={"pk": summer.pk.hex()})
        assert response.status_code == 200
        seeds = response.json()
        assert set(seeds) == {u.pk.hex() for u in run.updaters}
        assert {len(v) for v in seeds.values()} == {160}  # 80-byte sealed seeds in hex
        # the column is this summer's: it opens with its ephemeral key
        sealed = {bytes.fromhex(k): bytes.fromhex(v) for k, v in seeds.items()}
        summer.sum_task().model_mask(sealed)
        other = await client.get("/seeds", params={"pk": run.updaters[0].pk.hex()})
        assert other.status_code == 204  # not a summer: nothing sealed to it


# -- GET /model ------------------------------------------------------------------------------------


async def test_the_global_model_as_json_and_as_raw_doubles(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        client = service.client
        assert (await client.get("/model")).status_code == 204
        run = await service.start_round()
        expected = await run.play()
        response = await client.get("/model")
        assert response.status_code == 200
        data = response.json()
        assert data["round_id"] == 1
        assert data["model_id"] == f"1_{run.params.seed.hex()}"
        assert_model(data["model"], expected)
        assert response.headers["x-xaynet-round"] == "1"
        assert response.headers["x-xaynet-model-id"] == data["model_id"]
        etag = response.headers["etag"]
        assert (await client.get("/model", headers={"if-none-match": etag})).status_code == 304

        raw = await client.get("/model", headers={"accept": OCTET_STREAM})
        assert raw.status_code == 200
        assert raw.headers["content-type"] == OCTET_STREAM
        assert raw.headers["x-xaynet-dtype"] == "<f8"
        assert len(raw.content) == 8 * 8
        assert np.frombuffer(raw.content, dtype="<f8").tolist() == data["model"]


async def test_the_initial_model_is_served_as_round_zero(tmp_path: Path) -> None:
    initial = [0.5, -0.25, 1.0, 2.0, 0.0, -1.5, 3.25, 0.125]
    path = tmp_path / "initial.json"
    path.write_text(json.dumps(initial))
    async with serve(tmp_path, model={"initial": str(path)}) as service:
        response = await service.client.get("/model")
        assert response.status_code == 200
        assert response.json() == {"round_id": 0, "model_id": None, "model": initial}
        assert response.headers["x-xaynet-model-id"] == "initial"
        raw = await service.client.get("/model", headers={"accept": OCTET_STREAM})
        assert np.frombuffer(raw.content, dtype="<f8").tolist() == initial
        # a completed round replaces it
        run = await service.start_round()
        expected = await run.play()
        data = (await service.client.get("/model")).json()
        assert data["round_id"] == 1
        assert_model(data["model"], expected)


# -- GET /state ------------------------------------------------------------------------------------


async def test_state_shows_phase_round_deadlines_and_counts(tmp_path: Path) -> None:
    pet = {"sum": {"count": {"max": 3}}, "sum2": {"count": {"max": 3}}}
    async with serve(tmp_path, pet=pet) as service:
        client = service.client
        state = (await client.get("/state")).json()
        assert (state["phase"], state["round_id"], state["deadlines"]) == ("idle", 0, None)
        run = await service.start_round()
        start = service.clock.now
        third, fourth = service.fleet.summers(run.params, 4)[2:]
        await run.send_sums()
        await run.send_sums(run.summers[:1])  # duplicate: rejected
        await run.send_sums([third, fourth])  # count.max is 3: the fourth is discarded
        run.summers.append(third)
        state = (await client.get("/state")).json()
        assert state["phase"] == "sum"
        assert state["round_id"] == 1
        assert state["since"] == start
        assert state["now"] == start
        assert state["deadlines"] == {"earliest_end": start + 1, "latest_end": start + 10}
        assert state["counts"]["sum"] == {"accepted": 3, "rejected": 1, "discarded": 1}
        assert state["counts"]["update"] == {"accepted": 0, "rejected": 0, "discarded": 0}
        assert state["window"]["accepted"] == 3
        assert state["failure"] is None
        assert state["global_model"] is None
        await run.close_phase(Phase.UPDATE)
        await run.send_updates()
        state = (await client.get("/state")).json()
        assert state["phase"] == "update"
        assert state["summers"] == 3
        assert state["updates_aggregated"] == 3
        assert state["counts"]["update"]["accepted"] == 3
        await run.close_phase(Phase.SUM2)
        await run.send_sum2s(close=True)
        state = (await client.get("/state")).json()
        assert (state["phase"], state["round_id"]) == ("sum", 2)
        assert state["global_model"] == {"round_id": 1, "model_id": f"1_{run.params.seed.hex()}"}


# -- GET /events -----------------------------------------------------------------------------------


async def test_events_stream_the_phase_first_then_phases_and_models(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        await service.engine.tick()
        streaming = httpx.AsyncClient(
            transport=StreamingASGITransport(service.app), base_url=BASE_URL
        )
        async with streaming:
            with anyio.fail_after(10):
                async with streaming.stream("GET", "/events") as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    assert response.headers["cache-control"] == "no-cache"
                    lines = response.aiter_lines()
                    kind, data = await read_sse(lines)
                    assert (kind, data["phase"], data["round_id"]) == ("phase", "sum", 1)

                    await service.run().play()
                    phases = []
                    while True:
                        kind, data = await read_sse(lines, {"phase", "model"})
                        if kind == "model":
                            break
                        phases.append(data["phase"])
                    assert phases == ["update", "sum2", "unmask"]
                    assert data["round_id"] == 1
                    assert data["model_id"].startswith("1_")
                    kind, data = await read_sse(lines, {"phase"})
                    assert data["phase"] == "idle"
        assert service.engine.events.subscribers == 0  # the disconnect ended the stream


# -- GET /metrics ----------------------------------------------------------------------------------


async def test_metrics_in_prometheus_text(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        run = await service.start_round()
        await run.send_sums()
        await run.send_sums(run.summers[:1])
        await service.post(b"\x01" * 400)
        response = await service.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = metric_samples(response.text)
        assert samples[("xaynet_phase", labels())] == Phase.SUM.code
        assert samples[("xaynet_round_id", labels())] == 1
        messages = "xaynet_messages_total"
        accepted = labels(phase="sum", outcome="accepted", reason="accepted")
        assert samples[(messages, accepted)] == 2
        duplicate = labels(phase="sum", outcome="rejected", reason="already_submitted")
        assert samples[(messages, duplicate)] == 1
        garbage = labels(phase="sum", outcome="rejected", reason="undecryptable")
        assert samples[(messages, garbage)] == 1
        assert samples[("xaynet_message_bytes_received_total", labels())] > 400

        await run.close_phase(Phase.UPDATE)
        await run.send_updates(close=True)
        await run.send_sum2s(close=True)
        samples = metric_samples((await service.client.get("/metrics")).text)
        assert samples[("xaynet_round_id", labels())] == 2
        for phase in ("sum", "update", "sum2", "unmask"):
            count = ("xaynet_phase_duration_seconds_count", labels(phase=phase))
            assert samples[count] == 1, phase
        assert samples[("xaynet_phase_duration_seconds_sum", labels(phase="sum"))] == 1.0
        assert samples[("xaynet_rounds_completed_total", labels())] == 1
        assert samples[("xaynet_distinct_masks", labels())] == 1


async def test_metrics_can_be_disabled(tmp_path: Path) -> None:
    async with serve(tmp_path, metrics={"enabled": False}) as service:
        assert (await service.client.get("/metrics")).status_code == 404
        assert "/metrics" not in (await service.client.get("/openapi.json")).json()["paths"]


# -- health, readiness, docs -----------------------------------------------------------------------


async def test_health_and_readiness(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        client = service.client
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "storage": True, "model_store": True}
        service.storage.down = True
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["storage"] is False
        assert (await client.get("/healthz")).status_code == 200  # alive all the same
        service.storage.down = False
        assert (await client.get("/readyz")).status_code == 200
        await service.engine.shutdown()
        assert (await client.get("/readyz")).status_code == 503


async def test_openapi_and_docs(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        docs = await service.client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        # Served offline: every script and style sheet comes from this server, not a CDN.
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert assets
        assert all(url.startswith("/") for url in assets), assets
        for url in assets:
            asset = await service.client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        schema = (await service.client.get("/openapi.json")).json()
        for path in (
            "/message",
            "/params",
            "/sums",
            "/seeds",
            "/model",
            "/state",
            "/events",
            "/metrics",
            "/healthz",
            "/readyz",
        ):
            assert path in schema["paths"], path
        documented = set(schema["paths"]["/message"]["post"]["responses"])
        assert {"202", "400", "403", "409", "410", "413", "503"} <= documented


# -- POST /message ---------------------------------------------------------------------------------


async def test_message_statuses_of_the_protocol(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        run = await service.start_round()
        summer, updater = run.summers[0], run.updaters[0]

        async def status_of(body: bytes) -> tuple[int, str]:
            response = await service.post(body)
            data = response.json()
            assert data["status"] == response.status_code
            assert data["detail"]
            return response.status_code, data["reason"]

        assert await status_of(summer.sum_body()) == (202, "accepted")
        assert await status_of(summer.sum_body()) == (409, "already_submitted")
        assert await status_of(b"\x07" * 500) == (400, "undecryptable")
        assert await status_of(updater.sum_body()) == (403, "not_eligible")
        assert await status_of(summer.sum2_body_with(summer.random_mask())) == (409, "wrong_phase")
        old = run.summers[1].sum_body()
        await run.close_phase(Phase.UPDATE)
        service.clock.advance(10)  # no updates: round 1 fails, round 2 starts
        await service.engine.tick()
        assert service.engine.state.round_id == 2
        assert await status_of(old) == (410, "stale_round")
        service.storage.fail("add_summer", times=1)
        params = service.engine.round_parameters()
        assert params is not None
        fresh = service.fleet.summers(params, 1)[0]
        assert await status_of(fresh.sum_body()) == (503, "storage_unavailable")
        assert await status_of(fresh.sum_body()) == (202, "accepted")
        await service.engine.shutdown()
        assert await status_of(fresh.sum_body()) == (503, "shutting_down")


async def test_message_is_refused_before_the_first_round_and_when_the_phase_is_full(
    tmp_path: Path,
) -> None:
    async with serve(
        tmp_path, pet={"sum": {"count": {"max": 1}}, "sum2": {"count": {"max": 1}}}
    ) as service:
        response = await service.post(b"\x00" * 300)
        assert (response.status_code, response.json()["reason"]) == (503, "not_accepting")
        run = await service.start_round()
        first, second = run.summers
        assert (await service.post(first.sum_body())).status_code == 202
        response = await service.post(second.sum_body())
        assert (response.status_code, response.json()["reason"]) == (503, "phase_full")


async def test_message_content_type_must_be_octet_stream(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        run = await service.start_round()
        body = run.summers[0].sum_body()
        for wrong in ("text/plain", "application/json", "multipart/form-data; boundary=x"):
            response = await service.post(body, **{"content-type": wrong})
            assert response.status_code == 415, wrong
            assert response.json()["reason"] == "unsupported_media_type"
        assert await service.engine.storage.sum_dict() == {}
        response = await service.post(body, **{"content-type": "Application/Octet-Stream ; x=1"})
        assert response.status_code == 202
        # without a content type the body is taken as it is
        plain = await service.client.post("/message", content=run.summers[1].sum_body())
        assert plain.status_code == 202
        samples = metric_samples((await service.client.get("/metrics")).text)
        refused = labels(phase="sum", outcome="rejected", reason="unsupported_media_type")
        assert samples[("xaynet_messages_total", refused)] == 3


async def test_message_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    limit = 1000
    async with serve(tmp_path, api={"max_body_bytes": limit}) as service:
        await service.engine.tick()
        at_limit = await service.post(b"\x01" * limit)
        assert (at_limit.status_code, at_limit.json()["reason"]) == (400, "undecryptable")
        over = await service.post(b"\x01" * (limit + 1))
        assert (over.status_code, over.json()["reason"]) == (413, "too_large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(11):
                yield b"\x01" * 100

        streamed = await service.client.post(
            "/message", content=chunks(), headers={"content-type": OCTET_STREAM}
        )
        assert "content-length" not in streamed.request.headers
        assert streamed.request.headers["transfer-encoding"] == "chunked"
        assert (streamed.status_code, streamed.json()["reason"]) == (413, "too_large")

        consumed = False

        async def unread() -> AsyncIterator[bytes]:
            nonlocal consumed
            consumed = True
            yield b"\x01" * (limit + 1)

        declared = await service.client.post(
            "/message",
            content=unread(),
            headers={"content-type": OCTET_STREAM, "content-length": str(limit + 1)},
        )
        assert (declared.status_code, declared.json()["reason"]) == (413, "too_large")
        assert not consumed  # refused on the declared length, without reading the body
        samples = metric_samples((await service.client.get("/metrics")).text)
        too_large = labels(phase="sum", outcome="rejected", reason="too_large")
        assert samples[("xaynet_messages_total", too_large)] == 3


async def test_a_whole_round_over_http_with_chunked_updates(tmp_path: Path) -> None:
    async with serve(tmp_path) as service:
        run = await service.start_round()
        expected = await run.play(max_message_size=300)
        data = (await service.client.get("/model")).json()
        assert_model(data["model"], expected)
