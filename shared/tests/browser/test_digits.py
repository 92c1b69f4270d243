"""The browser's pure-Python digits task: data file, shards, softmax regression."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from browser._data import DIGITS_JSON, dataset
from xaynet.browser import digits
from xaynet.errors import DecodeError


def test_the_data_file_holds_the_examples_split() -> None:
    data = dataset()
    assert (len(data.y_train), len(data.y_test)) == (1347, 450)
    assert all(len(image) == digits.N_FEATURES for image in data.x_train + data.x_test)
    assert {v for image in data.x_train for v in image} <= {i / 16 for i in range(17)}
    assert sorted(set(data.y_train)) == list(range(10))
    # stratified: every digit is held out about equally often
    assert min(data.y_test.count(d) for d in range(10)) >= 43


def _raw() -> dict[str, object]:
    return json.loads(DIGITS_JSON.read_text("utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("test"), "test must be an object"),
        (lambda d: d["train"]["y"].pop(), "the same length"),
        (lambda d: d["train"]["x"].__setitem__(0, "0" * 63), "string of 64 pixels"),
        (lambda d: d["train"]["x"].__setitem__(0, "h" * 64), "pixels are written with"),
        (lambda d: d["test"]["y"].__setitem__(0, 10), "labels are integers 0..9"),
        (lambda d: d["test"]["y"].__setitem__(0, True), "labels are integers 0..9"),
        (lambda d: d["test"].update(x=[], y=[]), "test is empty"),
    ],
)
def test_a_broken_data_file_is_refused_with_the_reason(change: object, message: str) -> None:
    raw = _raw()
    change(raw)  # type: ignore[operator]
    with pytest.raises(DecodeError, match=message):
        digits.parse_dataset(raw)


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_anything_but_an_object_is_refused(value: object) -> None:
    with pytest.raises(DecodeError):
        digits.parse_dataset(value)


def test_shards_are_disjoint_cover_everything_and_are_label_skewed() -> None:
    labels = dataset().y_train
    shards = digits.shard_indices(labels)
    assert len(shards) == digits.SHARDS
    flat = [i for shard in shards for i in shard]
    assert sorted(flat) == list(range(len(labels)))
    assert min(len(shard) for shard in shards) >= 20
    # the three most frequent digits of a shard hold most of it (IID would give ~30 %)
    top3 = []
    for shard in shards:
        counts = sorted((sum(labels[i] == d for i in shard) for d in range(10)), reverse=True)
        top3.append(sum(counts[:3]) / len(shard))
    assert sum(top3) / len(top3) > 0.6
    assert digits.shard_indices(labels) == shards  # the same in every page and process


def test_devices_beyond_the_shard_count_share_shards() -> None:
    data = dataset()
    first = digits.local_data(data, 3)
    again = digits.local_data(data, 3 + digits.SHARDS)
    assert (first.shard, first.y) == (again.shard, again.y)
    assert digits.local_data(data, 4).y != first.y
    assert sum(first.label_counts()) == first.samples
    with pytest.raises(ValueError, match="start at 0"):
        digits.local_data(data, -1)


def test_a_model_of_another_length_is_refused() -> None:
    data = dataset()
    with pytest.raises(ValueError, match="650 values"):
        digits.accuracy([0.0] * 649, data.x_test, data.y_test)
    with pytest.raises(ValueError, match="650 values"):
        digits.train_epoch([0.0] * 651, data.x_train, data.y_train, rng=random.Random(0))


def test_the_zero_model_predicts_class_zero_with_uniform_loss() -> None:
    data = dataset()
    model = digits.zero_model()
    assert digits.predict(model, data.x_test[:5]) == [0] * 5
    assert digits.loss(model, data.x_test, data.y_test) == pytest.approx(math.log(10))
    assert digits.accuracy(model, data.x_test, data.y_test) == pytest.approx(
        data.y_test.count(0) / len(data.y_test)
    )


def test_an_epoch_lowers_the_loss_of_the_shard() -> None:
    local = digits.local_data(dataset(), 0)
    before = digits.loss(digits.zero_model(), local.x, local.y)
    model, seen = digits.train_epoch(digits.zero_model(), local.x, local.y, rng=random.Random(1))
    assert 0 < seen < before
    assert digits.loss(model, local.x, local.y) < before


@pytest.mark.numpy
def test_the_epoch_is_the_examples_mini_batch_sgd() -> None:
    """Same batches as the pure code, computed with numpy matrices (the examples' maths)."""
    import numpy as np

    local = digits.local_data(dataset(), 5)
    rng_seed = 7
    start = [random.Random(3).uniform(-0.5, 0.5) for _ in range(digits.MODEL_LENGTH)]
    model, _ = digits.train_epoch(
        start, local.x, local.y, rng=random.Random(rng_seed), learning_rate=0.3
    )

    order = list(range(local.samples))
    random.Random(rng_seed).shuffle(order)
    x, y = np.array(local.x), np.array(local.y)
    weights = np.array(start[:640]).reshape(64, 10)
    biases = np.array(start[640:])
    one_hot = np.eye(10)[y]
    for begin in range(0, len(order), 16):
        batch = order[begin : begin + 16]
        logits = x[batch] @ weights + biases
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        error = (shifted / shifted.sum(axis=1, keepdims=True) - one_hot[batch]) / len(batch)
        weights -= 0.3 * (x[batch].T @ error)
        biases -= 0.3 * error.sum(axis=0)
    expected = np.concatenate([weights.reshape(-1), biases])
    np.testing.assert_allclose(model, expected, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_federated_averaging_of_skewed_shards_learns_the_digits() -> None:
    """Eight devices, five rounds of weighted averaging: what the demo's chart shows."""
    data = dataset()
    devices = [digits.local_data(data, k) for k in range(8)]
    model = digits.zero_model()
    accuracies = [digits.accuracy(model, data.x_test, data.y_test)]
    rng = random.Random(0)
    for _ in range(5):
        results = [digits.train_epoch(model, d.x, d.y, rng=rng)[0] for d in devices]
        total = sum(d.samples for d in devices)
        model = [
            sum(r[i] * d.samples for r, d in zip(results, devices, strict=True)) / total
            for i in range(digits.MODEL_LENGTH)
        ]
        accuracies.append(digits.accuracy(model, data.x_test, data.y_test))
    assert accuracies[-1] > 0.6 > accuracies[0]
