"""What the simulated participants submit: weights, deterministic local models, and the check.

A run has one integer seed. Participant ``i``'s local model in round ``r`` is drawn from
``numpy.random.default_rng([seed, i, r])``, so the same seed gives the same models, whoever runs
it. Values are uniform within the round's vector bound (at most +-10^6) and exactly
representable in the round's data type (F32 models are rounded to float32 first), so what the
participant masks is exactly what a dump records.

The global model of a round is the weighted mean of the accepted local models. The coordinator
computes it from fixed-point values (resolution ``1/E``), so it differs from the float mean by
at most :func:`tolerance`.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xaynet.errors import ConfigError
from xaynet.mask.config import DataType, MaskConfig
from xaynet.round import RoundParameters

__all__ = [
    "WeightSpec",
    "ModelSpec",
    "Vector",
    "tolerance",
    "weighted_mean",
    "as_masked",
    "VALUE_CAP",
]

Vector = npt.NDArray[np.float64]

#: Random model values stay within +-min(bound, VALUE_CAP): Bmax bounds (~1e38 for F32) would
#: overflow numpy's uniform sampler and say nothing more about the protocol.
VALUE_CAP = 10**6

_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"


@dataclass(frozen=True, slots=True)
class WeightSpec:
    """Each participant's weight (e.g. its number of samples), fixed for the run.

    Written as ``"5"`` (everyone 5), ``"1:100"`` (uniform per participant in [1, 100]; integers
    if both ends are integers) or ``"10,20,70"`` (cycled over the participants).
    ``max_weight`` is the largest weight the spec can give (the fleet rounds it up to a power
    of two for the SDK's ``max_weight``).
    """

    low: float
    high: float
    choices: tuple[float, ...] = ()
    integers: bool = True

    def __post_init__(self) -> None:
        values = self.choices or (self.low, self.high)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ConfigError("weights must be finite and >= 0")
        if self.low > self.high:
            raise ConfigError(f"weights: {self.low} > {self.high}")
        if max(values) <= 0:
            raise ConfigError("at least one weight must be > 0")

    @classmethod
    def parse(cls, text: str) -> WeightSpec:
        text = text.strip()
        try:
            if "," in text:
                choices = tuple(float(part) for part in text.split(","))
                return cls(min(choices), max(choices), choices)
            low_text, colon, high_text = text.partition(":")
            if not re.fullmatch(_NUMBER, low_text) or (
                colon and not re.fullmatch(_NUMBER, high_text)
            ):
                raise ValueError(text)
            low = float(low_text)
            high = float(high_text) if colon else low
        except ValueError:
            raise ConfigError(
                f"weight {text!r}: expected a number, LOW:HIGH or a comma-separated list"
            ) from None
        integers = low.is_integer() and high.is_integer()
        return cls(low, high, integers=integers)

    @property
    def max_weight(self) -> float:
        return max(self.choices) if self.choices else self.high

    def weight(self, seed: int, index: int) -> float:
        """The weight of participant ``index``."""
        if self.choices:
            return self.choices[index % len(self.choices)]
        if self.low == self.high:
            return self.low
        rng = random.Random(f"weight:{seed}:{index}")
        if self.integers:
            return float(rng.randint(int(self.low), int(self.high)))
        return rng.uniform(self.low, self.high)

    def __str__(self) -> str:
        if self.choices:
            return ",".join(f"{c:g}" for c in self.choices)
        if self.low == self.high:
            return f"{self.low:g}"
        return f"{self.low:g}:{self.high:g}"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """``random`` (default) or a constant: every participant submits that value everywhere."""

    constant: float | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        text = text.strip().lower()
        if text == "random":
            return cls()
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"model {text!r}: expected 'random' or a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"model {text!r}: the constant must be finite")
        return cls(value)

    def local_model(self, seed: int, index: int, params: RoundParameters) -> Any:
        """Participant ``index``'s model for the round: float64 (int64 for integer types).

        Raises :class:`ConfigError` when a constant does not fit the round's mask config.
        """
        config = params.mask_config.vect
        length = params.model_length
        bound = min(config.add_shift, VALUE_CAP)
        integral = config.data_type in (DataType.I32, DataType.I64)
        if self.constant is not None:
            value = self.constant
            if abs(value) > config.add_shift or (integral and not value.is_integer()):
                raise ConfigError(
                    f"model constant {value:g} does not fit the round's vector config "
                    f"({config.data_type.name}, bound {config.add_shift:g})"
                )
            if integral:
                return np.full(length, int(value), dtype=np.int64)
            return _in_type(np.full(length, value, dtype=np.float64), config)
        rng = np.random.default_rng([seed, index, params.round_id])
        if integral:
            return rng.integers(-bound, bound, size=length, endpoint=True, dtype=np.int64)
        return _in_type(rng.uniform(-bound, bound, length), config)

    def __str__(self) -> str:
        return "random" if self.constant is None else f"{self.constant:g}"


def _in_type(values: Vector, config: MaskConfig) -> Vector:
    if config.data_type is DataType.F32:
        # Round to float32 here so the values kept for checking are the ones masked; values at
        # the bound could round up past it, so clip in float32 first.
        bound = np.float32(min(config.add_shift, VALUE_CAP))
        return np.clip(values.astype(np.float32), -bound, bound).astype(np.float64)
    return values


def as_masked(model: Any, config: MaskConfig) -> Vector:
    """A float model as the masking sees it: F32 values rounded to binary32, clipped to the bound.

    What a participant that trains in float64 (the digits devices) contributes to the mean.
    """
    values = np.asarray(model, dtype=np.float64)
    if config.data_type is DataType.F32:
        values = values.astype(np.float32).astype(np.float64)
    bound = float(config.add_shift)
    result: Vector = np.clip(values, -bound, bound)
    return result


def weighted_mean(models: list[Any], weights: list[float]) -> Vector:
    """The float64 weighted mean of ``models`` (what the global model should be)."""
    w = np.asarray(weights, dtype=np.float64)
    stacked = np.stack([np.asarray(m, dtype=np.float64) for m in models])
    result: Vector = w @ stacked / w.sum()
    return result


def tolerance(
    *, count: int, scalar_sum: float, max_abs: float, vect: MaskConfig, unit: MaskConfig
) -> float:
    """The largest difference between the global model and the float weighted mean.

    ``max_abs`` is the largest absolute value of the aggregated models (it bounds the mean).

    Each of the ``count`` updates enters as ``floor(s * x * E) / E`` and its scalar as
    ``floor(s * E1) / E1``: the numerator loses less than ``count / E``, the denominator (the sum
    of the scalars, ``scalar_sum``) less than ``count / E1``. Hence
    ``|global - mean| <= (count / E + max_abs * count / E1) / (scalar_sum - count / E1)``,
    plus float64 rounding in both computations. Returns ``inf`` when the bound is useless.
    """
    if count <= 0:
        return math.inf
    den = scalar_sum - count / unit.exp_shift
    if den <= 0:
        return math.inf
    quantization = (count / vect.exp_shift + max_abs * count / unit.exp_shift) / den
    rounding = 8 * (count + 1) * np.finfo(np.float64).eps * max(max_abs, 1e-300)
    return 2 * quantization + rounding
