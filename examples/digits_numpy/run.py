"""Federated softmax regression on the digits: N Xaynet participants in one process.

Start a coordinator for models of 650 parameters first (see README.md), then::

    python examples/digits_numpy/run.py --url http://127.0.0.1:8081 --participants 10 \\
        --rounds 10 --seed 0

Every participant is a :class:`xaynet.sdk.Participant` running in its own thread with its own
keys and its own slice of the training set (a label-skewed, non-IID split). When the coordinator
picks it as an updater, it trains the current global model on its slice and submits the result,
weighted by its number of samples; the coordinator only ever sees masked models. Each new global
model is evaluated on the held-out test set and printed. The script stops its participants
after ``--rounds`` global models.

The split and the local training are deterministic for a given ``--seed``; which participants
sum or update in a round depends on the coordinator's round seed and the participants' fresh
keys, so accuracies vary a little from run to run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import digits
import harness
import numpy as np

from xaynet.sdk import Participant, ParticipantHandle, ParticipantOptions, spawn_participant

FloatArray = digits.FloatArray
IntArray = digits.IntArray


class DigitsParticipant(Participant):
    """One device: its slice of the training set and a local trainer."""

    def __init__(
        self,
        x: FloatArray,
        y: IntArray,
        *,
        seed: Sequence[int],
        global_models: harness.GlobalModels,
        epochs: int,
        learning_rate: float,
    ) -> None:
        self.x, self.y = x, y
        self.rng = np.random.default_rng(seed)
        self.global_models = global_models
        self.epochs = epochs
        self.learning_rate = learning_rate

    def train_round(self, global_model: FloatArray | None) -> tuple[FloatArray, float]:
        # None until the coordinator publishes a first model: everyone starts from zeros.
        start = digits.zero_model() if global_model is None else global_model
        local = digits.train(
            start,
            self.x,
            self.y,
            rng=self.rng,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
        )
        # FedAvg: the weight is the number of local samples.
        return local, float(len(self.y))

    def on_new_global_model(self, model: FloatArray) -> None:
        self.global_models.offer(model)


def main(argv: Sequence[str] | None = None) -> int:
    args = harness.parse_args(
        argv, description=__doc__.split("\n\n")[0], epochs=1, learning_rate=0.3
    )
    harness.setup_logging(args.verbose)
    data = digits.load_dataset()
    try:
        partitions = digits.split_non_iid(
            data.y_train, args.participants, seed=args.seed, alpha=args.alpha
        )
    except ValueError as exc:  # e.g. too many participants for 1,347 images
        print(f"error: {exc}", file=sys.stderr)
        return 2
    harness.describe_split(data.y_train, partitions)
    global_models = harness.GlobalModels(lambda m: digits.accuracy(m, data.x_test, data.y_test))
    options = ParticipantOptions(
        # The same bound for everyone: no participant holds more than the whole training set.
        max_weight=float(len(data.y_train)),
        # A round for another model length is an error, not a silent skip.
        model_length=digits.MODEL_LENGTH,
        # Give up after 5 failed requests in a row (about 10 s without a coordinator).
        give_up_after=5,
    )
    print(f"\n{args.participants} participants -> {args.url}: waiting for {args.rounds} rounds")
    started = time.monotonic()
    handles: list[ParticipantHandle] = []
    try:
        for i, part in enumerate(partitions):
            handle = spawn_participant(
                args.url,
                DigitsParticipant,
                data.x_train[part],
                data.y_train[part],
                seed=(args.seed, i),
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
