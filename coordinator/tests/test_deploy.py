"""Deployment files: docker-compose.yml validates, and it, the Dockerfile and the CLI agree.

No Docker engine runs here, so the image is not built; these tests check what can be checked
without one: the compose file against Debian's ``docker-compose config`` and the Compose
Specification's JSON schema, that the command lines the containers run (the coordinator and the
test-drive devices) are ones the console scripts accept, with a config file that loads, and that
the image puts the demo page's files where that config's ``[web]`` section looks for them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from xaynet_coordinator import cli
from xaynet_coordinator.settings import WEB_VENDOR_FILES, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: [web] off: its paths exist inside the image only (test_the_image_carries_the_page checks them)
NO_WEB = {"XAYNET__WEB__ENABLED": "false"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("XAYNET__"):
            monkeypatch.delenv(name)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text("utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """The build stages: (FROM arguments, the stage's other instructions)."""
    result: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            result.append((arguments, []))
        else:
            assert result, f"{keyword} before FROM"
            result[-1][1].append((keyword, arguments))
    return result


def exec_form(instruction: str) -> list[str]:
    values = [args for keyword, args in dockerfile_instructions() if keyword == instruction]
    assert len(values) == 1, f"expected one {instruction}"
    parsed = json.loads(values[0])  # exec form: signals reach the process directly
    assert isinstance(parsed, list)
    return [str(item) for item in parsed]


def container_argv() -> list[str]:
    """What the coordinator container runs: the image's ENTRYPOINT plus compose's command."""
    service = compose()["services"]["coordinator"]
    entrypoint = service.get("entrypoint", exec_form("ENTRYPOINT"))
    command = service.get("command", exec_form("CMD"))
    parts = []
    for part in (entrypoint, command):
        parts += shlex.split(part) if isinstance(part, str) else list(part)
    return parts


def load_mounted(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in NO_WEB.items():
        monkeypatch.setenv(name, value)
    return load_settings(mounted_config()[0])


def mounted_config() -> tuple[Path, str]:
    """The host file compose mounts as the coordinator's config, and its path inside."""
    argv = container_argv()
    target = argv[argv.index("--config") + 1]
    for volume in compose()["services"]["coordinator"]["volumes"]:
        source, _, rest = volume.partition(":")
        inside = rest.split(":")[0]
        if inside == target:
            return ROOT / source, target
    raise AssertionError(f"no volume mounts {target}")


# -- validators ------------------------------------------------------------------------------------


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr.upper(), result.stderr


def test_compose_spec_schema_validates() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- consistency -----------------------------------------------------------------------------------


def test_container_runs_the_console_script_with_config() -> None:
    argv = container_argv()
    project = tomllib.loads((ROOT / "coordinator" / "pyproject.toml").read_text("utf-8"))
    scripts = project["project"]["scripts"]
    assert argv[0] in scripts
    assert scripts[argv[0]] == "xaynet_coordinator.cli:main"
    assert "--config" in argv
    # the Dockerfile alone (without compose) runs the same thing
    assert [*exec_form("ENTRYPOINT"), *exec_form("CMD")] == argv


def test_mounted_config_loads_and_the_cli_accepts_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = mounted_config()
    assert source.is_file()
    settings = load_mounted(monkeypatch)
    assert settings.storage.backend == "redis"
    assert settings.models.backend == "s3"
    argv = container_argv()
    arguments = [str(source) if arg == target else arg for arg in argv[1:]]
    result = CliRunner().invoke(cli.app, [*arguments, "--check"], env=NO_WEB)
    assert result.exit_code == 0, result.output


def test_services_and_ports_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    settings = load_mounted(monkeypatch)
    # the coordinator listens on all interfaces of the container, on the published port
    assert settings.api.host == "0.0.0.0"
    published = [str(port) for port in services["coordinator"]["ports"]]
    assert f"{settings.api.port}:{settings.api.port}" in published
    expose = [args for keyword, args in dockerfile_instructions() if keyword == "EXPOSE"]
    assert expose == [str(settings.api.port)]
    # the healthcheck asks the same port
    (health,) = [args for keyword, args in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{settings.api.port}/healthz" in health
    # storage and model store point at the compose services
    assert settings.storage.url.startswith("redis://redis:")
    assert settings.models.s3.endpoint_url == "http://minio:9000"
    depends = services["coordinator"]["depends_on"]
    for name in ("redis", "minio"):
        assert depends[name] == {"condition": "service_healthy"}
        assert "healthcheck" in services[name]
    # Redis keeps an append-only file, fsynced every second, on a named volume
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--appendfsync everysec" in redis_command
    named = set(compose()["volumes"])
    for name in ("redis", "minio"):
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in named


def test_s3_credentials_match_minio() -> None:
    services = compose()["services"]
    coordinator = services["coordinator"]["environment"]
    minio = services["minio"]["environment"]
    assert coordinator["XAYNET__MODELS__S3__ACCESS_KEY"] == minio["MINIO_ROOT_USER"]
    assert coordinator["XAYNET__MODELS__S3__SECRET_KEY"] == minio["MINIO_ROOT_PASSWORD"]


def test_image_runs_as_non_root() -> None:
    instructions = dockerfile_instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    base, _ = stages()[-1]
    assert base.startswith("python:3.11-slim")


# -- the demo page and the test-drive devices ----------------------------------------------------


def test_the_image_carries_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """The [web] paths of the mounted config are where the Dockerfile puts the page's files."""
    raw = tomllib.loads(mounted_config()[0].read_text("utf-8"))
    assert raw["web"]["enabled"] is True
    web = load_mounted(monkeypatch).web
    (node_from, node_steps), (_, final) = stages()[0], stages()[-1]
    node_alias = node_from.split()[-1]
    assert node_from.startswith("node:")
    assert " AS " in node_from.upper()
    copies = {tuple(args.split()) for keyword, args in final if keyword == "COPY"}
    # the page itself, from the repository
    assert ("web_participant/", f"{web.root}/") in copies
    for name in ("index.html", "app.js", "worker.mjs", "data/digits.json"):
        assert (ROOT / "web_participant" / name).is_file(), name
    # Pyodide and libsodium.js: `npm ci` from the committed lock, in the node stage
    workdir = next(args for keyword, args in node_steps if keyword == "WORKDIR")
    assert ("COPY", "package.json package-lock.json ./") in node_steps
    runs = [args for keyword, args in node_steps if keyword == "RUN"]
    assert any(run.startswith("npm ci") for run in runs)
    lock = json.loads((ROOT / "package-lock.json").read_text("utf-8"))["packages"]
    for package in sorted({name.split("/")[0] for name in WEB_VENDOR_FILES}):
        assert f"node_modules/{package}" in lock, package
        source = f"{workdir}/node_modules/{package}"
        assert (f"--from={node_alias}", source, f"{web.node_modules}/{package}") in copies
    # the xaynet wheel the browser installs
    final_runs = [shlex.split(args) for keyword, args in final if keyword == "RUN"]
    wheel_builds = [
        run[run.index("wheel") :] for run in final_runs if "pip" in run and "wheel" in run
    ]
    assert len(wheel_builds) == 1
    build = wheel_builds[0]
    assert "--no-deps" in build
    assert build[build.index("-w") + 1] == str(web.wheels)
    assert "/tmp/build/shared" in build


def test_the_build_context_keeps_the_page_and_leaves_installs_out() -> None:
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"node_modules", ".cache", ".venv", ".git"} <= ignored
    needed = ("web_participant", "package.json", "package-lock.json", "shared", "coordinator")
    for name in (*needed, "configs", "requirements"):
        assert not {name, f"/{name}", f"{name}/"} & ignored, name


def test_the_test_drive_service_runs_digits_devices_against_the_coordinator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    drive, coordinator = services["test-drive"], services["coordinator"]
    # the coordinator's image, running the other console script
    assert drive["image"] == coordinator["image"]
    shared = tomllib.loads((ROOT / "shared" / "pyproject.toml").read_text("utf-8"))
    assert drive["entrypoint"] == ["xaynet-test-drive"]
    assert shared["project"]["scripts"]["xaynet-test-drive"] == "xaynet.testdrive.cli:main"
    command = list(drive["command"])
    assert command[command.index("--task") + 1] == "digits"
    settings = load_mounted(monkeypatch)
    assert command[command.index("-u") + 1] == f"http://coordinator:{settings.api.port}"
    # it starts once the coordinator answers (the image's healthcheck), and has none itself
    assert drive["depends_on"]["coordinator"] == {"condition": "service_healthy"}
    assert any(keyword == "HEALTHCHECK" for keyword, _ in dockerfile_instructions())
    assert drive["healthcheck"] == {"disable": True}
    assert drive["restart"] in ("unless-stopped", "always", "on-failure")
    # the coordinator's rounds are the digits model's, and it serves the data (GET /data/...)
    from xaynet.browser.digits import MODEL_LENGTH

    assert settings.model.length == MODEL_LENGTH
    assert (ROOT / "web_participant" / "data" / "digits.json").is_file()


def test_the_test_drive_command_line_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's arguments parse: against a port nobody listens on, the exit is 3
    (coordinator unreachable), not 2 (usage error)."""
    pytest.importorskip("httpx")
    from xaynet.testdrive import cli as test_drive

    command = list(compose()["services"]["test-drive"]["command"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    command[command.index("-u") + 1] = f"http://127.0.0.1:{free}"
    result = CliRunner().invoke(test_drive.app, command)
    assert result.exit_code == test_drive.UNREACHABLE, result.output
    assert "cannot reach the coordinator" in result.output
