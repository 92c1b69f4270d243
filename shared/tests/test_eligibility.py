from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xaynet import eligibility
from xaynet.crypto import SigningKeyPair, verify
from xaynet.eligibility import (
    is_eligible,
    sum_signature,
    task_signature,
    update_signature,
    verify_sum_eligibility,
    verify_update_eligibility,
)
from xaynet.errors import ConfigError, LocalProtocolError

# The original implementation's test vectors (rust/xaynet-core/src/crypto/sign.rs).
ELIGIBLE_AT_HALF = bytes.fromhex(
    "ac1d55db762c6b20dbfd19f2352d6f3e66821808dec72278a6a3dfe56432fcf4"
    "fa58c497883027c6a6561d970d5145c62894867e07ca0138ae2b591cf2c20400"
)
INELIGIBLE_AT_HALF = bytes.fromhex(
    "7702c5ae34a5e516dad2f0bcdce89581d30d3dd9ba4f660f6ded53c10c75d242"
    "63e61e833f6c1cde305c99479fdc73b5b79b92b6cd598cea6428c7f81793ac00"
)
HASH_MAX = 2**256 - 1
SEED = bytes(range(32))


def ratio(signature: bytes) -> Fraction:
    """The exact eligibility ratio, computed independently of the module."""
    return Fraction(int.from_bytes(hashlib.sha256(signature).digest(), "little"), HASH_MAX)


def smallest_float_at_least(value: Fraction) -> float:
    candidate = float(value)  # correctly rounded: within one ulp
    if Fraction(candidate) < value:
        candidate = math.nextafter(candidate, math.inf)
    return candidate


def test_original_vectors() -> None:
    assert is_eligible(ELIGIBLE_AT_HALF, 0.5)
    assert not is_eligible(INELIGIBLE_AT_HALF, 0.5)
    assert float(ratio(ELIGIBLE_AT_HALF)) == pytest.approx(0.3505, abs=1e-4)
    assert float(ratio(INELIGIBLE_AT_HALF)) == pytest.approx(0.6326, abs=1e-4)
    assert is_eligible(ELIGIBLE_AT_HALF, 0.3505)
    assert not is_eligible(ELIGIBLE_AT_HALF, 0.3504)
    assert is_eligible(INELIGIBLE_AT_HALF, 0.6327)
    assert not is_eligible(INELIGIBLE_AT_HALF, 0.6325)


@pytest.mark.parametrize("probability", [-0.0, 0.0])
def test_zero_probability_selects_only_a_zero_hash(probability: float) -> None:
    assert not is_eligible(ELIGIBLE_AT_HALF, probability)


@pytest.mark.parametrize("probability", [-1e-300, -1.0, -math.inf])
def test_negative_probability_never_selects(probability: float) -> None:
    assert not is_eligible(ELIGIBLE_AT_HALF, probability)


@pytest.mark.parametrize("probability", [1.0, 1, 1.5, math.inf])
def test_probability_of_one_or_more_always_selects(probability: float) -> None:
    assert is_eligible(INELIGIBLE_AT_HALF, probability)


@pytest.mark.parametrize("probability", [math.nan, True, "0.5", None])
def test_invalid_probability_is_rejected(probability: object) -> None:
    with pytest.raises(ConfigError):
        is_eligible(ELIGIBLE_AT_HALF, probability)  # type: ignore[arg-type]


@given(st.binary(min_size=64, max_size=64))
def test_exact_boundary(signature: bytes) -> None:
    threshold = smallest_float_at_least(ratio(signature))
    assert is_eligible(signature, threshold)
    below = math.nextafter(threshold, -math.inf)
    assert not is_eligible(signature, below)


@given(st.binary(min_size=64, max_size=64), st.floats(min_value=0.0, max_value=1.0))
def test_matches_exact_rational_comparison(signature: bytes, probability: float) -> None:
    assert is_eligible(signature, probability) == (ratio(signature) <= Fraction(probability))


def with_hash(monkeypatch: pytest.MonkeyPatch, value: int) -> None:
    """Make the module see ``value`` as the hash of any signature."""
    monkeypatch.setattr(eligibility, "sha256", lambda _data: value.to_bytes(32, "little"))


def test_comparison_is_exact_where_floats_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    # (h + 1) / HASH_MAX with h = HASH_MAX // 2 is above 1/2, yet rounds to 0.5 as a float.
    half = HASH_MAX // 2
    assert float(Fraction(half + 1, HASH_MAX)) == 0.5
    with_hash(monkeypatch, half)
    assert is_eligible(ELIGIBLE_AT_HALF, 0.5)
    with_hash(monkeypatch, half + 1)
    assert not is_eligible(ELIGIBLE_AT_HALF, 0.5)
    with_hash(monkeypatch, HASH_MAX)
    assert not is_eligible(ELIGIBLE_AT_HALF, math.nextafter(1.0, 0.0))
    assert is_eligible(ELIGIBLE_AT_HALF, 1.0)
    with_hash(monkeypatch, 0)
    assert is_eligible(ELIGIBLE_AT_HALF, 0.0)


