"""Masking: configurations, fixed-point encoding, masks, aggregation and unmasking."""

from __future__ import annotations

from xaynet.mask.aggregation import Aggregation
from xaynet.mask.config import (
    DEFAULT_MASK_CONFIG,
    BoundType,
    DataType,
    GroupType,
    MaskConfig,
    MaskConfigPair,
    ModelType,
)
from xaynet.mask.masking import Path, derive_mask, mask_model
from xaynet.mask.objects import MaskObject, MaskUnit, MaskVect

__all__ = [
    "DEFAULT_MASK_CONFIG",
    "BoundType",
    "DataType",
    "GroupType",
    "MaskConfig",
    "MaskConfigPair",
    "ModelType",
    "MaskObject",
    "MaskUnit",
    "MaskVect",
    "Aggregation",
    "Path",
    "derive_mask",
    "mask_model",
]
