"""pytest setup shared by every xaynet test, under CPython and under Pyodide.

The same suite runs inside Pyodide (tools/pyodide_pytest.mjs), where PyNaCl and numpy do not
exist: Pyodide's package repository is not reachable, only pure-Python wheels are. Tests that need
one of them carry ``pytest.mark.pynacl`` / ``pytest.mark.numpy`` and are skipped here when the
import is missing, so the Pyodide run reports them as skipped instead of failing at import.
Such tests must import the library inside the test, not at module level.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from hypothesis import settings

# marker name -> importable module it stands for
_OPTIONAL_MODULES = {"pynacl": "nacl", "numpy": "numpy"}

if sys.platform == "emscripten":
    # The checkout is mounted through Node's file system: keep Hypothesis' example database off
    # it (the runner also points HYPOTHESIS_STORAGE_DIRECTORY at Pyodide's in-memory /tmp), and
    # drop the per-example deadline, which wasm's slower and noisier timing would trip.
    settings.register_profile("pyodide", database=None, deadline=None)
    settings.load_profile("pyodide")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {
        marker: module
        for marker, module in _OPTIONAL_MODULES.items()
        if importlib.util.find_spec(module) is None
    }
    for item in items:
        for marker, module in missing.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=f"needs {module}, not importable here"))
