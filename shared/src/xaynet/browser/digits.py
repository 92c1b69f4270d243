"""The demo's learning task in pure Python: 8x8 digits, non-IID shards, softmax regression.

The browser has no numpy, so this is lists and ``math``; it is also what native participants of
a mixed demo run (``xaynet-test-drive --task digits``), so both kinds train the same model.

Data (``web_participant/data/digits.json``, made by ``tools/make_digits_json.py`` from the copy
of the UCI digits shipped inside scikit-learn): the split of ``examples/digits_numpy`` (1,347
training and 450 held-out images), each image written as 64 characters ``0``-``9``, ``a``-``g``
for the pixel intensities 0..16. :func:`parse_dataset` checks it and scales pixels to [0, 1].

Model: the layout of the examples, so browsers and native participants exchange the same
vector of ``MODEL_LENGTH = 650`` values: ``vector[p * 10 + d]`` is the weight of pixel ``p`` for
digit ``d`` and ``vector[640 + d]`` the bias of digit ``d``.

Non-IID devices: the training set is dealt into ``SHARDS`` disjoint shards with a label skew
(:func:`shard_indices`); device ``k`` holds shard ``k mod SHARDS``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xaynet.errors import DecodeError

__all__ = [
    "N_FEATURES",
    "N_CLASSES",
    "MODEL_LENGTH",
    "SHARDS",
    "MAX_WEIGHT",
    "Dataset",
    "LocalData",
    "parse_dataset",
    "shard_indices",
    "local_data",
    "zero_model",
    "predict",
    "accuracy",
    "loss",
    "train_epoch",
]

N_FEATURES = 64
N_CLASSES = 10
MODEL_LENGTH = N_FEATURES * N_CLASSES + N_CLASSES  # 650
#: Disjoint shards of the training set; more devices than this share shards.
SHARDS = 16
#: ``max_weight`` of every digits participant: a power of two above the training set size, so
#: the scalar ``samples / MAX_WEIGHT`` is dyadic (exact and fast to encode).
MAX_WEIGHT = 2048
#: Dirichlet concentration of the label skew: small, so each shard holds mostly a few digits.
ALPHA = 0.4
#: The shards never change: a device's data is the same in every page and process.
SHARD_SEED = 20240601
_PIXELS = "0123456789abcdefg"
_PIXEL_VALUE = {ch: i / 16.0 for i, ch in enumerate(_PIXELS)}

Image = list[float]


@dataclass(frozen=True, slots=True)
class Dataset:
    """Training and held-out images (pixels in [0, 1]) with their labels 0..9."""

    x_train: list[Image]
    y_train: list[int]
    x_test: list[Image]
    y_test: list[int]


@dataclass(frozen=True, slots=True)
class LocalData:
    """What one simulated device holds: a shard of the training set."""

    shard: int
    x: list[Image]
    y: list[int]

    @property
    def samples(self) -> int:
        return len(self.y)

    def label_counts(self) -> list[int]:
        counts = [0] * N_CLASSES
        for label in self.y:
            counts[label] += 1
        return counts


def _parse_part(data: object, what: str) -> tuple[list[Image], list[int]]:
    if not isinstance(data, Mapping):
        raise DecodeError(f"digits: {what} must be an object with 'x' and 'y'")
    rows, labels = data.get("x"), data.get("y")
    if not isinstance(rows, list) or not isinstance(labels, list) or len(rows) != len(labels):
        raise DecodeError(f"digits: {what}.x and {what}.y must be lists of the same length")
    if not rows:
        raise DecodeError(f"digits: {what} is empty")
    images: list[Image] = []
    for row in rows:
        if not isinstance(row, str) or len(row) != N_FEATURES:
            raise DecodeError(f"digits: every {what} image is a string of {N_FEATURES} pixels")
        try:
            images.append([_PIXEL_VALUE[ch] for ch in row])
        except KeyError:
            raise DecodeError(f"digits: pixels are written with {_PIXELS!r}") from None
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < N_CLASSES:
            raise DecodeError(f"digits: {what} labels are integers 0..{N_CLASSES - 1}")
    return images, list(labels)


def parse_dataset(data: object) -> Dataset:
    """The data set from the decoded JSON file (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise DecodeError("digits: expected a JSON object with 'train' and 'test'")
    x_train, y_train = _parse_part(data.get("train"), "train")
    x_test, y_test = _parse_part(data.get("test"), "test")
    return Dataset(x_train, y_train, x_test, y_test)


def _dirichlet(rng: random.Random, n: int, alpha: float) -> list[float]:
    draws = [rng.gammavariate(alpha, 1.0) for _ in range(n)]
    total = sum(draws)
    return [d / total for d in draws] if total > 0 else [1.0 / n] * n


def shard_indices(
    labels: Sequence[int], shards: int = SHARDS, *, seed: int = SHARD_SEED, alpha: float = ALPHA
) -> list[list[int]]:
    """Deal the training indices into ``shards`` disjoint, label-skewed shards.

    For each digit, the shards' shares come from a symmetric Dirichlet draw; draws that leave a
    shard with fewer than 20 images are repeated. Together the shards hold every index.
    """
    if shards < 1 or shards * 20 > len(labels):
        raise ValueError(f"cannot deal {len(labels)} images into {shards} shards of 20+")
    rng = random.Random(seed)
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(shards)]
        for label in sorted(by_label):
            indices = by_label[label][:]
            rng.shuffle(indices)
            start, cumulative = 0, 0.0
            shares = _dirichlet(rng, shards, alpha)
            for shard, share in enumerate(shares):
                cumulative += share
                end = len(indices) if shard == shards - 1 else round(cumulative * len(indices))
                parts[shard].extend(indices[start:end])
                start = end
        if min(len(part) for part in parts) >= 20:
            for part in parts:
                rng.shuffle(part)
            return parts
    raise ValueError("no shard split with 20+ images each in 1000 draws")  # pragma: no cover


