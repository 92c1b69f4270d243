"""Hypothesis strategies and builders shared by the message tests (not a test module)."""

from __future__ import annotations

from hypothesis import strategies as st

from xaynet.mask.config import MaskConfig
from xaynet.mask.objects import MaskObject, MaskUnit, MaskVect
from xaynet.message import Chunk, LocalSeedDict, Message, Sum, Sum2, Tag, Update

DEFAULT_CONFIG = MaskConfig.from_names("Prime", "F32", "B0", "M3")
PK = bytes(range(32))
COORDINATOR_PK = bytes(range(32, 64))

keys = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=64, max_size=64)
sealed_seeds = st.binary(min_size=80, max_size=80)
tags = st.sampled_from(list(Tag))


def mask_object(n: int, config: MaskConfig = DEFAULT_CONFIG, start: int = 0) -> MaskObject:
    """A deterministic object with ``n`` distinct elements."""
    elements = [(start + 7919 * i) % config.order for i in range(n)]
    return MaskObject(
        MaskVect.from_elements(config, elements), MaskUnit(config, 12345 % config.order)
    )


def seed_dict(k: int) -> LocalSeedDict:
    return LocalSeedDict(
        [(bytes([i % 256, i // 256]) * 16, bytes([i % 256]) * 80) for i in range(k)]
    )


@st.composite
def mask_objects(draw: st.DrawFn, max_len: int = 20) -> MaskObject:
    codes = draw(
        st.tuples(
            st.sampled_from(["Integer", "Prime", "Power2"]),
            st.sampled_from(["F32", "F64", "I32", "I64"]),
            st.sampled_from(["B0", "B2", "B4", "B6"]),
            st.sampled_from(["M3", "M6"]),
        )
    )
    config = MaskConfig.from_names(*codes)
    q = config.order
    elements = draw(st.lists(st.integers(0, q - 1), max_size=max_len))
    unit = draw(st.integers(0, q - 1))
    return MaskObject(MaskVect.from_elements(config, elements), MaskUnit(config, unit))


@st.composite
def seed_dicts(draw: st.DrawFn, max_size: int = 5) -> LocalSeedDict:
    pks = draw(st.lists(keys, unique=True, max_size=max_size))
    return LocalSeedDict([(pk, draw(sealed_seeds)) for pk in pks])


sums = st.builds(Sum, signatures, keys)
updates = st.builds(Update, signatures, signatures, mask_objects(), seed_dicts())
sum2s = st.builds(Sum2, signatures, mask_objects())
chunks = st.builds(
    Chunk,
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**16 - 1),
    st.booleans(),
    st.binary(min_size=1, max_size=300),
)
whole_payloads = st.one_of(sums, updates, sum2s)


@st.composite
def messages(draw: st.DrawFn, participant_pk: bytes | None = None) -> Message:
    """Any message: whole or a chunk (with any tag); ``participant_pk`` random unless given."""
    pk = participant_pk if participant_pk is not None else draw(keys)
    if draw(st.booleans()):
        return Message(pk, draw(keys), draw(chunks), draw(tags))
    return Message(pk, draw(keys), draw(whole_payloads))
