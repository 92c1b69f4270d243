"""The HTTP layer: a FastAPI app around the engine (OpenAPI at ``/docs``).

Thin on purpose: routes turn requests into engine calls and engine answers into responses;
the app's lifespan builds the storage, the model store and the engine, and runs the loop that
ticks the engine at its deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from xaynet_coordinator import __version__
from xaynet_coordinator.engine import Engine, EngineConfig, StartupError
from xaynet_coordinator.events import CLOSE, Event, EventBus
from xaynet_coordinator.metrics import Metrics
from xaynet_coordinator.model_store import (
    DirectoryModelStore,
    ModelStore,
    ModelStoreError,
    S3ModelStore,
)
from xaynet_coordinator.outcome import Outcome
from xaynet_coordinator.phase import Phase
from xaynet_coordinator.settings import Settings
from xaynet_coordinator.storage import Storage, StorageError
from xaynet_coordinator.storage.memory import MemoryStorage
from xaynet_coordinator.storage.redis import RedisStorage
from xaynet_coordinator.web import mount_web

__all__ = ["create_app", "build_storage", "build_model_store"]

log = logging.getLogger("xaynet.coordinator")

# Keep-alive comment interval of the event stream (proxies close idle connections).
_SSE_HEARTBEAT = 15.0
# The run loop wakes at least this often, so a clock that jumps is noticed.
_MAX_SLEEP = 1.0

OCTET_STREAM = "application/octet-stream"


def build_storage(settings: Settings) -> Storage:
    if settings.storage.backend == "redis":
        return RedisStorage(settings.storage.url, settings.storage.key_prefix)
    return MemoryStorage()


def build_model_store(settings: Settings) -> ModelStore:
    models = settings.models
    if models.backend == "s3":
        s3 = models.s3
        return S3ModelStore(
            bucket=s3.bucket,
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key=s3.access_key.get_secret_value() if s3.access_key else None,
            secret_key=s3.secret_key.get_secret_value() if s3.secret_key else None,
        )
    return DirectoryModelStore(models.directory)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        pet=settings.pet,
        mask=settings.mask.pair(),
        model_length=settings.model.length,
        multipart=settings.multipart,
        checkpoint_every=settings.storage.checkpoint_every,
        initial_model=settings.model.load_initial(),
    )


async def _run(engine: Engine) -> None:
    """Tick the engine whenever a deadline passes or a message was decided."""
    while engine.state.phase is not Phase.SHUTDOWN:
        await engine.tick()
        deadline = engine.deadline()
        timeout = _MAX_SLEEP
        if deadline is not None:
            timeout = min(_MAX_SLEEP, max(0.0, deadline - engine.clock()))
        await engine.wait_for_change(timeout)


def _etag(payload: bytes) -> str:
    return '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'


def _cached_json(
    data: Any, if_none_match: str | None, *, max_age: int = 0, status: int = 200
) -> Response:
    """JSON with an ETag: a matching If-None-Match gets 304, so caches can serve pollers."""
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    etag = _etag(body)
    # max-age 0 ("no-cache"): a cache may keep it but revalidates it (a cheap 304) every time;
    # /sums and /model change at round boundaries that can be seconds apart.
    cache = f"public, max-age={max_age}" if max_age else "public, no-cache"
    headers = {"ETag": etag, "Cache-Control": cache}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _swagger_ui_static() -> Path:
    """The Swagger UI files shipped by the swagger-ui-py wheel (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: it serves the API docs offline")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _parse_pk(value: str) -> bytes | None:
    try:
        pk = bytes.fromhex(value)
    except ValueError:
        return None
    return pk if len(pk) == 32 else None


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    storage: Storage | None = None,
    model_store: ModelStore | None = None,
    run_loop: bool = True,
) -> FastAPI:
    """The coordinator app. Tests pass their own storage, model store or clock."""
    events = EventBus()
    metrics = Metrics()
    engine = Engine(
        engine_config(settings),
        storage if storage is not None else build_storage(settings),
        model_store if model_store is not None else build_model_store(settings),
        clock=clock,
        events=events,
        metrics=metrics,
    )
    max_body = settings.api.max_body_bytes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await engine.storage.connect()
            await engine.start()
        except (StartupError, StorageError, ModelStoreError) as exc:
            log.error("cannot start: %s", exc)
            raise
        loop = asyncio.get_running_loop()
        # For a signal handler (the CLI's server): end the event streams from any thread.
        app.state.close_event_streams = lambda: loop.call_soon_threadsafe(events.close)
        task = asyncio.create_task(_run(engine)) if run_loop else None
        try:
            yield
        finally:
            events.close()
            await engine.shutdown()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.storage.close()

    app = FastAPI(
        title="Xaynet coordinator",
        version=__version__,
        summary="PET protocol coordinator for masked cross-device federated learning",
        lifespan=lifespan,
        # FastAPI's default pages load Swagger UI from a CDN; serve it from the installed wheel.
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.mount("/docs/static", StaticFiles(directory=_swagger_ui_static()), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.post(
        "/message",
        status_code=202,
        summary="Submit a sealed message (or a chunk of one)",
        responses={
            400: {"description": "malformed, undecryptable or invalid"},
            403: {"description": "bad signature or not eligible"},
            409: {"description": "already submitted, or another phase"},
            410: {"description": "sealed to the previous round"},
            413: {"description": "too large"},
            503: {"description": "phase full or closing, storage unavailable, shutting down"},
        },
    )
    async def post_message(
        request: Request, content_type: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        def refuse(outcome: Outcome, size: int) -> JSONResponse:
            # refused before the engine sees the body: counted here, like every rejection
            metrics.message(engine.state.phase, outcome, size)
            return JSONResponse(outcome.to_json(), status_code=outcome.status)

        # media types are case-insensitive (RFC 9110, 8.3.1)
        if content_type is not None and content_type.split(";")[0].strip().lower() != OCTET_STREAM:
            return refuse(Outcome("unsupported_media_type", f"got {content_type}"), 0)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            return refuse(Outcome("too_large", f"the body limit is {max_body} bytes"), 0)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return refuse(Outcome("too_large", f"the body limit is {max_body} bytes"), 0)
            chunks.append(chunk)
        outcome = await engine.submit(b"".join(chunks))
        return JSONResponse(outcome.to_json(), status_code=outcome.status)

    @app.get("/params", summary="The current round parameters (JSON)")
    async def get_params(
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        params = engine.round_parameters()
        if params is None:
            return Response(status_code=204)
        return _cached_json(params.to_json_dict(), if_none_match, max_age=1)

    @app.get("/sums", summary="The sum dict: summer pk -> ephemeral pk (hex)")
    async def get_sums(if_none_match: Annotated[str | None, Header()] = None) -> Response:
        sums = engine.sum_dict()
        if sums is None:
            return Response(status_code=204)
        data = {pk.hex(): ephm.hex() for pk, ephm in sorted(sums.items())}
        return _cached_json(data, if_none_match)

    @app.get("/seeds", summary="The seeds sealed to one summer: updater pk -> sealed seed (hex)")
    async def get_seeds(
        pk: Annotated[str, Query(description="the summer's public key, 64 hex digits")],
    ) -> Response:
        summer = _parse_pk(pk)
        if summer is None:
            return JSONResponse({"detail": "pk must be 32 bytes as 64 hex digits"}, 400)
        seeds = await engine.seeds_for(summer)
        if seeds is None:
            return Response(status_code=204)
        return JSONResponse({u.hex(): s.hex() for u, s in sorted(seeds.items())})

    @app.get("/model", summary="The newest global model (JSON, or raw <f8 with octet-stream)")
    async def get_model(
        accept: Annotated[str | None, Header()] = None,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        model = engine.global_model
        if model is None:
            return Response(status_code=204)
        headers = {
            "X-Xaynet-Round": str(model.round_id),
            "X-Xaynet-Model-Id": model.model_id or "initial",
        }
        if accept is not None and OCTET_STREAM in accept:
            raw = model.values.astype("<f8").tobytes()
            return Response(
                raw, media_type=OCTET_STREAM, headers={**headers, "X-Xaynet-Dtype": "<f8"}
            )
        response = _cached_json(
            {
                "round_id": model.round_id,
                "model_id": model.model_id,
                "model": model.values.tolist(),
            },
            if_none_match,
        )
        response.headers.update(headers)
        return response

    @app.get("/state", summary="Phase, round, deadlines and message counts (for dashboards)")
    async def get_state() -> dict[str, Any]:
        return engine.snapshot()

    @app.get("/events", summary="Server-sent events: phase changes, rounds, global models")
    async def get_events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            async with events.subscribe() as queue:
                # The current phase first, so a client needs no separate GET /state.
                yield Event(0, "phase", engine.snapshot_phase()).encode()
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), _SSE_HEARTBEAT)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if event is CLOSE:
                        return  # the server is shutting down: clients reconnect later
                    yield event.encode()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    if settings.metrics.enabled:

        @app.get("/metrics", summary="Prometheus metrics")
        async def get_metrics() -> Response:
            return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: storage and model store answer")
    async def readyz() -> JSONResponse:
        storage_ok = await engine.storage.ping()
        store_ok = await engine.model_store.ready()
        ready = storage_ok and store_ok and engine.state.phase is not Phase.SHUTDOWN
        return JSONResponse(
            {"ready": ready, "storage": storage_ok, "model_store": store_ok},
            status_code=200 if ready else 503,
        )

    if settings.web.enabled:
        mount_web(app, settings.web)  # last: it serves every other path
    return app
