"""xaynet-test-drive against the real coordinator process, with memory and Redis storage.

The command runs as a subprocess (``python -m xaynet.testdrive``); the programmatic cases
drive a :class:`~xaynet.testdrive.fleet.Fleet` in the test's event loop. Each global model is
also checked here, independently of the tool: recomputed from the dumped local models and
compared with the file the coordinator stored.
"""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")
pytest.importorskip("typer")

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sdk._coordinator import Coordinator

from testdrive._support import (
    UPDATE_TIME_MAX,
    TlsCoordinator,
    coordinator,
    global_model_file,
    run_cli,
)
from xaynet.participant.actions import State
from xaynet.participant.role import Role
from xaynet.testdrive import cli
from xaynet.testdrive.fleet import Fleet, FleetConfig
from xaynet.testdrive.ledger import RoundRecord
from xaynet.testdrive.models import WeightSpec

pytestmark = [pytest.mark.slow]

#: how long any single scenario may take before the test fails
DEADLINE = 45.0


@pytest.fixture(scope="module", params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def running(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coordinator]:
    with coordinator(tmp_path_factory.mktemp(f"coordinator-{backend}"), backend) as process:
        yield process


def accepted_counts(log: str) -> dict[str, int]:
    """model id -> number of updates, from the coordinator's log lines."""
    pattern = r"global model (\S+) from (\d+) updates"
    return {model_id: int(count) for model_id, count in re.findall(pattern, log)}


# -- the command line ----------------------------------------------------------------------------


def test_twenty_participants_three_rounds_every_model_verified(
    running: Coordinator, tmp_path: Path
) -> None:
    dump, report = tmp_path / "dump", tmp_path / "report.json"
    result = run_cli(
        *("-n", "20", "-u", running.url, "--rounds", "3", "--seed", "7", "--plain"),
        *("--verify", "--dump-models", str(dump), "--json", str(report), "--duration", "40"),
    )
    assert result.returncode == cli.OK, f"{result.stdout}\n{result.stderr}\n{running.log()}"
    assert "verified" in result.stdout
    assert "test-drive summary" in result.stdout

    # Recompute every global model from the dump, without the tool's own check.
    logged = accepted_counts(running.log_path.read_text())
    checked = 0
    for manifest_path in sorted(dump.glob("round-*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if not (manifest["complete"] and manifest["global_model"]):
            continue
        accepted = [u for u in manifest["updates"] if u["status"] == "accepted"]
        weights = np.array([u["weight"] for u in accepted])
        models = np.stack([np.load(manifest_path.parent / u["file"]) for u in accepted])
        expected = weights @ models / weights.sum()
        stored = np.frombuffer(
            global_model_file(running.config.parent, manifest["model_id"]).read_bytes(), "<f8"
        )
        np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(np.load(manifest_path.parent / "global.npy"), stored)
        # The weights matter: the plain mean is another model.
        assert np.max(np.abs(models.mean(axis=0) - stored)) > 1e-3
        assert logged[manifest["model_id"]] == len(accepted), "every accepted update is known"
        assert manifest["verified"] is True
        checked += 1
    assert checked >= 3

    data = json.loads(report.read_text())
    assert data["totals"]["rounds_verified"] >= 3
    assert data["totals"]["mismatches"] == []
    complete = [r for r in data["rounds"] if r["complete"] and r["model_id"]]
    for record in complete:
        assert record["roles"].get("sum", 0) + record["roles"].get("update", 0) > 0
        assert set(record["durations"]) >= {"update", "sum2", "unmask"}
        assert record["message_bytes"]["update"] > 0
    assert data["traffic"]["POST /message"]["sent"] == sum(
        r["bytes_posted"] for r in data["rounds"]
    )


def test_dropouts_within_the_minimum_counts_still_complete_rounds(
    running: Coordinator, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_cli(
        *("-n", "20", "-u", running.url, "--rounds", "2", "--seed", "11", "--plain"),
        *("--dropout-summers", "0.5", "--dropout-updaters", "0.5", "--verify"),
        *("--json", str(report), "--duration", "40"),
    )
    assert result.returncode == cli.OK, f"{result.stdout}\n{result.stderr}\n{running.log()}"
    rounds = [r for r in json.loads(report.read_text())["rounds"] if r["complete"]]
    finished = [r for r in rounds if r["verified"]]
    assert len(finished) >= 2
    for record in finished:
        summers, updaters = record["roles"].get("sum", 0), record["roles"].get("update", 0)
        dropped, accepted = record["dropped"], record["accepted"]
        # Half the summers vanish after Sum (those whose Sum came too late never get there).
        assert dropped.get("sum", 0) <= summers // 2
        assert 1 <= accepted["sum2"] <= accepted["sum"] - dropped.get("sum", 0)
        # Half the updaters decline; the others' updates all count.
        assert dropped.get("update", 0) == updaters // 2
        assert accepted["update"] == updaters - dropped.get("update", 0)
        assert record["abandoned"].get("update: declined", 0) == dropped.get("update", 0)
    assert sum(r["dropped"].get("sum", 0) for r in finished) > 0
    assert sum(r["dropped"].get("update", 0) for r in finished) > 0


def test_verify_fails_when_updates_come_from_elsewhere(running: Coordinator, backend: str) -> None:
    if backend != "memory":
        pytest.skip("the check does not depend on the storage")
    # A second fleet's updates enter the same global models: the first cannot account for them.
    other = start_cli("-n", "10", "-u", running.url, "--seed", "41", "--plain", "--duration", "30")
    try:
        time.sleep(1.0)
        result = run_cli(
            *("-n", "10", "-u", running.url, "--seed", "43", "--plain", "--rounds", "1"),
            *("--verify", "--duration", "30"),
        )
    finally:
        other.send_signal(signal.SIGINT)
        other.communicate(timeout=30)
    assert result.returncode == cli.MISMATCH, f"{result.stdout}\n{result.stderr}"
    assert "the global model does not verify: max error" in result.stderr
    assert "MISMATCH" in result.stdout


# -- programmatic fleets ---------------------------------------------------------------------------


def fleet_config(running: Coordinator, **changes: Any) -> FleetConfig:
    settings: dict[str, Any] = {
        "url": running.url,
        "participants": 20,
        "seed": 23,
        "weights": WeightSpec.parse("1:50"),
        "event_timeout": 3.0,
    }
    settings.update(changes)
    return FleetConfig(**settings)


async def until(what: str, condition: Callable[[], bool], fleet_task: asyncio.Task[Any]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if fleet_task.done():
            fleet_task.result()
            raise AssertionError(f"the fleet stopped before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE} s")
        await asyncio.sleep(0.01)


def test_too_few_updaters_time_out_and_the_participants_follow(running: Coordinator) -> None:
    async def main() -> None:
        fleet = Fleet(fleet_config(running, dropout_updaters=1.0, seed=29))
        task = asyncio.create_task(fleet.run())
        ledger = fleet.ledger
        try:
            # A round seen from its start (the fleet may join one that an earlier test left);
            # the reason comes from GET /state, right after the failure event.
            def timed_out() -> list[RoundRecord]:
                return [r for r in ledger.failed if r.complete and r.failure != "failed"]

            await until("an Update phase that times out", lambda: bool(timed_out()), task)
            failed = timed_out()[0]
            assert failed.failure is not None
            assert "update phase timed out with 0 of at least 3 messages" in failed.failure
            assert failed.accepted.get("update", 0) == 0
            # The time-out is the configured one.
            assert failed.durations()["update"] == pytest.approx(UPDATE_TIME_MAX, abs=0.5)
            # The coordinator moves on; every participant takes part in the next round.
            next_round = failed.round_id + 1
            await until(
                "roles in the next round",
                lambda: sum(ledger.round(next_round).roles.values()) == 20,
                task,
            )
            fleet.dropout_updaters = 0.0  # lifted: rounds complete again
            await until(
                "a verified round after the failure",
                lambda: any(r.verified and r.round_id > failed.round_id for r in ledger.completed),
                task,
            )
            assert not ledger.mismatches
        finally:
            fleet.stop()
            await task

    asyncio.run(main())


def test_a_participant_restored_mid_round_continues(running: Coordinator) -> None:
    async def main() -> None:
        fleet = Fleet(fleet_config(running, seed=31))
        task = asyncio.create_task(fleet.run())
        ledger = fleet.ledger

        def waiting_summer() -> bool:
            round_id = ledger.round_id
            if round_id is None or not ledger.round(round_id).complete:
                return False
            return any(m.machine.state is State.SUM2 for m in fleet.members)

        try:
            await until("a summer waiting for its seeds", waiting_summer, task)
            member = next(m for m in fleet.members if m.machine.state is State.SUM2)
            round_id = member.machine.round_id
            assert round_id is not None
            before = member.machine
            state = await fleet.restart(member.index)
            assert member.machine is not before
            assert json.loads(state)["state"] == State.SUM2.value
            assert member.machine.role is Role.SUM
            assert member.machine.public_key == before.public_key
            await until(
                "the restored summer's Sum2",
                lambda: (round_id, "sum2") in member.accepted,
                task,
            )
            await until("the round's model", lambda: ledger.round(round_id).has_model, task)
            assert ledger.round(round_id).verified
        finally:
            fleet.stop()
            await task

    asyncio.run(main())


# -- a coordinator that goes away ------------------------------------------------------------------


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xaynet.testdrive", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_a_model(process: Coordinator) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        with_model = httpx.get(f"{process.url}/state", timeout=5).json().get("global_model")
        if with_model is not None:
            return
        time.sleep(0.1)
    process.fail("no global model")


@pytest.mark.parametrize("give_up", [True, False], ids=["give-up", "retry-until-ctrl-c"])
def test_a_stopped_coordinator_is_reported(tmp_path: Path, give_up: bool) -> None:
    with coordinator(tmp_path, "memory") as process:
        args = ["-n", "10", "-u", process.url, "--plain", "--timeout", "2"]
        cli_process = start_cli(*args, *(["--give-up-after", "3"] if give_up else []))
        try:
            wait_for_a_model(process)
            process.kill()
            if not give_up:
                time.sleep(4)  # retrying
                cli_process.send_signal(signal.SIGINT)
            out, err = cli_process.communicate(timeout=DEADLINE)
        finally:
            if cli_process.poll() is None:
                cli_process.kill()
                cli_process.communicate()
    if give_up:
        assert cli_process.returncode == cli.UNREACHABLE, f"{out}\n{err}"
        assert f"coordinator {process.url} unreachable: 3 failed attempts in a row" in err
    else:
        assert cli_process.returncode == cli.OK, f"{out}\n{err}"
        retrying = [line for line in out.splitlines() if "participants are retrying" in line]
        assert retrying, out
        assert process.url in retrying[0]
        assert "test-drive summary" in out, "a clean stop prints the summary"


def test_mutual_tls(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    with coordinator(tmp_path, "memory", tls=True) as process:
        assert isinstance(process, TlsCoordinator)
        pki = process.pki
        assert pki is not None
        base = ("-n", "10", "-u", process.url, "--plain", "--ca-cert", str(pki.ca))
        result = run_cli(
            *base,
            *("--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key)),
            *("--rounds", "1", "--verify", "--duration", "30"),
        )
        assert result.returncode == cli.OK, f"{result.stdout}\n{result.stderr}\n{process.log()}"
        assert "1 rounds complete, 1 verified" in result.stdout
        # Without a client certificate the coordinator refuses the connection.
        refused = run_cli(*base, "--duration", "30")
        assert refused.returncode == cli.UNREACHABLE, refused.stdout
        assert f"cannot reach the coordinator at {process.url}" in refused.stderr
