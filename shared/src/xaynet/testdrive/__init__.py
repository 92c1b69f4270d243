"""``xaynet-test-drive``: hundreds of simulated participants in one process (CPython only).

Needs ``pip install xaynet[sdk]`` (httpx, numpy, PyNaCl, typer, rich). The ``xaynet`` package
never imports this one. :class:`~xaynet.testdrive.fleet.Fleet` is the programmatic entry point
(tests, benchmarks); :mod:`xaynet.testdrive.cli` the command line.
"""

from __future__ import annotations
