"""Xaynet for Python: the sans-IO core of the PET protocol for masked federated learning."""

from __future__ import annotations

__version__ = "0.1.0"
