"""Deployment files: docker-compose.yml validates, and it, the Dockerfile and the CLI agree.

No Docker engine runs here, so the image is not built; these tests check what can be checked
without one: the compose file against Debian's ``docker-compose config`` and the Compose
Specification's JSON schema, and that the command line the container runs is one the console
script accepts with a config file that loads.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from xaynet_coordinator import cli
from xaynet_coordinator.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


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


def test_mounted_config_loads_and_the_cli_accepts_the_command_line() -> None:
    source, target = mounted_config()
    assert source.is_file()
    settings = load_settings(source)
    assert settings.storage.backend == "redis"
    assert settings.models.backend == "s3"
    argv = container_argv()
    arguments = [str(source) if arg == target else arg for arg in argv[1:]]
    result = CliRunner().invoke(cli.app, [*arguments, "--check"])
    assert result.exit_code == 0, result.output


def test_services_and_ports_agree() -> None:
    services = compose()["services"]
    settings = load_settings(mounted_config()[0])
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
    (base,) = [args for keyword, args in instructions if keyword == "FROM"]
    assert base.startswith("python:3.11-slim")
