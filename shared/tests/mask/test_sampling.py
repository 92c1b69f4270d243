"""Mask sampling: the documented rule, re-implemented naively, is the known-answer definition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet import crypto
from xaynet.errors import LocalProtocolError
from xaynet.mask import GroupType, MaskConfig, MaskConfigPair, derive_mask, sampling

from .support import ALL_CONFIGS, naive_mask, pair

SAMPLING_PAIRS = [
    pair("Prime", "F32", "B0", "M3"),
    pair("Power2", "F32", "B0", "M3"),
    pair("Integer", "F32", "B0", "M3"),
    pair("Prime", "F64", "B2", "M6"),  # 12-byte elements: the big-integer decoder
    pair("Integer", "I64", "Bmax", "M12"),  # 18 bytes
    pair("Prime", "F32", "Bmax", "M9"),  # 39 bytes
    pair("Power2", "F64", "Bmax", "M3"),
    pair("Prime", "I32", "B4", "M3"),  # 8 bytes: a full lane
    MaskConfigPair(
        MaskConfig.from_names("Prime", "F32", "B0", "M3"),
        MaskConfig.from_names("Integer", "I64", "B4", "M9"),  # a unit config of its own
    ),
    MaskConfigPair(
        MaskConfig.from_names("Integer", "F64", "Bmax", "M12"),
        MaskConfig.from_names("Power2", "F32", "B0", "M3"),
    ),
]

seeds = st.binary(min_size=32, max_size=32)


class FakeStream:
    """A keystream over given bytes, recording how much was read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.position : self.position + n]
        self.position += n
        return chunk + bytes(n - len(chunk))


# -- against the naive rule ----------------------------------------------------------------------


@pytest.mark.usefixtures("prg")
@pytest.mark.parametrize("config", SAMPLING_PAIRS, ids=lambda p: f"{p.vect}+{p.unit}")
@settings(deadline=None, max_examples=4)
@given(seed=seeds, length=st.integers(min_value=0, max_value=40))
def test_derive_mask_follows_the_documented_rule(
    config: MaskConfigPair, seed: bytes, length: int
) -> None:
    unit, vector, _ = naive_mask(seed, config, length)
    mask = derive_mask(seed, config=config, length=length, path="pure")
    assert mask.unit.value == unit
    assert mask.vect.elements() == vector
    assert mask.config == config
    assert len(mask) == length


@pytest.mark.usefixtures("prg")
def test_derive_mask_long_vector() -> None:
    # Long enough for several batches of the pure sampler.
    config = pair("Prime", "F32", "B0", "M3")
    seed = bytes(range(32))
    unit, vector, _ = naive_mask(seed, config, 5000)
    mask = derive_mask(seed, config=config, length=5000, path="pure")
    assert (mask.unit.value, mask.vect.elements()) == (unit, vector)


@pytest.mark.usefixtures("prg")
def test_derive_mask_every_config() -> None:
    for config in ALL_CONFIGS:
        seed = config.to_bytes() * 8
        p = MaskConfigPair.uniform(config)
        unit, vector, _ = naive_mask(seed, p, 3)
        mask = derive_mask(seed, config=p, length=3, path="pure")
        assert (mask.unit.value, mask.vect.elements()) == (unit, vector), config
        assert all(0 <= v < config.order for v in [*vector, unit])


@pytest.mark.usefixtures("prg")
def test_known_answer() -> None:
    # Pinned output of the rule for a fixed seed: changes here break every deployed round.
    config = pair("Prime", "F32", "B0", "M3")
    mask = derive_mask(bytes(range(32)), config=config, length=3, path="pure")
    stream = crypto.prg(bytes(range(32)), 4096)
    unit, vector, _ = naive_mask(bytes(range(32)), config, 3)
    assert mask.unit.value == unit
    assert mask.vect.elements() == vector
    # The first unit draw is the first 6 stream bytes with bits >= 45 cleared, if accepted.
    first = int.from_bytes(stream[:6], "little") & (2**45 - 1)
    assert (first < config.unit.order) == (mask.unit.value == first)


@pytest.mark.usefixtures("prg")
@pytest.mark.parametrize("config", [c for c in ALL_CONFIGS if c.group_type is GroupType.POWER2])
def test_power2_never_rejects(config: MaskConfig) -> None:
    seed = bytes(31) + bytes([config.data_type * 16 + config.bound_type % 16])
    length = 20
    width, k = config.bytes_per_element, config.bits
    stream = crypto.prg(seed, (length + 1) * width)
    chunks = [
        int.from_bytes(stream[i : i + width], "little") & ((1 << k) - 1)
        for i in range(0, len(stream), width)
    ]
    mask = derive_mask(seed, config=MaskConfigPair.uniform(config), length=length, path="pure")
    assert [mask.unit.value, *mask.vect.elements()] == chunks
    assert sampling.acceptance_rate(config) == 1.0


