"""pytest set-up for every suite: the shared test utilities in tools/testing are importable."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTING = str(Path(__file__).resolve().parent / "tools" / "testing")
if _TESTING not in sys.path:
    sys.path.insert(0, _TESTING)
