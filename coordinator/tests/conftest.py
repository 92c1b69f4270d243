"""Fixtures shared by the coordinator tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The coordinator runs on asyncio (uvicorn): its async tests do too."""
    return "asyncio"
