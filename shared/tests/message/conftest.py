"""Key fixtures for the message tests, from the package's own crypto facade.

Tests that sign, verify, seal or open take these fixtures and are skipped when no crypto backend
can be loaded (for example under Pyodide before libsodium.js is set up).
"""

from __future__ import annotations

import pytest

from xaynet import crypto
from xaynet.errors import CryptoUnavailableError


def _require_backend() -> None:
    try:
        crypto.get_backend()
    except CryptoUnavailableError as exc:
        pytest.skip(f"no crypto backend: {exc}")


@pytest.fixture(scope="session")
def participant_key() -> crypto.SigningKeyPair:
    _require_backend()
    return crypto.SigningKeyPair.from_seed(bytes(range(32)))


@pytest.fixture(scope="session")
def other_participant_key() -> crypto.SigningKeyPair:
    _require_backend()
    return crypto.SigningKeyPair.from_seed(bytes(range(1, 33)))


@pytest.fixture(scope="session")
def round_keys() -> crypto.EncryptKeyPair:
    _require_backend()
    return crypto.EncryptKeyPair.from_seed(bytes(range(100, 132)))


@pytest.fixture(scope="session")
def other_round_keys() -> crypto.EncryptKeyPair:
    _require_backend()
    return crypto.EncryptKeyPair.from_seed(bytes(range(200, 232)))
