"""Federated training of a PyTorch MLP on the digits: N Xaynet participants in one process.

Start a coordinator for models of 2,410 parameters first (see README.md), then::

    python examples/pytorch/run.py --url http://127.0.0.1:8081 --participants 10 \\
        --rounds 10 --seed 0

The same task, data and non-IID split as examples/digits_numpy, with a small MLP (mlp.py)
instead of softmax regression. What changes is the participant: it keeps a ``torch.nn.Module``,
loads each global model's flat vector into it, trains it, and returns its parameters as a flat
vector again (``mlp.load_vector`` / ``mlp.to_vector``).

All participants start from the same initial weights, drawn from ``--seed``: federated
averaging of differently initialised networks would average unrelated hidden units. CPU only,
one torch thread: ten participants train in parallel threads anyway.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import mlp
import numpy as np
import torch

# The data, the split and the reporting come from the numpy example next door.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "digits_numpy"))
import digits
import harness

from xaynet.sdk import Participant

FloatArray = mlp.FloatArray
IntArray = mlp.IntArray


class TorchParticipant(Participant):
    """One device: its slice of the training set and its own copy of the MLP."""

    def __init__(
        self,
        x: FloatArray,
        y: IntArray,
        *,
        initial: FloatArray,
        seed: int,
        global_models: harness.GlobalModels,
        epochs: int,
        learning_rate: float,
    ) -> None:
        self.x, self.y = x, y
        self.initial = initial
        self.model = mlp.make_model()
        # Its own generator: the global torch RNG would be shared by all participant threads.
        self.generator = torch.Generator().manual_seed(seed)
        self.global_models = global_models
        self.epochs = epochs
        self.learning_rate = learning_rate

    def train_round(self, global_model: FloatArray | None) -> tuple[FloatArray, float]:
        # Flat vector -> model: the global model, or the shared initial weights before it.
        mlp.load_vector(self.model, self.initial if global_model is None else global_model)
        mlp.train(
            self.model,
            self.x,
            self.y,
            generator=self.generator,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
        )
        # Model -> flat vector, weighted by the number of local samples (FedAvg).
        return mlp.to_vector(self.model), float(len(self.y))

    def on_new_global_model(self, model: FloatArray) -> None:
        self.global_models.offer(model)


def main(argv: Sequence[str] | None = None) -> int:
    args = harness.parse_args(
        argv, description=__doc__.split("\n\n")[0], epochs=2, learning_rate=0.3
    )
    harness.setup_logging(args.verbose)
    torch.set_num_threads(1)
    data = digits.load_dataset()
    initial = mlp.to_vector(mlp.make_model(seed=args.seed))
    # Torch's first training step pays a one-off set-up (about a second here): pay it now, not
    # inside the first Update phase, which would close before the updaters are done.
    mlp.train(mlp.make_model(), data.x_train[:1], data.y_train[:1], generator=torch.Generator())
    evaluator = mlp.make_model()
    return harness.run_participants(
        args,
        data,
        TorchParticipant,
        model_length=mlp.MODEL_LENGTH,
        # GlobalModels calls this under its lock: one evaluator model suffices.
        evaluate=lambda m: mlp.accuracy(mlp.load_vector(evaluator, m), data.x_test, data.y_test),
        extra=lambda i: {
            "initial": initial,
            "seed": int(np.random.SeedSequence((args.seed, i)).generate_state(1)[0]),
        },
        banner=f"MLP {mlp.N_FEATURES}-{mlp.HIDDEN}-{mlp.N_CLASSES}: "
        f"{mlp.MODEL_LENGTH} parameters; ",
    )


if __name__ == "__main__":
    sys.exit(main())
