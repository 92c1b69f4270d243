"""The learning task of the digits examples, in numpy: data, non-IID split, softmax regression.

Nothing here knows about federated learning; ``run.py`` wires it to Xaynet participants, and the
PyTorch example reuses the data and the split.

Data: scikit-learn's copy of the UCI handwritten digits (1,797 images of 8x8 pixels with
intensities 0..16, ten classes), shipped inside the scikit-learn package, so nothing is
downloaded. Pixels are scaled to [0, 1]; a fixed, stratified 75/25 split gives 1,347 training
and 450 test images.

Model: softmax regression, ``logits = x @ W + b``. The flat parameter vector that participants
exchange has ``MODEL_LENGTH = 650`` entries::

    vector[0:640]    W, 64 x 10, row-major: W[pixel, digit] is vector[pixel * 10 + digit]
    vector[640:650]  b, 10 biases: b[digit] is vector[640 + digit]

The all-zero vector (what a coordinator without an initial model starts from) is a valid
model: it predicts class 0 for everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = [
    "N_FEATURES",
    "N_CLASSES",
    "MODEL_LENGTH",
    "Dataset",
    "load_dataset",
    "split_non_iid",
    "zero_model",
    "unflatten",
    "flatten",
    "predict",
    "accuracy",
    "train",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_FEATURES = 64
N_CLASSES = 10
MODEL_LENGTH = N_FEATURES * N_CLASSES + N_CLASSES  # 650

#: The train/test split does not depend on the run's seed: accuracies stay comparable.
SPLIT_SEED = 20240601
#: Dirichlet concentration of the non-IID split: small, so each participant sees few digits.
DEFAULT_ALPHA = 0.3


@dataclass(frozen=True)
class Dataset:
    """Features in [0, 1] (float64, one row of 64 pixels per image) and labels 0..9."""

    x_train: FloatArray
    y_train: IntArray
    x_test: FloatArray
    y_test: IntArray


def load_dataset() -> Dataset:
    """The digits, scaled to [0, 1], split 75/25 (stratified, always the same split)."""
    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=SPLIT_SEED
    )
    return Dataset(x_train, y_train, x_test, y_test)


def split_non_iid(
    labels: IntArray,
    n_participants: int,
    *,
    seed: int,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = 10,
) -> list[IntArray]:
    """Deal the training indices to participants with a label skew; returns one array each.

    For every digit, the shares of the participants are drawn from a symmetric Dirichlet
    distribution with concentration ``alpha`` and that digit's images are cut accordingly (a
    common benchmark of non-IID federated learning). A small ``alpha`` concentrates each digit
    on a few participants, so each participant holds mostly a few digits and little or nothing
    of the others; a large one approaches an IID split. Draws that leave a participant with
    fewer than ``min_samples`` images are repeated. The partitions are disjoint, together hold
    every index, and list their indices in random order. Deterministic for a given ``seed``.
    """
    if n_participants < 1:
        raise ValueError("need at least one participant")
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    if n_participants * min_samples > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {n_participants} x {min_samples}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(1000):
        parts: list[list[IntArray]] = [[] for _ in range(n_participants)]
        for digit in classes:
            indices = rng.permutation(np.flatnonzero(labels == digit))
            shares = rng.dirichlet(np.full(n_participants, alpha))
            cuts = np.round(np.cumsum(shares)[:-1] * len(indices)).astype(np.int64)
            for part, chunk in zip(parts, np.split(indices, cuts), strict=True):
                part.append(chunk)
        partitions = [np.concatenate(part) for part in parts]
        if min(len(p) for p in partitions) >= min_samples:
            return [rng.permutation(p).astype(np.int64) for p in partitions]
    raise ValueError(f"no split with {min_samples}+ samples each in 1000 draws: raise alpha")


def zero_model() -> FloatArray:
    return np.zeros(MODEL_LENGTH)


def unflatten(vector: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(W, b)`` views of a flat parameter vector (see the module docstring for the layout)."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (MODEL_LENGTH,):
        raise ValueError(f"a model has {MODEL_LENGTH} parameters, got shape {vector.shape}")
    split = N_FEATURES * N_CLASSES
    return vector[:split].reshape(N_FEATURES, N_CLASSES), vector[split:]


def flatten(weights: FloatArray, biases: FloatArray) -> FloatArray:
    """The inverse of :func:`unflatten`."""
    return np.concatenate([weights.reshape(-1), biases]).astype(np.float64)


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def predict(vector: FloatArray, x: FloatArray) -> IntArray:
    weights, biases = unflatten(vector)
    labels: IntArray = np.argmax(x @ weights + biases, axis=1)
    return labels


def accuracy(vector: FloatArray, x: FloatArray, y: IntArray) -> float:
    """The fraction of ``x`` that the model labels correctly."""
    return float(np.mean(predict(vector, x) == y))


def train(
    vector: FloatArray,
    x: FloatArray,
    y: IntArray,
    *,
    rng: np.random.Generator,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 0.05,
) -> FloatArray:
    """Mini-batch SGD on the cross-entropy, starting from ``vector``; returns a new vector.

    The defaults train gently (a small step, one epoch): a participant holding only a few
    digits then moves the global model without forgetting the others, which is what lets
    federated averaging of such skewed partitions converge over rounds.
    """
    weights, biases = (part.copy() for part in unflatten(vector))
    one_hot = np.eye(N_CLASSES)[y]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            xb = x[batch]
            # d(mean cross-entropy)/d(logits) = softmax - one_hot, over the batch
            error = (_softmax(xb @ weights + biases) - one_hot[batch]) / len(batch)
            weights -= learning_rate * (xb.T @ error)
            biases -= learning_rate * error.sum(axis=0)
    return flatten(weights, biases)
