"""The demo's data file, read from the checkout (under Pyodide too: the runner mounts it)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from xaynet.browser import digits

DIGITS_JSON = Path(__file__).resolve().parents[3] / "web_participant" / "data" / "digits.json"


@functools.cache
def dataset() -> digits.Dataset:
    return digits.parse_dataset(json.loads(DIGITS_JSON.read_text("utf-8")))