@pytest.mark.usefixtures("prg")
def test_different_seeds_give_different_masks() -> None:
    config = pair("Prime", "F32", "B0", "M3")
    a = derive_mask(bytes(32), config=config, length=10, path="pure")
    b = derive_mask(bytes(31) + b"\x01", config=config, length=10, path="pure")
    assert a.vect.elements() != b.vect.elements()
    assert derive_mask(bytes(32), config=config, length=10, path="pure") == a


@pytest.mark.usefixtures("prg")
def test_mask_prefix_property() -> None:
    # A longer mask of the same seed extends a shorter one (the stream is read front to back).
    config = pair("Integer", "F32", "B2", "M6")
    short = derive_mask(bytes(32), config=config, length=7, path="pure")
    long = derive_mask(bytes(32), config=config, length=300, path="pure")
    assert long.vect.elements()[:7] == short.vect.elements()
    assert long.unit == short.unit


@pytest.mark.usefixtures("prg")
@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "0" * 32, None])
def test_derive_mask_rejects_bad_seed(seed: object) -> None:
    with pytest.raises(LocalProtocolError):
        derive_mask(seed, config=pair("Prime", "F32", "B0", "M3"), length=2)  # type: ignore[arg-type]


@pytest.mark.usefixtures("prg")
@pytest.mark.parametrize("length", [-1, 1.5, "3", None, True])
def test_derive_mask_rejects_bad_length(length: object) -> None:
    with pytest.raises(LocalProtocolError):
        derive_mask(bytes(32), config=pair("Prime", "F32", "B0", "M3"), length=length)  # type: ignore[arg-type]


# -- the rejection logic on crafted streams (no crypto needed) -----------------------------------


def _elements(data: bytes, config: MaskConfig) -> list[int]:
    # draw_vector returns the wire encoding: width-byte little-endian elements.
    width = config.bytes_per_element
    assert len(data) % width == 0
    return [int.from_bytes(data[i : i + width], "little") for i in range(0, len(data), width)]


def test_draw_unit_rejects_values_at_or_above_q() -> None:
    config = MaskConfig.from_names("Integer", "F32", "B0", "M3")  # q = 2e13 + 1, k = 45, L = 6
    q = config.order
    data = (
        q.to_bytes(6, "little")  # == q: rejected
        + (2**45 - 1).to_bytes(6, "little")  # >= q: rejected
        + (q - 1 + 2**45).to_bytes(6, "little")  # bit 45 set: masked to q - 1, accepted
        + (5).to_bytes(6, "little")
    )
    stream = FakeStream(data)
    assert sampling.draw_unit(stream, config) == q - 1  # type: ignore[arg-type]
    assert stream.position == 18
    assert sampling.draw_unit(stream, config) == 5  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        MaskConfig.from_names("Integer", "F32", "B0", "M3"),
        MaskConfig.from_names("Prime", "I64", "B4", "M3"),
        MaskConfig.from_names("Prime", "F64", "B2", "M6"),
        MaskConfig.from_names("Power2", "F32", "B2", "M3"),
        MaskConfig.from_names("Integer", "F32", "Bmax", "M3"),
    ],
    ids=str,
)
def test_draw_vector_skips_rejected_draws(config: MaskConfig) -> None:
    q, width, k = config.order, config.bytes_per_element, config.bits
    top = (1 << (8 * width)) - 1
    raw = [q - 1, q, top, 0, q + 1, 1, (q - 1) | (1 << k) if 8 * width > k else q - 1, 2, top]
    data = b"".join(v.to_bytes(width, "little") for v in raw)
    expected = [v & ((1 << k) - 1) for v in raw]
    expected = [v for v in expected if v < q]
    stream = FakeStream(data)
    got = sampling.draw_vector(stream, config, len(expected))  # type: ignore[arg-type]
    assert _elements(got, config) == expected
    # Nothing else is drawn after the vector, so reading ahead in batches is harmless; but the
    # elements must be the first accepted ones, in order.
    stream = FakeStream(data + b"\xff" * width * 4000)
    assert _elements(sampling.draw_vector(stream, config, 2), config) == expected[:2]  # type: ignore[arg-type]


def test_draw_vector_many_rejections() -> None:
    # A stream where only every 100th draw is below q: the batch loop must keep going.
    config = MaskConfig.from_names("Integer", "F32", "B0", "M3")
    q = config.order
    reject = (2**45 - 1).to_bytes(6, "little")
    data = b"".join(reject * 99 + i.to_bytes(6, "little") for i in range(50))
    got = sampling.draw_vector(FakeStream(data), config, 50)  # type: ignore[arg-type]
    assert _elements(got, config) == list(range(50))
    assert q > 49


def test_acceptance_rate() -> None:
    for config in ALL_CONFIGS:
        rate = sampling.acceptance_rate(config)
        assert rate == config.order / 2**config.bits
        assert 0.5 < rate <= 1.0
        assert (rate == 1.0) == (config.group_type is GroupType.POWER2)
