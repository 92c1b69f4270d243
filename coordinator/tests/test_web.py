"""Serving the browser participant: routes, content types, the libsodium rewrite, settings."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from support import make_settings

from xaynet_coordinator.app import create_app
from xaynet_coordinator.settings import WEB_VENDOR_FILES, Settings, SettingsError, load_settings
from xaynet_coordinator.web import newest_wheel, rewrite_sodium_import

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"

needs_node_modules = pytest.mark.skipif(
    not all((NODE_MODULES / name).is_file() for name in WEB_VENDOR_FILES),
    reason="node_modules is not installed (npm ci)",
)


def _web_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "web"
    (root / "data").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>demo</title>", "utf-8")
    (root / "app.js").write_text("export {};", "utf-8")
    (root / "worker.mjs").write_text("export {};", "utf-8")
    (root / "data" / "digits.json").write_text("{}", "utf-8")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    return root, wheels


def _settings(tmp_path: Path, root: Path, wheels: Path) -> Settings:
    return make_settings(
        tmp_path / "models",
        web={
            "enabled": True,
            "root": str(root),
            "node_modules": str(NODE_MODULES),
            "wheels": str(wheels),
        },
    )


async def _get_all(settings: Settings, paths: list[str]) -> dict[str, httpx.Response]:
    app = create_app(settings, run_loop=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return {path: await client.get(path) for path in paths}


@needs_node_modules
def test_the_page_and_its_runtime_are_served_with_the_types_browsers_need(tmp_path: Path) -> None:
    root, wheels = _web_tree(tmp_path)
    (wheels / "xaynet-0.1.0-py3-none-any.whl").write_bytes(b"PK wheel")
    answers = asyncio.run(
        _get_all(
            _settings(tmp_path, root, wheels),
            [
                "/",
                "/app.js",
                "/worker.mjs",
                "/data/digits.json",
                "/vendor/pyodide/pyodide.mjs",
                "/vendor/pyodide/pyodide.asm.wasm",
                "/vendor/sodium/libsodium-wrappers.mjs",
                "/vendor/sodium/libsodium.mjs",
                "/wheels/xaynet.whl",
                "/state",
                "/params",
                "/no-such-file.js",
            ],
        )
    )
    types = {path: r.headers.get("content-type", "").split(";")[0] for path, r in answers.items()}
    assert types["/"] == "text/html"
    for path in ("/app.js", "/worker.mjs", "/vendor/pyodide/pyodide.mjs"):
        assert types[path] == "text/javascript", path
    assert types["/vendor/sodium/libsodium-wrappers.mjs"] == "text/javascript"
    assert types["/vendor/sodium/libsodium.mjs"] == "text/javascript"
    # the wrong type makes Pyodide hang forever: this one matters most
    assert types["/vendor/pyodide/pyodide.asm.wasm"] == "application/wasm"
    assert answers["/vendor/pyodide/pyodide.asm.wasm"].content[:4] == b"\0asm"
    assert answers["/wheels/xaynet.whl"].content == b"PK wheel"
    # the API is not shadowed by the page mounted at /
    assert answers["/state"].json()["phase"]
    assert answers["/params"].status_code in (200, 204)
    assert answers["/no-such-file.js"].status_code == 404
    wrappers = answers["/vendor/sodium/libsodium-wrappers.mjs"].text
    assert 'from"./libsodium.mjs"' in wrappers
    assert 'from"libsodium"' not in wrappers
    assert answers["/app.js"].headers["cache-control"] == "no-cache"


@needs_node_modules
def test_the_newest_wheel_is_served_and_a_missing_one_is_a_404(tmp_path: Path) -> None:
    root, wheels = _web_tree(tmp_path)
    old = wheels / "xaynet-0.1.0-py3-none-any.whl"
    old.write_bytes(b"old")
    new = wheels / "xaynet-0.2.0-py3-none-any.whl"
    new.write_bytes(b"new")
    settings = _settings(tmp_path, root, wheels)
    os.utime(old, (time.time() - 60, time.time() - 60))
    assert newest_wheel(wheels) == new
    assert (
        asyncio.run(_get_all(settings, ["/wheels/xaynet.whl"]))["/wheels/xaynet.whl"].content
        == b"new"
    )
    new.unlink()
    old.unlink()
    missing = asyncio.run(_get_all(settings, ["/wheels/xaynet.whl"]))["/wheels/xaynet.whl"]
    assert missing.status_code == 404
    assert "make web" in missing.text


def test_the_page_is_not_served_unless_enabled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "models")
    answers = asyncio.run(_get_all(settings, ["/", "/vendor/pyodide/pyodide.mjs"]))
    assert answers["/"].status_code == 404
    assert answers["/vendor/pyodide/pyodide.mjs"].status_code == 404


def test_the_sodium_rewrite_needs_exactly_one_bare_import() -> None:
    assert rewrite_sodium_import('import e from"libsodium";x') == 'import e from"./libsodium.mjs";x'
    assert rewrite_sodium_import("import e from 'libsodium';") == 'import e from"./libsodium.mjs";'
    with pytest.raises(ValueError, match="found 0"):
        rewrite_sodium_import("import e from './other.mjs';")
    with pytest.raises(ValueError, match="found 2"):
        rewrite_sodium_import('from"libsodium";from"libsodium"')


@needs_node_modules
def test_the_rewrite_fits_the_installed_libsodium_wrappers() -> None:
    source = (NODE_MODULES / WEB_VENDOR_FILES[2]).read_text("utf-8")
    assert "./libsodium.mjs" in rewrite_sodium_import(source)


def test_missing_files_fail_the_start_naming_each_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[model]
length = 4
[web]
enabled = true
root = "{tmp_path / "nothing"}"
node_modules = "{tmp_path / "nothing"}"
wheels = "{tmp_path / "nothing"}"
""",
        "utf-8",
    )
    with pytest.raises(SettingsError) as info:
        load_settings(config)
    problems = dict(info.value.problems)
    assert "index.html" in problems["web.root"]
    assert "npm ci" in problems["web.node_modules"]
    assert "make web" in problems["web.wheels"]


@needs_node_modules
def test_a_node_modules_copy_with_a_changed_libsodium_fails_at_start(tmp_path: Path) -> None:
    root, wheels = _web_tree(tmp_path)
    (wheels / "xaynet-0.1.0-py3-none-any.whl").write_bytes(b"PK")
    modules = tmp_path / "node_modules"
    for name in WEB_VENDOR_FILES:
        (modules / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE_MODULES / name, modules / name)
    (modules / WEB_VENDOR_FILES[2]).write_text("export default 1;", "utf-8")
    settings = make_settings(
        tmp_path / "models",
        web={
            "enabled": True,
            "root": str(root),
            "node_modules": str(modules),
            "wheels": str(wheels),
        },
    )
    with pytest.raises(ValueError, match="import of 'libsodium'"):
        create_app(settings, run_loop=False)
