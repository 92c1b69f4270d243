"""xaynet-test-drive's command line without a coordinator: usage errors, no coordinator."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")
pytest.importorskip("typer")

import json
import subprocess
import sys
from pathlib import Path

from sdk._coordinator import free_port
from typer.testing import CliRunner

from xaynet.testdrive import cli

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "participants"),
        (["--dropout-summers", "1.5"], "dropout-summers"),
        (["--dropout-updaters", "-0.1"], "dropout-updaters"),
        (["--weight", "heavy"], "weight 'heavy'"),
        (["--weight", "9:1"], "weights: 9.0 > 1.0"),
        (["--model", "noise"], "expected 'random' or a number"),
        (["--url", "ftp://127.0.0.1:8081"], "http:// or https://"),
        (["--client-key", __file__], "--client-key needs --client-cert"),
        (["--insecure", "--ca-cert", __file__], "exclude each other"),
        (["--rounds", "0"], "rounds"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_usage_errors_exit_with_2(args: list[str], message: str) -> None:
    result = runner.invoke(cli.app, args)
    assert result.exit_code == cli.USAGE, result.output
    assert message in result.output


def test_an_unreachable_coordinator_exits_with_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    report = tmp_path / "report.json"
    result = runner.invoke(cli.app, ["-u", url, "-n", "3", "--plain", "--json", str(report)])
    assert result.exit_code == cli.UNREACHABLE, result.output
    assert f"cannot reach the coordinator at {url}" in result.output
    assert "ConnectError" in result.output
    data = json.loads(report.read_text())
    assert data["exit_code"] == cli.UNREACHABLE
    assert data["rounds"] == []


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "xaynet-test-drive"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e shared)")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for option in ("--participants", "--dropout-updaters", "--dump-models", "--verify"):
        assert option in result.stdout
