"""Exponential backoff with jitter, for drivers that wait and retry (pure: no clock, no sleep).

The delay before retry ``attempt`` (0, 1, 2, ...) is ``min(maximum, initial * factor**attempt)``,
shortened by a random fraction of at most ``jitter`` so that many participants that failed
together do not retry together. The random number comes from a ``random.Random`` the caller
owns, so a seeded one gives reproducible delays.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from xaynet.errors import LocalProtocolError

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff policy: delays in seconds."""

    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 10.0
    #: the largest fraction of a delay that jitter removes, in [0, 1]
    jitter: float = 0.5

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "maximum", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LocalProtocolError(f"Backoff.{name} must be a number")
            if not math.isfinite(value) or value < 0:
                raise LocalProtocolError(f"Backoff.{name} must be finite and >= 0, got {value}")
        if self.factor < 1:
            raise LocalProtocolError(f"Backoff.factor must be >= 1, got {self.factor}")
        if self.initial > self.maximum:
            raise LocalProtocolError("Backoff.initial must not exceed Backoff.maximum")
        if self.jitter > 1:
            raise LocalProtocolError(f"Backoff.jitter must be in [0, 1], got {self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The delay before ``attempt`` without jitter."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise LocalProtocolError(f"attempt must be an integer >= 0, got {attempt!r}")
        if self.factor == 1 or self.initial == 0:
            return self.initial
        # Past this many doublings the ceiling is the maximum anyway (and factor**attempt could
        # overflow a float).
        limit = math.log(self.maximum / self.initial, self.factor) if self.maximum else 0.0
        if attempt >= limit:
            return self.maximum
        return min(self.maximum, self.initial * self.factor**attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before ``attempt``, jittered with ``rng``."""
        return self.ceiling(attempt) * (1.0 - self.jitter * rng.random())
