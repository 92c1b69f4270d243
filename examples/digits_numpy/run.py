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
from collections.abc import Sequence

import digits
import harness
import numpy as np

from xaynet.sdk import Participant

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
    return harness.run_participants(
        args,
        data,
        DigitsParticipant,
        model_length=digits.MODEL_LENGTH,
        evaluate=lambda m: digits.accuracy(m, data.x_test, data.y_test),
        extra=lambda i: {"seed": (args.seed, i)},
    )


if __name__ == "__main__":
    sys.exit(main())
