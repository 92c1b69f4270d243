"""A small PyTorch MLP for the 8x8 digits, and its parameters as one flat vector.

Xaynet aggregates flat vectors of numbers, so a participant turns its model into one vector
before submitting it and loads the global model's vector back into a model:

* :func:`to_vector` -- ``torch.nn.utils.parameters_to_vector`` concatenates every parameter
  tensor, flattened, in the order of ``model.parameters()``;
* :func:`load_vector` -- ``torch.nn.utils.vector_to_parameters`` cuts a vector into pieces of
  the parameters' sizes and copies them back, in the same order.

Every participant and the coordinator must agree on that order and length, which a fixed
architecture guarantees. For this MLP (64 -> 32 -> 10, ReLU) the vector is::

    [0:2048]     hidden.weight, 32 x 64 (row-major: out x in)
    [2048:2080]  hidden.bias, 32
    [2080:2400]  output.weight, 10 x 32
    [2400:2410]  output.bias, 10

``MODEL_LENGTH = 2410``. The parameters are float32; the vector is float64 (what the SDK takes
and returns), which holds every float32 exactly, so ``to_vector`` then ``load_vector``
restores a model bit for bit. Buffers (e.g. batch-norm statistics) are not parameters: a model
with buffers would need them in the vector too; this one has none.

CPU only. Everything random takes an explicit ``torch.Generator``, so runs are reproducible and
participants in threads do not share the global RNG.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

__all__ = [
    "MLP",
    "N_FEATURES",
    "HIDDEN",
    "N_CLASSES",
    "MODEL_LENGTH",
    "make_model",
    "to_vector",
    "load_vector",
    "train",
    "accuracy",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_FEATURES = 64
HIDDEN = 32
N_CLASSES = 10
MODEL_LENGTH = (N_FEATURES * HIDDEN + HIDDEN) + (HIDDEN * N_CLASSES + N_CLASSES)  # 2410


class MLP(nn.Module):
    """64 pixels -> 32 ReLU units -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        # Registration order is parameter order, hence the vector's layout.
        self.hidden = nn.Linear(N_FEATURES, HIDDEN)
        self.output = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.output(torch.relu(self.hidden(x)))
        return logits


def make_model(seed: int | None = None) -> MLP:
    """The MLP; with a ``seed`` its initial weights are reproducible (PyTorch's default init).

    Federated averaging needs every participant to start from the same weights: averaging
    independently initialised networks averages unrelated hidden units. The examples start from
    the coordinator's global model, or from ``make_model(seed)`` with the run's shared seed.
    """
    model = MLP()
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        for layer in (model.hidden, model.output):
            # What nn.Linear.reset_parameters draws (its Kaiming-uniform init amounts to
            # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases), from our generator.
            bound = 1.0 / layer.in_features**0.5
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def to_vector(model: nn.Module) -> FloatArray:
    """All parameters of ``model`` as one float64 numpy vector (see the module docstring)."""
    with torch.no_grad():
        flat = parameters_to_vector(model.parameters())
    vector: FloatArray = flat.detach().cpu().numpy().astype(np.float64)
    return vector


def load_vector(model: nn.Module, vector: FloatArray) -> nn.Module:
    """Copy ``vector`` into the parameters of ``model`` (in place); returns ``model``."""
    values = np.asarray(vector, dtype=np.float64)
    expected = sum(p.numel() for p in model.parameters())
    if values.shape != (expected,):
        raise ValueError(f"the model has {expected} parameters, got shape {values.shape}")
    with torch.no_grad():
        vector_to_parameters(torch.from_numpy(values).to(torch.float32), model.parameters())
    return model


def train(
    model: nn.Module,
    x: FloatArray,
    y: IntArray,
    *,
    generator: torch.Generator,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 0.1,
) -> nn.Module:
    """Mini-batch SGD on the cross-entropy, in place, from the model's current weights."""
    features = torch.as_tensor(x, dtype=torch.float32)
    labels = torch.as_tensor(y, dtype=torch.int64)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(features[batch]), labels[batch])
            loss.backward()
            optimizer.step()
    return model


def accuracy(model: nn.Module, x: FloatArray, y: IntArray) -> float:
    """The fraction of ``x`` that ``model`` labels correctly."""
    model.eval()
    with torch.no_grad():
        predicted = model(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()
    return float(np.mean(predicted == y))
