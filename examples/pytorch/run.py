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
import time
from collections.abc import Sequence
from pathlib import Path

import mlp
import numpy as np
import torch

# The data, the split and the reporting come from the numpy example next door.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "digits_numpy"))
import digits
import harness

from xaynet.sdk import (
    Participant,
    ParticipantHandle,
    ParticipantOptions,
    spawn_participant,
)

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
    try:
        partitions = digits.split_non_iid(
            data.y_train, args.participants, seed=args.seed, alpha=args.alpha
        )
    except ValueError as exc:  # e.g. too many participants for 1,347 images
        print(f"error: {exc}", file=sys.stderr)
        return 2
    harness.describe_split(data.y_train, partitions)
    initial = mlp.to_vector(mlp.make_model(seed=args.seed))
    # Torch's first training step pays a one-off set-up (about a second here): pay it now, not
    # inside the first Update phase, which would close before the updaters are done.
    mlp.train(mlp.make_model(), data.x_train[:1], data.y_train[:1], generator=torch.Generator())
    evaluator = mlp.make_model()
    global_models = harness.GlobalModels(
        # GlobalModels calls this under its lock: one evaluator model suffices.
        lambda m: mlp.accuracy(mlp.load_vector(evaluator, m), data.x_test, data.y_test)
    )
    options = ParticipantOptions(
        # The same bound for everyone: no participant holds more than the whole training set.
        max_weight=float(len(data.y_train)),
        # A round for another model length is an error, not a silent skip.
        model_length=mlp.MODEL_LENGTH,
        # Give up after 5 failed requests in a row (about 10 s without a coordinator).
        give_up_after=5,
    )
    print(
        f"\nMLP {mlp.N_FEATURES}-{mlp.HIDDEN}-{mlp.N_CLASSES}: {mlp.MODEL_LENGTH} parameters; "
        f"{args.participants} participants -> {args.url}: waiting for {args.rounds} rounds"
    )
    started = time.monotonic()
    handles: list[ParticipantHandle] = []
    try:
        for i, part in enumerate(partitions):
            handle = spawn_participant(
                args.url,
                TorchParticipant,
                data.x_train[part],
                data.y_train[part],
                initial=initial,
                seed=int(np.random.SeedSequence((args.seed, i)).generate_state(1)[0]),
                global_models=global_models,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                options=options,
            )
            handles.append(handle)
        return harness.report(args, handles, global_models, started)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        harness.stop_all(handles)


if __name__ == "__main__":
    sys.exit(main())
