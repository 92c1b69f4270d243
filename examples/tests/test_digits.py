"""examples/digits_numpy: the data, the non-IID split, the numpy model, and a federated run."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("sklearn")

import digits
from example_support import ROOT, Coordinator, run_example

pytestmark = pytest.mark.numpy


@pytest.fixture(scope="module")
def data() -> digits.Dataset:
    return digits.load_dataset()


def label_shares(labels: digits.IntArray) -> digits.FloatArray:
    counts = np.bincount(labels, minlength=digits.N_CLASSES)
    shares: digits.FloatArray = counts / counts.sum()
    return shares


def total_variation(p: digits.FloatArray, q: digits.FloatArray) -> float:
    return float(0.5 * np.abs(p - q).sum())


# -- data ------------------------------------------------------------------------------------------


def test_dataset_is_the_scaled_digits_with_a_fixed_stratified_split(data: digits.Dataset) -> None:
    assert data.x_train.shape == (1347, 64)
    assert data.x_test.shape == (450, 64)
    assert len(data.y_train) == 1347
    assert len(data.y_test) == 450
    for x in (data.x_train, data.x_test):
        assert x.min() == 0.0
        assert x.max() == 1.0
    # stratified: every digit is in the test set in about its overall share
    assert np.abs(label_shares(data.y_test) - label_shares(data.y_train)).max() < 0.01
    again = digits.load_dataset()
    assert np.array_equal(again.x_train, data.x_train)
    assert np.array_equal(again.y_test, data.y_test)


# -- split -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 10, 25])
def test_split_partitions_are_disjoint_and_cover_the_train_set(
    data: digits.Dataset, n: int
) -> None:
    partitions = digits.split_non_iid(data.y_train, n, seed=3)
    assert len(partitions) == n
    joined = np.concatenate(partitions)
    assert len(joined) == len(data.y_train)
    assert np.array_equal(np.sort(joined), np.arange(len(data.y_train)))
    assert min(len(p) for p in partitions) >= 10


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [5, 10, 20])
def test_split_skews_every_participants_labels(data: digits.Dataset, n: int, seed: int) -> None:
    overall = label_shares(data.y_train)
    distances = [
        total_variation(label_shares(data.y_train[p]), overall)
        for p in digits.split_non_iid(data.y_train, n, seed=seed)
    ]
    # an IID split of these sizes stays within ~0.1 of the overall shares (see the next test)
    assert min(distances) > 0.2
    assert np.mean(distances) > 0.35


def test_split_approaches_iid_for_a_large_alpha(data: digits.Dataset) -> None:
    """The skew measure of the previous test does tell the two apart."""
    overall = label_shares(data.y_train)
    partitions = digits.split_non_iid(data.y_train, 10, seed=0, alpha=1000.0)
    distances = [total_variation(label_shares(data.y_train[p]), overall) for p in partitions]
    assert max(distances) < 0.1


def test_split_is_deterministic_per_seed(data: digits.Dataset) -> None:
    first = digits.split_non_iid(data.y_train, 8, seed=11)
    second = digits.split_non_iid(data.y_train, 8, seed=11)
    other = digits.split_non_iid(data.y_train, 8, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(
        len(a) == len(b) and np.array_equal(a, b) for a, b in zip(first, other, strict=True)
    )


def test_split_rejects_impossible_requests(data: digits.Dataset) -> None:
    with pytest.raises(ValueError, match="participant"):
        digits.split_non_iid(data.y_train, 0, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        digits.split_non_iid(data.y_train, 4, seed=0, alpha=0.0)
    with pytest.raises(ValueError, match="cannot give"):
        digits.split_non_iid(data.y_train, 200, seed=0)


# -- model -----------------------------------------------------------------------------------------


def test_flatten_and_unflatten_round_trip_with_the_documented_layout() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(64, 10))
    biases = rng.normal(size=10)
    vector = digits.flatten(weights, biases)
    assert vector.shape == (digits.MODEL_LENGTH,) == (650,)
    assert vector[7 * 10 + 3] == weights[7, 3]
    assert vector[640 + 4] == biases[4]
    w, b = digits.unflatten(vector)
    assert np.array_equal(w, weights)
    assert np.array_equal(b, biases)
    assert np.array_equal(digits.flatten(w, b), vector)
    with pytest.raises(ValueError, match="650"):
        digits.unflatten(np.zeros(649))


def test_the_example_config_has_the_models_length() -> None:
    config = (ROOT / "configs" / "examples.toml").read_text("utf-8")
    assert "\nlength = 650\n" in config


def test_the_zero_model_predicts_class_zero(data: digits.Dataset) -> None:
    assert np.all(digits.predict(digits.zero_model(), data.x_test) == 0)
    assert digits.accuracy(digits.zero_model(), data.x_test, data.y_test) == pytest.approx(
        np.mean(data.y_test == 0)
    )


def test_local_training_improves_test_accuracy(data: digits.Dataset) -> None:
    rng = np.random.default_rng(0)
    model = digits.zero_model()
    before = digits.accuracy(model, data.x_test, data.y_test)
    trained = digits.train(model, data.x_train, data.y_train, rng=rng, epochs=3)
    after = digits.accuracy(trained, data.x_test, data.y_test)
    assert before < 0.15
    assert after > 0.9
    assert np.array_equal(model, digits.zero_model()), "train() must not modify its input"
    assert np.abs(trained).max() < 100, "within the masking bound B2"


def test_training_on_a_skewed_partition_favours_its_digits(data: digits.Dataset) -> None:
    """Why the example is federated: one participant's data alone gives a poor model."""
    partition = digits.split_non_iid(data.y_train, 10, seed=0)[0]
    own = digits.train(
        digits.zero_model(),
        data.x_train[partition],
        data.y_train[partition],
        rng=np.random.default_rng(1),
        epochs=3,
    )
    assert digits.accuracy(own, data.x_test, data.y_test) < 0.7


def test_training_is_deterministic_for_a_seed(data: digits.Dataset) -> None:
    def once(seed: int) -> digits.FloatArray:
        rng = np.random.default_rng(seed)
        return digits.train(digits.zero_model(), data.x_train[:100], data.y_train[:100], rng=rng)

    assert np.array_equal(once(5), once(5))
    assert not np.array_equal(once(5), once(6))


# -- federated -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_federated_training_raises_the_global_models_accuracy(
    coordinator_for: Callable[[str], Coordinator],
) -> None:
    """10 participants, 10 rounds against the real coordinator (configs/examples.toml)."""
    coordinator = coordinator_for("configs/examples.toml")
    accuracies = run_example(
        "digits_numpy/run.py",
        coordinator,
        ["--participants", "10", "--rounds", "10", "--seed", "0"],
        timeout=60,
    )
    assert len(accuracies) == 10, accuracies
    # Roles are random each round (fresh keys, the coordinator's seed), so the first global
    # model varies (0.2-0.7 in simulations); ten rounds of FedAvg reach 0.75-0.9.
    assert accuracies[-1] >= accuracies[0] + 0.15, accuracies
    assert accuracies[-1] > 0.6, accuracies
