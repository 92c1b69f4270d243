"""Debian's Chromium as the browser tests and the browser benchmark launch it.

Playwright drives ``/usr/bin/chromium`` (``XAYNET_CHROMIUM`` overrides it): Playwright's own
browser download needs a CDN this project never uses. Every host but localhost is made
unresolvable, so a stray CDN request fails loudly instead of hanging; pages must therefore be
opened at ``http://localhost:PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]

CHROMIUM = Path(os.environ.get("XAYNET_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a container's /dev/shm is small; this machine's is not, but CI machines may differ
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
]
