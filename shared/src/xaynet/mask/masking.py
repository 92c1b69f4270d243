"""Masking a local model and deriving the mask of a seed.

``mask_model`` is the updater's work: encode the model and the scalar as group elements and add
the mask derived from a fresh 32-byte seed. ``derive_mask`` regenerates that mask from the seed;
a summer adds the masks of all updaters and the coordinator subtracts the sum from the aggregate.

Both take ``path``: ``"pure"`` (exact Python integers, every config, also under Pyodide),
``"numpy"`` (uint64 lanes, configs with q < 2^63) or ``"auto"`` (numpy when installed and
possible). The paths return byte-identical objects.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

from xaynet import crypto
from xaynet.errors import LocalProtocolError, ModelError
from xaynet.mask import _lanes, encoding, sampling
from xaynet.mask.config import MaskConfig, MaskConfigPair
from xaynet.mask.objects import MaskObject, MaskUnit, MaskVect

__all__ = ["Path", "mask_model", "derive_mask", "resolve_path", "numpy_available"]

Path = Literal["auto", "pure", "numpy"]


def numpy_available() -> bool:
    """Whether numpy can be imported here (never under Pyodide without its package)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_path(path: Path, config: MaskConfig) -> Literal["pure", "numpy"]:
    """The path that serves ``config``: ``auto`` picks numpy when it is importable and fits."""
    if path == "pure":
        return "pure"
    if path == "numpy":
        if not config.numpy_compatible:
            raise LocalProtocolError(
                f"the numpy path needs a group order below 2^63; {config} has q = {config.order}"
            )
        if not numpy_available():
            raise LocalProtocolError("the numpy path needs numpy, which is not installed")
        return "numpy"
    if path != "auto":
        raise LocalProtocolError(f"path must be 'auto', 'pure' or 'numpy', got {path!r}")
    return "numpy" if config.numpy_compatible and numpy_available() else "pure"


def _check_seed(seed: bytes) -> bytes:
    if not isinstance(seed, bytes | bytearray | memoryview) or len(seed) != crypto.SEED_BYTES:
        raise LocalProtocolError(f"a mask seed is {crypto.SEED_BYTES} bytes")
    return bytes(seed)


def derive_mask(
    seed: bytes, *, config: MaskConfigPair, length: int, path: Path = "auto"
) -> MaskObject:
    """The mask (r_0; r_1..r_n) that ``seed`` expands to."""
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise LocalProtocolError(f"length must be a non-negative integer, got {length!r}")
    stream = crypto.Keystream(_check_seed(seed))
    unit = MaskUnit(config.unit, sampling.draw_unit(stream, config.unit))
    vect_config = config.vect
    if resolve_path(path, vect_config) == "numpy":
        from xaynet.mask import _numpy

        data = _numpy.draw_vector(stream, vect_config, length)
    else:
        data = sampling.draw_vector(stream, vect_config, length)
    return MaskObject(MaskVect(vect_config, data), unit)


def mask_model(
    seed: bytes,
    model: Any,
    *,
    config: MaskConfigPair,
    scalar: encoding.Scalar = 1,
    path: Path = "auto",
) -> MaskObject:
    """Mask ``model`` (a sequence of numbers or a 1-d numpy array) weighted by ``scalar``.

    The result reveals nothing about the model without ``seed``. Aggregated and unmasked, the
    models give the scalar-weighted mean, so ``scalar`` is the aggregation weight (e.g. the
    number of local samples, for FedAvg); it is clamped to the unit config's bound.
    """
    seed = _check_seed(seed)
    clamped = encoding.clamp_scalar(encoding.to_scalar(scalar), config.unit)
    vect_config = config.vect
    width, order = vect_config.bytes_per_element, vect_config.order
    stream = crypto.Keystream(seed)
    unit_mask = sampling.draw_unit(stream, config.unit)
    unit_value = (encoding.encode_scalar(clamped, config.unit) + unit_mask) % config.unit.order
    if resolve_path(path, vect_config) == "numpy":
        from xaynet.mask import _numpy

        values = _numpy.convert_model(model, vect_config.data_type)
        quantized = _numpy.quantize(values, clamped, vect_config)
        masks = _numpy.decode(_numpy.draw_vector(stream, vect_config, len(quantized)), width)
        _numpy.add_mod(quantized, masks, order)
        data = _numpy.encode(quantized, width)
    else:
        if _is_numpy_array(model):
            model = model.tolist()
        values_list = encoding.convert_model(model, vect_config.data_type)
        quantized_list = encoding.quantize(values_list, clamped, vect_config)
        mask_bytes = sampling.draw_vector(stream, vect_config, len(quantized_list))
        data = _add_pure(quantized_list, mask_bytes, vect_config)
    return MaskObject(MaskVect(vect_config, data), MaskUnit(config.unit, unit_value))


def _add_pure(values: list[int], mask: bytes, config: MaskConfig) -> bytes:
    """(values + mask) mod q, encoded; ``mask`` in wire encoding."""
    width, order = config.bytes_per_element, config.order
    if order & (order - 1) == 0 and width <= 7:
        # Whole-vector addition in 8-byte lanes (the sum of two elements fits), then the
        # reduction modulo 2^k is one AND with the lane mask repeated.
        count = len(values)
        lanes = int.from_bytes(_lanes.from_uint64_list(values), "little")
        lanes += int.from_bytes(_lanes.widen(mask, width), "little")
        lanes &= int.from_bytes((order - 1).to_bytes(8, "little") * count, "little")
        return _lanes.narrow(lanes.to_bytes(8 * count, "little"), width)
    sums = list(map(operator.add, values, _lanes.unpack(mask, width)))
    if order & (order - 1) == 0:
        bits = order - 1
        return _lanes.pack([s & bits for s in sums], width)
    return _lanes.pack([s - order if s >= order else s for s in sums], width)


def _is_numpy_array(model: Any) -> bool:
    return type(model).__module__ == "numpy" and hasattr(model, "tolist")


def check_model_length(model: Any, length: int) -> None:
    """Raise ModelError unless ``model`` has ``length`` values."""
    try:
        actual = len(model)
    except TypeError:
        raise ModelError("the model must be a sequence of numbers") from None
    if actual != length:
        raise ModelError(f"the model has {actual} values, the round expects {length}")
