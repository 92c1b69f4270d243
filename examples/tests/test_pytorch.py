"""examples/pytorch: the MLP, its flat parameter vector, local training, and a federated run."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

# Only a guard: `make test` installs torch (requirements/examples.txt).
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import digits  # noqa: E402
import mlp  # noqa: E402
from example_support import ROOT, Coordinator, run_example  # noqa: E402

pytestmark = pytest.mark.numpy


@pytest.fixture(scope="module")
def data() -> digits.Dataset:
    return digits.load_dataset()


def test_model_length_matches_the_architecture_and_the_config() -> None:
    model = mlp.make_model()
    assert sum(p.numel() for p in model.parameters()) == mlp.MODEL_LENGTH == 2410
    config = (ROOT / "configs" / "examples-pytorch.toml").read_text("utf-8")
    assert "\nlength = 2410\n" in config


def test_vector_layout_is_the_documented_one() -> None:
    model = mlp.make_model(seed=1)
    vector = mlp.to_vector(model)
    assert vector.dtype == np.float64
    assert vector.shape == (2410,)
    assert vector[5 * 64 + 7] == model.hidden.weight[5, 7].item()
    assert vector[2048 + 3] == model.hidden.bias[3].item()
    assert vector[2080 + 9 * 32 + 31] == model.output.weight[9, 31].item()
    assert vector[2400 + 9] == model.output.bias[9].item()


def test_to_vector_and_load_vector_round_trip_exactly() -> None:
    source = mlp.make_model(seed=1)
    target = mlp.make_model(seed=2)
    vector = mlp.to_vector(source)
    assert not np.array_equal(mlp.to_vector(target), vector)
    mlp.load_vector(target, vector)
    for a, b in zip(source.parameters(), target.parameters(), strict=True):
        assert torch.equal(a, b)
    assert np.array_equal(mlp.to_vector(target), vector)


def test_load_vector_rounds_to_float32_and_rejects_a_wrong_length() -> None:
    model = mlp.make_model()
    vector = np.full(mlp.MODEL_LENGTH, 0.1)  # 0.1 has no exact float32
    mlp.load_vector(model, vector)
    assert np.array_equal(mlp.to_vector(model), np.full(mlp.MODEL_LENGTH, np.float32(0.1)))
    with pytest.raises(ValueError, match="2410"):
        mlp.load_vector(model, np.zeros(mlp.MODEL_LENGTH + 1))


def test_make_model_is_reproducible_per_seed() -> None:
    assert np.array_equal(mlp.to_vector(mlp.make_model(7)), mlp.to_vector(mlp.make_model(7)))
    assert not np.array_equal(mlp.to_vector(mlp.make_model(7)), mlp.to_vector(mlp.make_model(8)))
    # the scale of PyTorch's default init: |w| <= 1/sqrt(fan_in) of each layer
    model = mlp.make_model(7)
    assert model.hidden.weight.abs().max().item() <= 1 / 8
    assert model.output.weight.abs().max().item() <= 1 / 32**0.5


def test_local_training_improves_test_accuracy(data: digits.Dataset) -> None:
    model = mlp.make_model(seed=0)
    before = mlp.accuracy(model, data.x_test, data.y_test)
    mlp.train(
        model, data.x_train, data.y_train, generator=torch.Generator().manual_seed(0), epochs=3
    )
    after = mlp.accuracy(model, data.x_test, data.y_test)
    assert before < 0.3
    assert after > 0.85
    assert np.abs(mlp.to_vector(model)).max() < 100, "within the masking bound B2"


def test_training_is_deterministic_for_a_seed(data: digits.Dataset) -> None:
    def once(seed: int) -> mlp.FloatArray:
        model = mlp.make_model(seed=0)
        generator = torch.Generator().manual_seed(seed)
        mlp.train(model, data.x_train[:200], data.y_train[:200], generator=generator)
        return mlp.to_vector(model)

    assert np.array_equal(once(3), once(3))
    assert not np.array_equal(once(3), once(4))


@pytest.mark.slow
def test_federated_training_raises_the_global_models_accuracy(
    coordinator_for: Callable[[str], Coordinator],
) -> None:
    """10 participants, 10 rounds against the real coordinator (configs/examples-pytorch.toml)."""
    coordinator = coordinator_for("configs/examples-pytorch.toml")
    accuracies = run_example(
        "pytorch/run.py",
        coordinator,
        ["--participants", "10", "--rounds", "10", "--seed", "0"],
        timeout=60,
    )
    assert len(accuracies) == 10, accuracies
    # The first global model is an average after one short local training from random
    # weights (0.1-0.6 in simulations); ten rounds reach 0.75-0.9.
    assert accuracies[-1] >= accuracies[0] + 0.15, accuracies
    assert accuracies[-1] > 0.6, accuracies
