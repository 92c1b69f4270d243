"""Aggregation of mask objects and unmasking of the aggregate.

The coordinator adds masked models into one :class:`Aggregation`; a summer adds the masks it
derives from the updaters' seeds into another. Memory stays O(model length) whatever the number
of objects: nothing but the running sum is kept.

Every object is validated before it is added (same configs, same length, fewer than Nmax
objects so far, every element below q); a rejected object leaves the aggregate unchanged.

Pure path: the vector is one big integer of lanes ``bytes_per_element + 2`` bytes wide (8 for
elements of up to 6 bytes), so adding a whole vector is one big-integer addition and the range
check is two; the 16 guard bits let 65 535 vectors pile up before a reduction modulo q. numpy
path: uint64 lanes with a lazy reduction, the wire bytes decoded with strided views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xaynet.errors import AggregationError, LocalProtocolError
from xaynet.mask import _lanes, encoding
from xaynet.mask.config import MaskConfig, MaskConfigPair
from xaynet.mask.masking import Path, resolve_path
from xaynet.mask.objects import MaskObject, MaskUnit, MaskVect

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Aggregation"]

_GUARD_BYTES = 2


class _PureVector:
    """Running sum of vectors as one integer of guarded lanes."""

    def __init__(self, config: MaskConfig, length: int) -> None:
        self.config = config
        self.length = length
        self.width = config.bytes_per_element
        self.lane = max(8, self.width + _GUARD_BYTES)
        self.order = config.order
        element_bits = 8 * self.width
        lane_bits = 8 * self.lane
        repeat = _repeat_mask(length, lane_bits)
        # Adding 2^(8w) - q to every lane sets a guard bit exactly in the lanes holding >= q.
        self._offset = repeat * ((1 << element_bits) - self.order)
        self._guard = repeat * (((1 << lane_bits) - 1) ^ ((1 << element_bits) - 1))
        self._sum = 0
        self._pending = 0
        self._max_pending = (1 << (8 * (self.lane - self.width))) - 1

    def packed(self, data: bytes) -> int:
        """The vector as one integer of lanes; raise if any element is >= q."""
        value = int.from_bytes(_lanes.widen(data, self.width, self.lane), "little")
        if (value + self._offset) & self._guard:
            raise AggregationError("out_of_range", f"an element is not below q = {self.order}")
        return value

    def add(self, packed: int) -> None:
        if self._pending == self._max_pending:
            self._reduce()
        self._sum += packed
        self._pending += 1

    def _reduce(self) -> None:
        elements = [v % self.order for v in self._lane_values()]
        self._sum = int.from_bytes(
            _lanes.widen(_lanes.pack(elements, self.width), self.width, self.lane), "little"
        )
        self._pending = 1

    def _lane_values(self) -> list[int]:
        raw = self._sum.to_bytes(self.length * self.lane, "little")
        if self.lane == 8:
            return _lanes.to_uint64_list(raw)
        view = memoryview(raw)
        return [
            int.from_bytes(view[i : i + self.lane], "little")
            for i in range(0, len(view), self.lane)
        ]

    def elements(self) -> list[int]:
        return [v % self.order for v in self._lane_values()]


def _repeat_mask(count: int, lane_bits: int) -> int:
    # 1 + 2^L + 2^2L + ... : multiplying a lane value by it copies the value into every lane.
    return ((1 << (lane_bits * count)) - 1) // ((1 << lane_bits) - 1) if count else 0


class _NumpyVector:
    """Running sum of vectors in uint64 lanes, reduced lazily."""

    def __init__(self, config: MaskConfig, length: int) -> None:
        import numpy as np

        self.config = config
        self.width = config.bytes_per_element
        self.order = config.order
        self._sum: npt.NDArray[np.uint64] = np.zeros(length, dtype=np.uint64)
        self._scratch: npt.NDArray[np.uint64] = np.empty(length, dtype=np.uint64)
        # Values below q: this many can be added before a uint64 lane could overflow.
        self._max_pending = (2**64 - 1) // (self.order - 1) if self.order > 1 else 2**62
        self._pending = 0

    def packed(self, data: bytes) -> npt.NDArray[np.uint64]:
        from xaynet.mask import _numpy

        values = _numpy.decode(data, self.width, out=self._scratch)
        if not _numpy.max_below(values, self.order):
            raise AggregationError("out_of_range", f"an element is not below q = {self.order}")
        return values

    def add(self, values: npt.NDArray[np.uint64]) -> None:
        if self._pending == self._max_pending:
            self._reduce()
        self._sum += values
        self._pending += 1

    def _reduce(self) -> None:
        import numpy as np

        if self.order & (self.order - 1) == 0:
            self._sum &= np.uint64(self.order - 1)
        else:
            np.remainder(self._sum, np.uint64(self.order), out=self._sum)
        self._pending = 1

    def array(self) -> npt.NDArray[np.uint64]:
        self._reduce()
        return self._sum.copy()

    def elements(self) -> list[int]:
        result: list[int] = self.array().tolist()
        return result


class Aggregation:
    """The modular sum of mask objects for one config pair and model length."""

    def __init__(self, config: MaskConfigPair, length: int, *, path: Path = "auto") -> None:
        if not isinstance(config, MaskConfigPair):
            raise LocalProtocolError("config must be a MaskConfigPair")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise LocalProtocolError(f"the model length must be a positive integer, got {length!r}")
        self.config = config
        self.length = length
        self.path = resolve_path(path, config.vect)
        self._vector: _PureVector | _NumpyVector = (
            _NumpyVector(config.vect, length)
            if self.path == "numpy"
            else _PureVector(config.vect, length)
        )
        self._unit = 0
        self._count = 0

    @property
    def count(self) -> int:
        """How many objects have been added."""
        return self._count

    def _check(self, obj: MaskObject) -> Any:
        if not isinstance(obj, MaskObject):
            raise LocalProtocolError("only MaskObject instances can be aggregated")
        if obj.vect.config != self.config.vect:
            raise AggregationError(
                "config_mismatch",
                f"vector config {obj.vect.config} differs from the round's {self.config.vect}",
            )
        if obj.unit.config != self.config.unit:
            raise AggregationError(
                "config_mismatch",
                f"unit config {obj.unit.config} differs from the round's {self.config.unit}",
            )
        if len(obj.vect) != self.length:
            raise AggregationError(
                "length_mismatch", f"{len(obj.vect)} elements, the round expects {self.length}"
            )
        if self._count >= self.config.max_models:
            raise AggregationError(
                "too_many_models", f"{self._count} objects aggregated: the configs allow no more"
            )
        if obj.unit.value >= self.config.unit.order:
            raise AggregationError("out_of_range", "the unit element is not below q")
        return self._vector.packed(obj.vect.data)

    def validate(self, obj: MaskObject) -> None:
        """Raise :class:`AggregationError` if ``obj`` cannot be added; change nothing."""
        self._check(obj)

    def add(self, obj: MaskObject) -> None:
        """Validate and add ``obj``. On error the aggregate is unchanged."""
        packed = self._check(obj)
        self._vector.add(packed)
        self._unit = (self._unit + obj.unit.value) % self.config.unit.order
        self._count += 1

    def restore(self, aggregate: MaskObject, count: int) -> None:
        """Continue from a saved aggregate (:meth:`result`) of ``count`` objects.

        Only an empty aggregation can be restored; the aggregate is validated like any object.
        """
        if self._count:
            raise LocalProtocolError("only an empty aggregation can be restored")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise LocalProtocolError(f"count must be a positive integer, got {count!r}")
        if count > self.config.max_models:
            raise AggregationError("too_many_models", f"{count} objects exceed the configs' limit")
        self.add(aggregate)
        self._count = count

    def result(self) -> MaskObject:
        """The aggregate as a mask object (its elements reduced modulo q)."""
        if self._count == 0:
            raise AggregationError("no_model", "nothing has been aggregated")
        if isinstance(self._vector, _NumpyVector):
            from xaynet.mask import _numpy

            data = _numpy.encode(self._vector.array(), self._vector.width)
        else:
            data = _lanes.pack(self._vector.elements(), self._vector.width)
        return MaskObject(MaskVect(self.config.vect, data), MaskUnit(self.config.unit, self._unit))

    def _unmasked(self, mask: MaskObject) -> tuple[Any, int]:
        if self._count == 0:
            raise AggregationError("no_model", "nothing has been aggregated")
        probe = Aggregation(self.config, self.length, path=self.path)
        mask_values = probe._check(mask)
        unit_sum = (self._unit - mask.unit.value) % self.config.unit.order
        return mask_values, unit_sum

    def unmask(self, mask: MaskObject) -> list[float]:
        """The global model: the scalar-weighted mean of the aggregated models.

        ``mask`` is the sum of the masks of every aggregated model (a summer's Sum2 result).
        """
        mask_values, unit_sum = self._unmasked(mask)
        order = self.config.vect.order
        if isinstance(self._vector, _NumpyVector):
            from xaynet.mask import _numpy

            sums = _numpy.sub_mod(self._vector.array(), mask_values, order)
            mean: list[float] = _numpy.weighted_mean(
                sums, unit_sum, self._count, self.config.vect, self.config.unit
            ).tolist()
            return mean
        sums_list = [
            (a - b) % order
            for a, b in zip(self._vector.elements(), mask.vect.elements(), strict=True)
        ]
        return encoding.weighted_mean(
            sums_list, unit_sum, self._count, self.config.vect, self.config.unit
        )

    def unmask_array(self, mask: MaskObject) -> npt.NDArray[np.float64]:
        """:meth:`unmask` as a float64 numpy array (numpy path only)."""
        if not isinstance(self._vector, _NumpyVector):
            import numpy as np

            return np.asarray(self.unmask(mask), dtype=np.float64)
        from xaynet.mask import _numpy

        mask_values, unit_sum = self._unmasked(mask)
        sums = _numpy.sub_mod(self._vector.array(), mask_values, self.config.vect.order)
        return _numpy.weighted_mean(sums, unit_sum, self._count, self.config.vect, self.config.unit)
