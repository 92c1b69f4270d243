"""The ``xaynet-coordinator`` command: settings errors, --check, uvicorn options, logging."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xaynet_coordinator import cli
from xaynet_coordinator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No XAYNET__ variable leaks in; the logging set-up of a run is undone afterwards."""
    for name in list(os.environ):
        if name.upper().startswith("XAYNET__"):
            monkeypatch.delenv(name)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn_loggers = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in uvicorn_loggers.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the server and the app factory; what they were called with."""
    calls: dict[str, Any] = {}
    sentinel = object()

    def create_app(settings: Settings) -> object:
        calls["settings"] = settings
        return sentinel

    def run(app: object, **options: Any) -> None:
        calls["app"] = app
        calls["options"] = options

    fake = types.ModuleType("xaynet_coordinator.app")
    fake.create_app = create_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xaynet_coordinator.app", fake)
    monkeypatch.setattr(cli, "run_server", run)
    calls["sentinel"] = sentinel
    return calls


def test_console_script_points_at_main() -> None:
    (script,) = entry_points(group="console_scripts", name="xaynet-coordinator")
    assert script.value == "xaynet_coordinator.cli:main"


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nlength = 4\n[pet.update]\ncount = { min = 3, max = 5000 }\n")
    result = runner.invoke(cli.app, ["--config", str(path)])
    assert result.exit_code == 2
    assert "pet.update.count.max: must not exceed 1000" in result.stderr
    assert str(path) in result.stderr
    assert result.stdout == ""


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["-c", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2
    assert "absent.toml: configuration file not found" in result.stderr


def test_no_config_hints_at_the_option() -> None:
    result = runner.invoke(cli.app, [])
    assert result.exit_code == 2
    assert "model.length: required key is missing" in result.stderr
    assert "no --config" in result.stderr


def test_check_prints_the_settings_and_exits_0(served: dict[str, Any]) -> None:
    result = runner.invoke(cli.app, ["--config", str(CONFIGS / "demo.toml"), "--check"])
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.stdout
    assert "model.length" in result.stdout
    assert "650" in result.stdout
    assert "Power2/F32/B2/M3" in result.stdout
    assert "app" not in served  # --check never starts the server


def test_env_override_shows_in_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAYNET__PET__SUM__PROBABILITY", "0.125")
    result = runner.invoke(cli.app, ["--config", str(CONFIGS / "config.toml"), "--check"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "pet.sum.probability" in line)
    assert "0.125" in row


def test_env_override_reaches_the_app(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAYNET__API__BIND_ADDRESS", "[::1]:9099")
    monkeypatch.setenv("XAYNET__LOG__FORMAT", "json")
    result = runner.invoke(cli.app, ["--config", str(CONFIGS / "config.toml")])
    assert result.exit_code == 0, result.output
    assert served["app"] is served["sentinel"]
    assert served["settings"].api.bind_address == "[::1]:9099"
    options = served["options"]
    assert (options["host"], options["port"]) == ("::1", 9099)
    assert options["timeout_graceful_shutdown"] == cli.GRACEFUL_SHUTDOWN_SECONDS
    assert options["log_config"] is None
    assert options["lifespan"] == "on"
    assert not any(key.startswith("ssl_") for key in options)
    assert isinstance(logging.getLogger().handlers[-1].formatter, cli.JsonFormatter)


def test_tls_options(tmp_path: Path, served: dict[str, Any]) -> None:
    from test_settings import _self_signed

    cert, key = _self_signed(tmp_path, "server")
    ca, _ = _self_signed(tmp_path, "clients")
    path = tmp_path / "tls.toml"
    path.write_text(
        f"[model]\nlength = 4\n[api]\ntls_certificate = '{cert}'\ntls_key = '{key}'\n"
        f"tls_client_auth = '{ca}'\n"
    )
    result = runner.invoke(cli.app, ["--config", str(path)])
    assert result.exit_code == 0, result.output
    options = served["options"]
    assert options["ssl_certfile"] == str(cert)
    assert options["ssl_keyfile"] == str(key)
    assert options["ssl_ca_certs"] == str(ca)
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_json_formatter() -> None:
    formatter = cli.JsonFormatter()
    record = logging.LogRecord("xaynet.test", logging.WARNING, __file__, 1, "n=%d", (3,), None)
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "warning"
    assert entry["logger"] == "xaynet.test"
    assert entry["message"] == "n=3"
    assert entry["time"].endswith("+00:00")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert "RuntimeError: boom" in json.loads(formatter.format(record))["exception"]


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xaynet_coordinator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "--config" in result.stdout
    assert "--check" in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serves_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """The real process: /healthz answers, SIGTERM runs the app's shutdown and ends it; an open
    event stream is closed at once instead of holding the shutdown until its timeout."""
    pytest.importorskip("xaynet_coordinator.app")
    httpx = pytest.importorskip("httpx")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")},
        "XAYNET__API__BIND_ADDRESS": f"127.0.0.1:{port}",
        "XAYNET__MODELS__DIRECTORY": str(tmp_path / "models"),
        # the page's paths are relative to the repository, not to tmp_path
        "XAYNET__WEB__ENABLED": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "xaynet_coordinator", "--config", str(CONFIGS / "demo.toml")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stream_lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the coordinator did not come up"
                time.sleep(0.2)
        with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=30) as stream:
            lines = stream.iter_lines()
            stream_lines.append(next(lines))  # the current phase: the stream is open
            process.send_signal(signal.SIGTERM)
            stream_lines.extend(lines)  # ends when the server closes the stream
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the signal once it has shut down, so the status is that of SIGTERM
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert stream_lines[0].startswith("id: ")
    assert "graceful shutdown exceeded" not in output
