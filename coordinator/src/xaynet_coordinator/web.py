"""Serving the browser participant and the demo page (``[web]`` settings).

Everything the page loads comes from this server, never from a CDN:

===================================  ===========================================================
``/``                                ``web.root`` (index.html, app.js, worker.mjs, data/...)
``/vendor/pyodide/...``              ``node_modules/pyodide`` (the committed package-lock.json)
``/vendor/sodium/libsodium-wrappers.mjs``  the ESM build, its bare ``"libsodium"`` import
                                     rewritten to ``./libsodium.mjs`` (workers have no import
                                     maps)
``/vendor/sodium/libsodium.mjs``     ``node_modules/libsodium``'s ESM build
``/wheels/xaynet.whl``               the newest ``xaynet-*.whl`` in ``web.wheels`` (``make web``)
===================================  ===========================================================

``.wasm`` must go out as ``application/wasm`` (otherwise Pyodide hangs, it has no fallback) and
``.mjs`` as JavaScript (otherwise the module worker dies without a message); the types are
registered here so that a slim image without ``/etc/mime.types`` cannot regress.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from xaynet_coordinator.settings import WebSettings

__all__ = ["mount_web", "newest_wheel", "rewrite_sodium_import"]

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")

_BARE_IMPORT = re.compile(r"""from\s*(["'])libsodium\1""")
_NO_CACHE = {"Cache-Control": "no-cache"}


def rewrite_sodium_import(source: str) -> str:
    """The libsodium-wrappers ESM file with its one bare import made relative."""
    rewritten, hits = _BARE_IMPORT.subn('from"./libsodium.mjs"', source)
    if hits != 1:
        raise ValueError(f"expected one import of 'libsodium' in libsodium-wrappers, found {hits}")
    return rewritten


def newest_wheel(directory: Path) -> Path | None:
    """The most recently built ``xaynet-*.whl`` in ``directory``."""
    wheels = sorted(directory.glob("xaynet-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1] if wheels else None


def mount_web(app: FastAPI, web: WebSettings) -> None:
    """Add the routes of the table above; call after every API route (``/`` catches all)."""
    modules = web.node_modules
    wrappers = modules / "libsodium-wrappers/dist/modules-esm/libsodium-wrappers.mjs"
    sodium = modules / "libsodium/dist/modules-esm/libsodium.mjs"
    # Read once at start: a broken node_modules fails the start, not the first page load.
    wrappers_source = rewrite_sodium_import(wrappers.read_text(encoding="utf-8"))

    @app.get("/vendor/sodium/libsodium-wrappers.mjs", include_in_schema=False)
    async def sodium_wrappers() -> Response:
        return Response(wrappers_source, media_type="text/javascript")

    @app.get("/vendor/sodium/libsodium.mjs", include_in_schema=False)
    async def sodium_core() -> FileResponse:
        return FileResponse(sodium, media_type="text/javascript")

    @app.get("/wheels/xaynet.whl", include_in_schema=False)
    async def wheel() -> FileResponse:
        # Looked up per request: `make web` may rebuild it while the coordinator runs.
        path = newest_wheel(web.wheels)
        if path is None:
            raise HTTPException(404, f"no xaynet wheel in {web.wheels}: run `make web`")
        return FileResponse(path, media_type="application/octet-stream", headers=_NO_CACHE)

    app.mount("/vendor/pyodide", StaticFiles(directory=modules / "pyodide"), name="vendor-pyodide")
    app.mount("/", _PageFiles(directory=web.root, html=True), name="web")


class _PageFiles(StaticFiles):
    """The page's own files, revalidated on every load (they change with the code)."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.update(_NO_CACHE)
        return response
