"""Weights, local models and the global-model check of xaynet-test-drive (no coordinator)."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")
pytest.importorskip("typer")

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from xaynet.crypto import EncryptKeyPair
from xaynet.errors import ConfigError
from xaynet.mask import encoding
from xaynet.mask.config import MaskConfig, MaskConfigPair
from xaynet.round import RoundParameters
from xaynet.testdrive.ledger import RoundRecord
from xaynet.testdrive.models import ModelSpec, WeightSpec, tolerance, weighted_mean

UNIT = MaskConfig.from_names("Power2", "F32", "B0", "M3")


def params(
    vect: str = "F32", bound: str = "B2", *, round_id: int = 3, length: int = 40
) -> RoundParameters:
    return RoundParameters(
        round_id=round_id,
        coordinator_pk=EncryptKeyPair.from_seed(bytes(32)).public,
        sum_probability=0.3,
        update_probability=0.9,
        seed=bytes(range(32)),
        mask_config=MaskConfigPair(MaskConfig.from_names("Power2", vect, bound, "M3"), UNIT),
        model_length=length,
    )


# -- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weights", "max_weight"),
    [
        ("5", [5.0, 5.0, 5.0], 5.0),
        ("10,20,70", [10.0, 20.0, 70.0, 10.0], 70.0),
        ("0.5", [0.5, 0.5], 0.5),
    ],
)
def test_fixed_and_cycled_weights(text: str, weights: list[float], max_weight: float) -> None:
    spec = WeightSpec.parse(text)
    assert [spec.weight(1, i) for i in range(len(weights))] == weights
    assert spec.max_weight == max_weight


def test_a_range_of_weights_is_drawn_per_participant_from_the_seed() -> None:
    spec = WeightSpec.parse("1:100")
    drawn = [spec.weight(7, i) for i in range(200)]
    assert drawn == [spec.weight(7, i) for i in range(200)], "reproducible"
    assert drawn != [spec.weight(8, i) for i in range(200)], "another seed, other weights"
    assert all(1 <= w <= 100 and w.is_integer() for w in drawn)
    assert len(set(drawn)) > 30
    floats = WeightSpec.parse("0.5:2.5")
    assert not all(floats.weight(1, i).is_integer() for i in range(10))


@pytest.mark.parametrize("text", ["", "abc", "1:", ":5", "5:1", "-1", "0", "0,0", "1,x", "inf"])
def test_bad_weights_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        WeightSpec.parse(text)


# -- local models ----------------------------------------------------------------------------


def test_random_models_are_reproducible_and_differ_per_participant_and_round() -> None:
    spec = ModelSpec.parse("random")
    one = spec.local_model(5, 0, params())
    assert np.array_equal(one, spec.local_model(5, 0, params()))
    assert not np.array_equal(one, spec.local_model(5, 1, params()))
    assert not np.array_equal(one, spec.local_model(5, 0, params(round_id=4)))
    assert not np.array_equal(one, spec.local_model(6, 0, params()))
    assert one.shape == (40,)
    assert one.dtype == np.float64


@pytest.mark.parametrize(
    ("data", "bound", "limit"),
    [("F32", "B0", 1), ("F32", "B2", 100), ("F64", "B6", 10**6), ("F32", "Bmax", 10**6)],
)
def test_random_models_stay_within_the_bound_in_the_data_type(
    data: str, bound: str, limit: int
) -> None:
    model = ModelSpec().local_model(1, 2, params(data, bound, length=2000))
    assert np.max(np.abs(model)) <= limit
    assert np.max(np.abs(model)) > limit / 2, "uses the range"
    if data == "F32":
        assert np.array_equal(model, model.astype(np.float32).astype(np.float64))


def test_integer_models_for_integer_data_types() -> None:
    model = ModelSpec().local_model(1, 2, params("I32", "B2", length=500))
    assert model.dtype == np.int64
    assert model.min() >= -100
    assert model.max() <= 100


def test_a_constant_model() -> None:
    model = ModelSpec.parse("0.25").local_model(1, 2, params())
    assert np.array_equal(model, np.full(40, 0.25))
    with pytest.raises(ConfigError, match="does not fit"):
        ModelSpec.parse("1000").local_model(1, 2, params())
    with pytest.raises(ConfigError, match="does not fit"):
        ModelSpec.parse("0.5").local_model(1, 2, params("I32", "B2"))
    for bad in ("nan", "many", "inf"):
        with pytest.raises(ConfigError):
            ModelSpec.parse(bad)


# -- the check -------------------------------------------------------------------------------


def protocol_mean(
    models: list[list[float]], weights: list[int], max_weight: int, vect: MaskConfig
) -> list[float]:
    """What the coordinator computes: fixed-point sums and scalars, then the exact mean."""
    sums = [0] * len(models[0])
    scalar_sum = 0
    for model, weight in zip(models, weights, strict=True):
        scalar = encoding.clamp_scalar(Fraction(weight, max_weight), UNIT)
        values = encoding.convert_model(model, vect.data_type)
        for i, y in enumerate(encoding.quantize(values, scalar, vect)):
            sums[i] += y
        scalar_sum += encoding.encode_scalar(scalar, UNIT)
    return encoding.weighted_mean(sums, scalar_sum, len(models), vect, UNIT)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    count=st.integers(1, 6),
    length=st.integers(1, 4),
    bound=st.sampled_from(["B0", "B2", "B4"]),
    data_type=st.sampled_from(["F32", "F64"]),
)
def test_the_protocols_mean_is_within_the_tolerance(
    data: st.DataObject, count: int, length: int, bound: str, data_type: str
) -> None:
    vect = MaskConfig.from_names("Power2", data_type, bound, "M3")
    limit = float(vect.add_shift)
    value = st.floats(-limit, limit, allow_nan=False, width=32 if data_type == "F32" else 64)
    models = [data.draw(st.lists(value, min_size=length, max_size=length)) for _ in range(count)]
    weights = data.draw(st.lists(st.integers(0, 100), min_size=count, max_size=count))
    if sum(weights) == 0:
        weights[0] = 1
    got = np.array(protocol_mean(models, weights, 128, vect))
    expected = weighted_mean(models, [float(w) for w in weights])
    bound_ = tolerance(
        count=count,
        scalar_sum=sum(weights) / 128,
        max_abs=max(abs(v) for m in models for v in m),
        vect=vect,
        unit=UNIT,
    )
    assert np.max(np.abs(got - expected)) <= bound_


def test_the_check_catches_a_missing_update_or_a_wrong_weight() -> None:
    vect = MaskConfig.from_names("Power2", "F32", "B2", "M3")
    rng = np.random.default_rng(3)
    models = [
        rng.uniform(-100, 100, 20).astype(np.float32).astype(float).tolist() for _ in range(8)
    ]
    weights = [int(w) for w in rng.integers(1, 100, 8)]
    global_model = protocol_mean(models, weights, 128, vect)
    assert weights[0] != weights[1]
    for seen, seen_weights in (
        (models[1:], weights[1:]),  # an accepted update the fleet missed
        (models, [weights[1], *weights[1:]]),  # a wrong weight
    ):
        record = RoundRecord(1, seen_in="sum")
        for model, weight in zip(seen, seen_weights, strict=True):
            record.add_update(float(weight), np.array(model))
        assert not record.check(global_model, MaskConfigPair(vect, UNIT), 128.0)
        assert "max error" in record.note
    record = RoundRecord(1, seen_in="sum")
    for model, weight in zip(models, weights, strict=True):
        record.add_update(float(weight), np.array(model))
    assert record.check(global_model, MaskConfigPair(vect, UNIT), 128.0)
    assert record.max_error is not None
    assert record.tolerance is not None
    assert record.max_error <= record.tolerance < 1e-6


def test_a_round_without_accepted_updates_does_not_verify() -> None:
    record = RoundRecord(2, seen_in="sum")
    pair = MaskConfigPair(MaskConfig.from_names("Power2", "F32", "B2", "M3"), UNIT)
    assert not record.check([0.0, 1.0], pair, 1.0)
    assert "no accepted update" in record.note


def test_tolerance_is_infinite_without_weight() -> None:
    vect = MaskConfig.from_names("Power2", "F32", "B2", "M3")
    assert tolerance(count=0, scalar_sum=1, max_abs=1, vect=vect, unit=UNIT) == math.inf
    assert tolerance(count=3, scalar_sum=0, max_abs=1, vect=vect, unit=UNIT) == math.inf


# -- records -----------------------------------------------------------------------------------


def test_phase_durations_and_completeness() -> None:
    record = RoundRecord(4, seen_in="sum")
    record.phases.update(
        {"sum": 100.0, "update": 101.5, "sum2": 104.0, "unmask": 104.5, "idle": 104.75}
    )
    assert record.durations() == {"sum": 1.5, "update": 2.5, "sum2": 0.5, "unmask": 0.25}
    assert record.duration == 4.75
    assert record.complete
    assert not RoundRecord(4, seen_in="update").complete
    failed = RoundRecord(5, seen_in="start")
    failed.phases.update({"sum": 10.0, "update": 11.0, "failure": 13.0})
    assert failed.durations() == {"sum": 1.0, "update": 2.0}
    assert failed.duration == 3.0


def test_identities_follow_the_seed() -> None:
    from xaynet.testdrive.fleet import _identity_seed

    assert _identity_seed(1, 0) == _identity_seed(1, 0)
    assert _identity_seed(1, 0) != _identity_seed(1, 1)
    assert len(_identity_seed(None, 0)) == 32
    assert _identity_seed(None, 0) != _identity_seed(None, 0), "fresh without a seed"
