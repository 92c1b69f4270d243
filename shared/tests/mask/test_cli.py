"""``python -m xaynet.mask info``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xaynet.mask.__main__ import info, main
from xaynet.mask.config import MaskConfig

DEFAULT_ARGS = ["info", "--group", "Prime", "--data", "F32", "--bound", "B0", "--model", "M3"]


def _check_default(data: dict[str, object]) -> None:
    assert data["order"] == 20_000_000_000_021
    assert data["bytes_per_element"] == 6
    assert data["max_models"] == 1000
    assert data["add_shift"] == 1
    assert data["exp_shift"] == 10_000_000_000
    assert data["config"] == {
        "group_type": "Prime",
        "data_type": "F32",
        "bound_type": "B0",
        "model_type": "M3",
    }
    assert data["numpy_path"] is True
    assert data["resolution"] == "1e-10"


@pytest.mark.skipif(sys.platform == "emscripten", reason="no subprocesses under Pyodide")
def test_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xaynet.mask", *DEFAULT_ARGS],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    _check_default(json.loads(done.stdout))


@pytest.mark.skipif(sys.platform == "emscripten", reason="no subprocesses under Pyodide")
def test_subprocess_bad_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xaynet.mask", "info", "--bound", "B3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "bound_type" in done.stderr
    assert done.stdout == ""


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DEFAULT_ARGS) == 0
    _check_default(json.loads(capsys.readouterr().out))


def test_defaults_and_lengths(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--length", "1000", "--summers", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["group_type"] == "Power2"
    assert data["order"] == 2**45
    assert data["model_length"] == 1000
    # MaskVect header 8 + 1000 * 6, MaskUnit 4 + 6.
    assert data["masked_model_bytes"] == 8 + 6000 + 4 + 6
    assert data["raw_float32_bytes"] == 4000
    assert data["summers"] == 3
    assert data["sampling_acceptance"] == 1.0


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["info", "--group", "Prim"], "group_type"),
        (["info", "--data", "F16"], "data_type"),
        (["info", "--bound", "B3"], "bound_type"),
        (["info", "--model", "M4"], "model_type"),
        (["info", "--length", "0"], "--length"),
        (["info", "--length", "x"], "--length"),
        (["info", "--summers", "0"], "--summers"),
        (["frobnicate"], "invalid choice"),
        ([], "command"),
    ],
)
def test_errors_exit_2(argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert field in captured.err
    assert captured.out == ""


def test_info_function_every_bmax_row() -> None:
    config = MaskConfig.from_names("Integer", "F64", "Bmax", "M12")
    data = info(config, None, 1)
    assert data["bytes_per_element"] == 268
    assert data["resolution"] == "1e-324"
    assert data["numpy_path"] is False
    assert json.loads(json.dumps(data)) == data
