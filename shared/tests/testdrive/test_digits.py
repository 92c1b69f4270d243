"""``xaynet-test-drive --task digits``: the demo's devices against the real coordinator.

The data comes once from the coordinator's ``GET /data/digits.json`` (``[web]`` enabled, the
repository's page and ``node_modules``), otherwise from ``--data``. Global models are checked by
the tool (``--verify``) and here again, independently, against the file the coordinator stored.
"""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")
pytest.importorskip("typer")

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sdk._coordinator import free_port
from typer.testing import CliRunner

from testdrive._support import (
    DIGITS_JSON,
    coordinator,
    digits_coordinator,
    global_model_file,
    run_cli,
)
from xaynet.browser import digits
from xaynet.testdrive import cli
from xaynet.testdrive.digits import DigitsConfig, DigitsDrive, DigitsRound, load_file
from xaynet.testdrive.fleet import Fleet, FleetConfig
from xaynet.testdrive.models import WeightSpec

runner = CliRunner()

#: how long any single scenario may take before the test fails
DEADLINE = 60.0


# -- the command line without a coordinator ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weight", "5"], "--weight does not apply to --task digits"),
        (["--model", "1"], "--model does not apply to --task digits"),
        (["--dropout-summers", "0.5"], "--dropout-summers does not apply"),
        (["--dropout-updaters", "0.1"], "--dropout-updaters does not apply"),
        (["--model-length", "4"], "the digits model has 650 values"),
        (["--task", "pictures"], "'pictures' is not one of"),
        (["-n", "0"], "participants"),
        (["--url", "ftp://127.0.0.1:8081"], "http:// or https://"),
    ],
)
def test_usage_errors_exit_with_2(args: list[str], message: str) -> None:
    result = runner.invoke(cli.app, ["--task", "digits", *args])
    assert result.exit_code == cli.USAGE, result.output
    assert message in result.output


def test_dump_models_does_not_apply(tmp_path: Path) -> None:
    args = ["--task", "digits", "--dump-models", str(tmp_path / "dump")]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == cli.USAGE, result.output
    assert "--dump-models does not apply to --task digits" in result.output


def test_data_needs_the_digits_task() -> None:
    result = runner.invoke(cli.app, ["--data", str(DIGITS_JSON)])
    assert result.exit_code == cli.USAGE, result.output
    assert "--data needs --task digits" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"train": {"x": [], "y": []}}', "not the digits data set: digits: train is empty"),
    ],
)
def test_a_bad_data_file_exits_with_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "digits.json"
    path.write_text(content, encoding="utf-8")
    # The file is read before the coordinator is asked: no coordinator needed.
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(cli.app, ["--task", "digits", "--data", str(path), "-u", url])
    assert result.exit_code == cli.USAGE, result.output
    assert f"--data {path}: {message}" in result.output


def test_a_missing_data_file_exits_with_2(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["--task", "digits", "--data", str(tmp_path / "none.json")])
    assert result.exit_code == cli.USAGE, result.output
    assert "does not exist" in result.output


def test_the_data_file_loads() -> None:
    dataset = load_file(DIGITS_JSON)
    assert (len(dataset.y_train), len(dataset.y_test)) == (1347, 450)


def test_an_unreachable_coordinator_exits_with_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    report = tmp_path / "report.json"
    args = ["--task", "digits", "-u", url, "-n", "2", "--plain", "--json", str(report)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == cli.UNREACHABLE, result.output
    assert f"cannot reach the coordinator at {url}" in result.output
    data = json.loads(report.read_text())
    assert (data["task"], data["exit_code"], data["rounds"]) == ("digits", cli.UNREACHABLE, [])


def test_the_help_tells_about_the_task() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for text in ("--task", "digits", "--data", "/data/digits.json"):
        assert text in result.output


# -- against the coordinator -----------------------------------------------------------------------


def stored_model(directory: Path, model_id: str) -> Any:
    return np.frombuffer(global_model_file(directory, model_id).read_bytes(), "<f8")


@pytest.mark.slow
def test_data_from_the_coordinator_rounds_verified(tmp_path: Path) -> None:
    with digits_coordinator(tmp_path, web=True) as process:
        report = tmp_path / "report.json"
        result = run_cli(
            *("--task", "digits", "-n", "6", "-u", process.url, "--rounds", "2", "--verify"),
            *("--plain", "--seed", "5", "--json", str(report), "--duration", str(DEADLINE)),
        )
        log = process.log()
    assert result.returncode == cli.OK, f"{result.stdout}\n{result.stderr}\n{log}"
    assert f"data {process.url}/data/digits.json" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "global model accuracy" in line]
    assert len(lines) >= 2
    assert "verified (max error" in lines[0]
    assert "test-drive summary (digits)" in result.stdout

    data = json.loads(report.read_text())
    assert (data["task"], data["devices"], data["seed"]) == ("digits", 6, 5)
    assert (data["train_images"], data["test_images"]) == (1347, 450)
    assert data["traffic"]["GET /data/digits.json"]["requests"] == 1
    assert data["totals"]["rounds_verified"] >= 2
    assert data["totals"]["mismatches"] == []
    verified = [r for r in data["rounds"] if r["verified"]]
    for record in verified:
        assert 0.0 <= record["accuracy"] <= 1.0
        assert record["loss"] > 0
        assert record["updates"] == record["accepted"]["update"] >= 3
        assert record["roles"]["update"] >= record["accepted"]["update"]
        assert record["accepted"]["sum"] >= 1
        assert stored_model(tmp_path, record["model_id"]).shape == (digits.MODEL_LENGTH,)
    assert data["traffic"]["POST /message"]["sent"] == sum(
        r["bytes_posted"] for r in data["rounds"]
    )
    assert set(data["timings"]) >= {"train", "mask", "post"}