def test_hash_is_read_little_endian(monkeypatch: pytest.MonkeyPatch) -> None:
    # First digest byte 0xff, the rest zero: tiny as little-endian, huge as big-endian.
    monkeypatch.setattr(eligibility, "sha256", lambda _data: b"\xff" + bytes(31))
    assert is_eligible(ELIGIBLE_AT_HALF, 1e-70)


def keys(index: int) -> SigningKeyPair:
    return SigningKeyPair.from_seed(index.to_bytes(32, "big"))


def test_task_signatures_sign_seed_and_task_name() -> None:
    pair = keys(1)
    sig_sum = sum_signature(pair, SEED)
    sig_update = update_signature(pair, SEED)
    assert verify(pair.public, SEED + b"sum", sig_sum)
    assert verify(pair.public, SEED + b"update", sig_update)
    assert not verify(pair.public, SEED + b"update", sig_sum)
    assert task_signature(pair, SEED, "sum") == sig_sum  # deterministic
    assert sum_signature(pair, bytes(32)) != sig_sum


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_task_signature_rejects_bad_seed(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        sum_signature(keys(1), seed)


def test_task_signature_rejects_unknown_task() -> None:
    with pytest.raises(LocalProtocolError):
        task_signature(keys(1), SEED, "sum2")  # type: ignore[arg-type]


def first_key(predicate: object) -> SigningKeyPair:
    assert callable(predicate)
    return next(k for k in map(keys, range(1000)) if predicate(k))


P_SUM, P_UPDATE = 0.3, 0.6


def is_summer(pair: SigningKeyPair) -> bool:
    return ratio(sum_signature(pair, SEED)) <= Fraction(P_SUM)


def is_updater(pair: SigningKeyPair) -> bool:
    return not is_summer(pair) and ratio(update_signature(pair, SEED)) <= Fraction(P_UPDATE)


def test_verify_sum_eligibility() -> None:
    summer = first_key(is_summer)
    other = first_key(lambda k: not is_summer(k))
    sig = sum_signature(summer, SEED)
    assert verify_sum_eligibility(summer.public, SEED, sig, P_SUM)
    # valid but not eligible
    assert not verify_sum_eligibility(other.public, SEED, sum_signature(other, SEED), P_SUM)
    # eligible hash but signed by someone else
    assert not verify_sum_eligibility(other.public, SEED, sig, P_SUM)
    # eligible hash but over another seed
    assert not verify_sum_eligibility(summer.public, bytes(32), sig, 1.0)
    # malformed peer input is simply invalid
    assert not verify_sum_eligibility(summer.public[:31], SEED, sig, P_SUM)
    assert not verify_sum_eligibility(summer.public, SEED, sig[:63], 1.0)


def test_verify_update_eligibility() -> None:
    updater = first_key(is_updater)
    summer = first_key(is_summer)
    sig_sum = sum_signature(updater, SEED)
    sig_update = update_signature(updater, SEED)
    assert verify_update_eligibility(updater.public, SEED, sig_sum, sig_update, P_SUM, P_UPDATE)
    # signatures swapped
    assert not verify_update_eligibility(updater.public, SEED, sig_update, sig_sum, P_SUM, P_UPDATE)
    # a summer cannot update, even with an eligible update signature
    assert not verify_update_eligibility(
        summer.public,
        SEED,
        sum_signature(summer, SEED),
        update_signature(summer, SEED),
        P_SUM,
        1.0,
    )


def test_update_eligibility_requires_a_valid_sum_signature() -> None:
    updater = first_key(is_updater)
    sig_update = update_signature(updater, SEED)
    # A garbage sigma_sum that is not eligible for sum: the original accepted it.
    garbage = first_key(lambda k: not is_summer(k))
    forged = sum_signature(garbage, SEED)
    assert ratio(forged) > Fraction(P_SUM)
    assert not verify_update_eligibility(updater.public, SEED, forged, sig_update, P_SUM, P_UPDATE)
    assert not verify_update_eligibility(
        updater.public, SEED, bytes(64), sig_update, P_SUM, P_UPDATE
    )


def test_update_eligibility_requires_an_eligible_update_signature() -> None:
    idle = first_key(
        lambda k: not is_summer(k) and ratio(update_signature(k, SEED)) > Fraction(P_UPDATE)
    )
    assert not verify_update_eligibility(
        idle.public,
        SEED,
        sum_signature(idle, SEED),
        update_signature(idle, SEED),
        P_SUM,
        P_UPDATE,
    )
