"""``python -m xaynet_coordinator``: the same as the ``xaynet-coordinator`` command."""

from __future__ import annotations

from xaynet_coordinator.cli import main

if __name__ == "__main__":
    main()
