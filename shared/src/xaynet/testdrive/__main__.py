"""``python -m xaynet.testdrive``: the same as ``xaynet-test-drive``."""

from __future__ import annotations

from xaynet.testdrive.cli import main

if __name__ == "__main__":
    main()
