"""What the two digits examples share around the SDK: command line, the split, the record of
global models, spawning the participants and the report loop. What differs -- the participant
class and its training -- is in each example's ``run.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import digits
import numpy as np

from xaynet.sdk import Participant, ParticipantHandle, ParticipantOptions, spawn_participant

FloatArray = digits.FloatArray
IntArray = digits.IntArray


def parse_args(
    argv: Sequence[str] | None,
    *,
    description: str,
    epochs: int,
    learning_rate: float,
) -> argparse.Namespace:
    """The common command line; ``epochs`` and ``learning_rate`` are the example's defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default="http://127.0.0.1:8081", help="coordinator URL")
    parser.add_argument("--participants", type=int, default=10, help="number of participants")
    parser.add_argument("--rounds", type=int, default=10, help="global models to wait for")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    parser.add_argument(
        "--alpha",
        type=float,
        default=digits.DEFAULT_ALPHA,
        help="Dirichlet concentration of the non-IID split (smaller: more skewed)",
    )
    parser.add_argument("--epochs", type=int, default=epochs, help="local epochs per round")
    parser.add_argument(
        "--learning-rate", type=float, default=learning_rate, help="local SGD step size"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (seconds)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the protocol steps and retries"
    )
    args = parser.parse_args(argv)
    if args.participants < 1 or args.rounds < 1 or args.epochs < 1:
        parser.error("--participants, --rounds and --epochs must be positive")
    return args


def describe_split(y: IntArray, partitions: Sequence[IntArray]) -> None:
    """Print each participant's number of samples and its three most frequent digits."""
    print("participant  samples  its most frequent digits")
    for i, part in enumerate(partitions):
        counts = np.bincount(y[part], minlength=digits.N_CLASSES)
        top = np.argsort(counts, kind="stable")[::-1][:3]
        shares = "  ".join(f"{d}: {counts[d] / len(part):4.0%}" for d in top)
        print(f"{i:>11}  {len(part):>7}  {shares}")


class GlobalModels:
    """The global models that the participants see, each evaluated once, in order of arrival.

    Every participant fetches every new global model, so :meth:`offer` is called up to N times
    per round, from N threads; the first call for a model evaluates it.
    """

    def __init__(self, evaluate: Callable[[FloatArray], float]) -> None:
        self._evaluate = evaluate
        self._seen: set[bytes] = set()
        self._changed = threading.Condition()
        #: test accuracy of each global model, in order
        self.accuracies: list[float] = []

    def offer(self, model: FloatArray) -> None:
        key = hashlib.sha256(np.ascontiguousarray(model, dtype=np.float64).tobytes()).digest()
        with self._changed:
            if key in self._seen:
                return
            self._seen.add(key)
            self.accuracies.append(self._evaluate(model))
            self._changed.notify_all()

    def wait(self, count: int, timeout: float) -> list[float]:
        """The accuracies once there are more than ``count`` (the ones so far after timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.accuracies) > count, timeout)
            return list(self.accuracies)


def report(
    args: argparse.Namespace,
    handles: Sequence[ParticipantHandle],
    global_models: GlobalModels,
    started: float,
) -> int:
    """Print each global model's test accuracy; 0 after ``args.rounds`` models, 1 on failure."""
    deadline = started + args.timeout
    printed = 0
    while printed < args.rounds:
        accuracies = global_models.wait(printed, timeout=0.5)
        for accuracy in accuracies[printed : args.rounds]:
            printed += 1
            elapsed = time.monotonic() - started
            print(f"round {printed:>2}  test accuracy {accuracy:.3f}  ({elapsed:5.1f} s)")
            sys.stdout.flush()
        failed = [h for h in handles if not h.running and h.error is not None]
        if failed:
            print(f"error: a participant stopped: {failed[0].error}", file=sys.stderr)
            return 1
        if printed < args.rounds and time.monotonic() > deadline:
            print(f"error: {printed} global models in {args.timeout} s", file=sys.stderr)
            return 1
    return 0


def setup_logging(verbose: bool) -> None:
    """Errors only (the SDK logs each retry as a warning, for every participant); ``-v``: all."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def stop_all(handles: Sequence[ParticipantHandle]) -> None:
    """Stop every participant and wait for its thread."""
    for handle in handles:
        # An error that stopped a participant is logged by the SDK and reported by report().
        with contextlib.suppress(Exception):
            handle.stop()


def run_participants(
    args: argparse.Namespace,
    data: digits.Dataset,
    participant: type[Participant],
    *,
    model_length: int,
    evaluate: Callable[[FloatArray], float],
    extra: Callable[[int], Mapping[str, Any]],
    banner: str = "",
) -> int:
    """Split the training set, spawn one ``participant`` per part, report until ``args.rounds``
    global models; the exit status (2: the split is impossible).

    ``participant`` is built with its slice ``(x, y)``, ``global_models``, ``epochs``,
    ``learning_rate`` and what ``extra(i)`` adds for participant ``i``.
    """
    try:
        partitions = digits.split_non_iid(
            data.y_train, args.participants, seed=args.seed, alpha=args.alpha
        )
    except ValueError as exc:  # e.g. too many participants for 1,347 images
        print(f"error: {exc}", file=sys.stderr)
        return 2
    describe_split(data.y_train, partitions)
    global_models = GlobalModels(evaluate)
    options = ParticipantOptions(
        # The same bound for everyone: no participant holds more than the whole training set.
        max_weight=float(len(data.y_train)),
        # A round for another model length is an error, not a silent skip.
        model_length=model_length,
        # Give up after 5 failed requests in a row (about 10 s without a coordinator).
        give_up_after=5,
    )
    waiting = f"waiting for {args.rounds} rounds"
    print(f"\n{banner}{args.participants} participants -> {args.url}: {waiting}")
    started = time.monotonic()
    handles: list[ParticipantHandle] = []
    try:
        for i, part in enumerate(partitions):
            handle = spawn_participant(
                args.url,
                participant,
                data.x_train[part],
                data.y_train[part],
                global_models=global_models,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                options=options,
                **extra(i),
            )
            handles.append(handle)
        return report(args, handles, global_models, started)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_all(handles)
