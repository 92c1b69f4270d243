"""Fixtures of the masking tests.

Masks are expanded from a seed by the crypto PRG; tests that mask or derive masks take the
``prg`` fixture and are skipped when no crypto backend can be loaded in this runtime.
"""

from __future__ import annotations

import pytest

from xaynet import crypto
from xaynet.errors import CryptoUnavailableError


@pytest.fixture(scope="session")
def prg() -> None:
    """Skip the test unless the seed expansion (crypto.prg) works here."""
    try:
        crypto.prg(bytes(32), 1)
    except CryptoUnavailableError as exc:
        pytest.skip(f"no crypto backend for the mask PRG: {exc}")