def local_data(dataset: Dataset, device: int, shards: list[list[int]] | None = None) -> LocalData:
    """Device ``device``'s shard of the training set."""
    if device < 0:
        raise ValueError("device numbers start at 0")
    parts = shards if shards is not None else shard_indices(dataset.y_train)
    shard = device % len(parts)
    indices = parts[shard]
    return LocalData(
        shard, [dataset.x_train[i] for i in indices], [dataset.y_train[i] for i in indices]
    )


def zero_model() -> list[float]:
    return [0.0] * MODEL_LENGTH


def _check(vector: Sequence[float]) -> None:
    if len(vector) != MODEL_LENGTH:
        raise ValueError(f"a digits model has {MODEL_LENGTH} values, got {len(vector)}")


def _columns(vector: Sequence[float]) -> list[list[float]]:
    """The weights as one list of 64 per digit, then the biases as an 11th list."""
    cols = [list(vector[d : N_FEATURES * N_CLASSES : N_CLASSES]) for d in range(N_CLASSES)]
    cols.append(list(vector[N_FEATURES * N_CLASSES :]))
    return cols


def _logits(cols: list[list[float]], image: Image) -> list[float]:
    biases = cols[N_CLASSES]
    return [
        math.fsum(w * x for w, x in zip(cols[d], image, strict=True)) + biases[d]
        for d in range(N_CLASSES)
    ]


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def predict(vector: Sequence[float], images: Sequence[Image]) -> list[int]:
    _check(vector)
    cols = _columns(vector)
    result = []
    for image in images:
        logits = _logits(cols, image)
        result.append(max(range(N_CLASSES), key=logits.__getitem__))
    return result


def accuracy(vector: Sequence[float], images: Sequence[Image], labels: Sequence[int]) -> float:
    """The fraction of ``images`` the model labels correctly."""
    if not labels:
        return 0.0
    hits = sum(p == y for p, y in zip(predict(vector, images), labels, strict=True))
    return hits / len(labels)


def loss(vector: Sequence[float], images: Sequence[Image], labels: Sequence[int]) -> float:
    """Mean cross-entropy of the model on ``images``."""
    _check(vector)
    if not labels:
        return 0.0
    cols = _columns(vector)
    total = 0.0
    for image, label in zip(images, labels, strict=True):
        probabilities = _softmax(_logits(cols, image))
        total -= math.log(max(probabilities[label], 1e-300))
    return total / len(labels)


def train_epoch(
    vector: Sequence[float],
    images: Sequence[Image],
    labels: Sequence[int],
    *,
    rng: random.Random,
    batch_size: int = 16,
    learning_rate: float = 0.3,
) -> tuple[list[float], float]:
    """One epoch of mini-batch SGD on the cross-entropy from ``vector``.

    Returns the new vector and the mean training loss seen during the epoch (before each
    batch's step). The examples' defaults: a participant holding only a few digits moves the
    global model without forgetting the others.
    """
    _check(vector)
    cols = _columns(vector)
    order = list(range(len(labels)))
    rng.shuffle(order)
    seen_loss = 0.0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        step = learning_rate / len(batch)
        grads = [[0.0] * N_FEATURES for _ in range(N_CLASSES)]
        bias_grads = [0.0] * N_CLASSES
        for i in batch:
            image, label = images[i], labels[i]
            probabilities = _softmax(_logits(cols, image))
            seen_loss -= math.log(max(probabilities[label], 1e-300))
            probabilities[label] -= 1.0  # d(cross-entropy)/d(logits) = softmax - one_hot
            for d, error in enumerate(probabilities):
                if error:
                    grad = grads[d]
                    for p, x in enumerate(image):
                        if x:
                            grad[p] += error * x
                    bias_grads[d] += error
        for d in range(N_CLASSES):
            col, grad = cols[d], grads[d]
            for p in range(N_FEATURES):
                col[p] -= step * grad[p]
            cols[N_CLASSES][d] -= step * bias_grads[d]
    result = [0.0] * MODEL_LENGTH
    for d in range(N_CLASSES):
        result[d : N_FEATURES * N_CLASSES : N_CLASSES] = cols[d]
    result[N_FEATURES * N_CLASSES :] = cols[N_CLASSES]
    return result, seen_loss / max(len(labels), 1)