@pytest.mark.slow
def test_without_web_or_data_the_error_says_what_to_do(tmp_path: Path) -> None:
    with digits_coordinator(tmp_path, web=False) as process:
        result = run_cli("--task", "digits", "-u", process.url, "--plain")
    assert result.returncode == cli.USAGE, result.stdout + result.stderr
    assert "serves no /data/digits.json (HTTP 404)" in result.stderr
    assert "--data PATH" in result.stderr


@pytest.mark.slow
def test_rounds_of_another_model_length_exit_with_2(tmp_path: Path) -> None:
    with coordinator(tmp_path, "memory") as process:  # model length 50
        result = run_cli("--task", "digits", "-u", process.url, "--data", str(DIGITS_JSON))
    assert result.returncode == cli.USAGE, result.stdout + result.stderr
    assert "models of 50 values, the digits task needs 650" in result.stderr


def run_drive(drive: DigitsDrive) -> None:
    async def main() -> None:
        await asyncio.wait_for(drive.run(), DEADLINE)

    asyncio.run(main())


@pytest.mark.slow
def test_the_models_are_the_weighted_means_of_the_devices_updates(tmp_path: Path) -> None:
    """Programmatic, with --data: the tool's check and an independent one agree."""
    recomputed: dict[str, Any] = {}

    with digits_coordinator(tmp_path, web=False) as process:
        drive = DigitsDrive(
            DigitsConfig(process.url, devices=6, rounds=3, data=DIGITS_JSON, seed=3, check=True)
        )

        def on_model(kind: str, record: DigitsRound) -> None:
            if kind != "model" or not record.verified:
                return
            assert drive.fleet is not None
            local = [m for m in drive.fleet.local_models(record.round_id) if m["accepted"]]
            weights = np.array([m["weight"] for m in local], dtype=np.float64)
            models = np.array([m["model"] for m in local], dtype=np.float64)
            assert record.model_id is not None
            recomputed[record.model_id] = weights @ models / weights.sum()

        drive.listeners.append(on_model)
        run_drive(drive)
    ledger = drive.ledger
    assert len(ledger.completed) >= 3
    assert ledger.mismatches == []
    assert len(recomputed) >= 3
    for model_id, expected in recomputed.items():
        # float32 masking: the stored model is the mean of the float32-rounded updates
        np.testing.assert_allclose(stored_model(tmp_path, model_id), expected, atol=1e-6)
    accuracies = [r.accuracy for r in ledger.completed]
    assert all(a is not None and 0.0 <= a <= 1.0 for a in accuracies)
    assert drive.dataset is not None
    assert drive.data_source == str(DIGITS_JSON)


@pytest.mark.slow
def test_updates_from_other_participants_fail_the_check(tmp_path: Path) -> None:
    """Random models of a second fleet enter the digits devices' rounds: --verify says so."""

    async def main(url: str) -> DigitsDrive:
        drive = DigitsDrive(DigitsConfig(url, devices=4, data=DIGITS_JSON, check=True))
        others = Fleet(FleetConfig(url, participants=6, seed=9, weights=WeightSpec.parse("1:50")))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(drive.run(stop)), asyncio.create_task(others.run(stop))]
        deadline = time.monotonic() + DEADLINE
        try:
            while not drive.ledger.mismatches:
                assert time.monotonic() < deadline, "no mismatch in time"
                for task in tasks:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        return drive

    with digits_coordinator(tmp_path, web=False) as process:
        drive = asyncio.run(main(process.url))
    record = drive.ledger.round(drive.ledger.mismatches[0])
    assert record.verified is False
    assert "max error" in record.note


@pytest.mark.slow
@pytest.mark.parametrize("give_up", [True, False], ids=["give-up", "retry-until-ctrl-c"])
def test_a_stopped_coordinator_is_reported(tmp_path: Path, give_up: bool) -> None:
    with digits_coordinator(tmp_path, web=False) as process:
        args = ["--task", "digits", "-n", "4", "-u", process.url, "--data", str(DIGITS_JSON)]
        args += ["--plain", "--timeout", "2", *(["--give-up-after", "3"] if give_up else [])]
        started = subprocess.Popen(
            [sys.executable, "-m", "xaynet.testdrive", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + DEADLINE
            while process.state().get("global_model") is None:
                assert time.monotonic() < deadline, "no global model"
                time.sleep(0.1)
            process.kill()
            if not give_up:
                time.sleep(4)  # retrying
                started.send_signal(signal.SIGINT)
            out, err = started.communicate(timeout=DEADLINE)
        finally:
            if started.poll() is None:
                started.kill()
                started.communicate()
    if give_up:
        assert started.returncode == cli.UNREACHABLE, f"{out}\n{err}"
        assert f"coordinator {process.url} unreachable: 3 failed attempts in a row" in err
    else:
        assert started.returncode == cli.OK, f"{out}\n{err}"
        assert any("devices are retrying" in line for line in out.splitlines()), out
        assert "test-drive summary (digits)" in out, "a clean stop prints the summary"
