"""Whole rounds in memory: participants' protocol logic against a faithful coordinator."""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import pytest
from helpers import (
    RoundFailedError,
    RoundOutcome,
    f32,
    quantization_bound,
    run_round,
    weighted_mean,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xaynet.mask import MaskConfig, MaskConfigPair
from xaynet.participant import Role

DEFAULT = MaskConfigPair.uniform(MaskConfig.from_names("Prime", "F32", "B0", "M3"))
WIDE = MaskConfigPair.uniform(MaskConfig.from_names("Prime", "F32", "B4", "M3"))


def random_models(rng: random.Random, count: int, length: int) -> list[list[float]]:
    return [[f32(rng.uniform(-1, 1)) for _ in range(length)] for _ in range(count)]


def assert_weighted_mean(outcome: RoundOutcome, config: MaskConfigPair) -> list[Fraction]:
    """The global model is the scalar-weighted mean of the accepted models, up to quantization."""
    models = [m for m, _ in outcome.submissions.values()]
    scalars = [s for _, s in outcome.submissions.values()]
    expected = weighted_mean(models, scalars)
    scalar_sum = float(sum(Fraction(s) for s in scalars))
    assert len(outcome.global_model) == len(expected)
    for got, want in zip(outcome.global_model, expected, strict=True):
        bound = quantization_bound(config, len(models), scalar_sum, float(want))
        assert abs(Fraction(got) - want) <= Fraction(bound), (got, float(want), bound)
    return expected


def roles(outcome: RoundOutcome, role: Role) -> list[int]:
    return [i for i, r in outcome.roles.items() if r is role]


def test_round_yields_the_mean() -> None:
    rng = random.Random(1)
    models = random_models(rng, 20, 5)
    outcome = run_round(
        20, 5, config=DEFAULT, models=models, scalars=[1] * 20, p_sum=0.2, p_update=0.6, rng=rng
    )
    assert outcome.rejected == []
    assert outcome.summers
    updaters = roles(outcome, Role.UPDATE)
    assert len(outcome.submissions) == len(updaters) >= 2
    assert len(outcome.summers) == len(roles(outcome, Role.SUM))
    assert_weighted_mean(outcome, DEFAULT)


def test_round_with_dropouts() -> None:
    rng = random.Random(2)
    models = random_models(rng, 30, 4)
    outcome = run_round(
        30,
        4,
        config=DEFAULT,
        models=models,
        scalars=[1] * 30,
        p_sum=0.25,
        p_update=0.7,
        rng=rng,
        update_dropout=lambda i: i % 3 == 0,
        sum2_dropout=lambda i: i % 2 == 0,
    )
    updaters = roles(outcome, Role.UPDATE)
    dropped = [i for i in updaters if i % 3 == 0]
    assert dropped, "the scenario must drop some updaters"
    assert len(outcome.submissions) == len(updaters) - len(dropped)
    # Some summers left before Sum2; the others' masks still agree.
    assert any(i % 2 == 0 for i in roles(outcome, Role.SUM))
    assert outcome.rejected == []
    assert_weighted_mean(outcome, DEFAULT)
    # The dropped updaters' models are not in the average.
    all_updaters_mean = weighted_mean([models[i] for i in updaters], [1] * len(updaters))
    assert outcome.global_model != pytest.approx([float(v) for v in all_updaters_mean])


def test_every_summer_leaving_fails_the_round() -> None:
    rng = random.Random(3)
    models = random_models(rng, 12, 3)
    with pytest.raises(RoundFailedError, match="no mask"):
        run_round(
            12,
            3,
            config=DEFAULT,
            models=models,
            scalars=[1] * 12,
            p_sum=0.3,
            p_update=0.8,
            rng=rng,
            sum2_dropout=lambda _i: True,
        )


def test_fedavg_weights_by_sample_count() -> None:
    # x = clamp(s * w, +-B): with |w| <= 1 and s <= 1000 samples, B4 (10^4) never clamps,
    # and the unit config's B4 keeps every scalar unclamped.
    rng = random.Random(4)
    models = random_models(rng, 20, 6)
    samples = [rng.randint(1, 1000) for _ in range(20)]
    outcome = run_round(
        20, 6, config=WIDE, models=models, scalars=samples, p_sum=0.2, p_update=0.7, rng=rng
    )
    expected = assert_weighted_mean(outcome, WIDE)
    plain = weighted_mean(
        [m for m, _ in outcome.submissions.values()], [1] * len(outcome.submissions)
    )
    assert [float(v) for v in expected] != pytest.approx([float(v) for v in plain], abs=1e-3)


def test_scalars_above_the_unit_bound_are_clamped() -> None:
    # With B0 every scalar above 1 becomes 1: sample counts then give the plain mean.
    rng = random.Random(5)
    models = random_models(rng, 16, 3)
    samples = [rng.randint(2, 100) for _ in range(16)]
    outcome = run_round(
        16, 3, config=DEFAULT, models=models, scalars=samples, p_sum=0.25, p_update=0.7, rng=rng
    )
    ones = RoundOutcome(
        **{**vars(outcome), "submissions": {k: (m, 1) for k, (m, _) in outcome.submissions.items()}}
    )
    assert_weighted_mean(ones, DEFAULT)


def test_round_with_chunked_messages() -> None:
    rng = random.Random(6)
    models = random_models(rng, 12, 60)
    outcome = run_round(
        12,
        60,
        config=DEFAULT,
        models=models,
        scalars=[1] * 12,
        p_sum=0.3,
        p_update=0.8,
        rng=rng,
        max_message_size=300,
    )
    assert outcome.rejected == []
    assert_weighted_mean(outcome, DEFAULT)


def test_failed_role_draws_restart_with_a_chained_seed() -> None:
    # Two participants with p_sum = 0.5 often give no summer or no updater.
    rng = random.Random(7)
    models = random_models(rng, 2, 2)
    outcome = run_round(
        2, 2, config=DEFAULT, models=models, scalars=[1, 1], p_sum=0.5, p_update=1.0, rng=rng
    )
    assert outcome.attempts > 1
    assert_weighted_mean(outcome, DEFAULT)


@pytest.mark.numpy
def test_round_with_numpy_models() -> None:
    import numpy as np

    rng = random.Random(8)
    lists = random_models(rng, 12, 8)
    arrays: Sequence[Sequence[float]] = [np.asarray(m, dtype=np.float32) for m in lists]
    outcome = run_round(
        12, 8, config=DEFAULT, models=arrays, scalars=[1] * 12, p_sum=0.3, p_update=0.8, rng=rng
    )
    outcome.submissions = {
        k: ([float(x) for x in m], s) for k, (m, s) in outcome.submissions.items()
    }
    assert_weighted_mean(outcome, DEFAULT)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32),
    st.integers(1, 6),
    st.sampled_from(["B0", "B2"]),
)
def test_round_property(seed: int, length: int, bound: str) -> None:
    config = MaskConfigPair.uniform(MaskConfig.from_names("Prime", "F32", bound, "M3"))
    rng = random.Random(seed)
    models = random_models(rng, 8, length)
    scalars = [rng.choice([0.5, 1]) for _ in range(8)]
    outcome = run_round(
        8, length, config=config, models=models, scalars=scalars, p_sum=0.3, p_update=0.9, rng=rng
    )
    assert_weighted_mean(outcome, config)
