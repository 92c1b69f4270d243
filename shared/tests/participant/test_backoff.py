"""The backoff policy: exponential growth up to a ceiling, jitter from the caller's generator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xaynet.errors import LocalProtocolError
from xaynet.participant import Backoff


def test_ceilings_grow_exponentially_up_to_the_maximum() -> None:
    policy = Backoff(initial=0.5, factor=2, maximum=3, jitter=0)
    assert [policy.ceiling(n) for n in range(5)] == [0.5, 1, 2, 3, 3]
    assert policy.ceiling(10_000) == 3, "no overflow for huge attempt counts"


@given(attempt=st.integers(0, 10_000), seed=st.integers(0, 2**32))
def test_jittered_delays_stay_in_range(attempt: int, seed: int) -> None:
    policy = Backoff(initial=0.1, factor=1.7, maximum=8, jitter=0.4)
    delay = policy.delay(attempt, random.Random(seed))
    ceiling = policy.ceiling(attempt)
    assert ceiling * 0.6 <= delay <= ceiling <= 8


def test_jitter_comes_from_the_given_generator() -> None:
    policy = Backoff()
    one = [policy.delay(3, random.Random(1)) for _ in range(2)]
    assert one[0] == one[1]
    assert policy.delay(3, random.Random(2)) != one[0]


def test_constant_policies() -> None:
    assert Backoff(initial=1, factor=1, maximum=1).ceiling(50) == 1
    assert Backoff(initial=0, maximum=0).delay(3, random.Random(0)) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1},
        {"factor": 0.5},
        {"initial": 5, "maximum": 1},
        {"jitter": 1.5},
        {"maximum": float("inf")},
        {"initial": True},
    ],
)
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(LocalProtocolError):
        Backoff(**kwargs)


@pytest.mark.parametrize("attempt", [-1, 1.5, True])
def test_invalid_attempts(attempt: object) -> None:
    with pytest.raises(LocalProtocolError):
        Backoff().ceiling(attempt)  # type: ignore[arg-type]
