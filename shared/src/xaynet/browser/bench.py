"""A participant's tasks, timed one by one: the browser benchmark (``benchmarks/bench_browser.py``).

Pure Python, so the same functions run in the browser's worker (the ``bench`` command of
:mod:`xaynet.browser.worker`) and in CPython, and the figures compare one code on two runtimes.
Natively, ``mask`` and ``aggregate`` also run on the library's numpy path (``path="numpy"``).

Tasks (:data:`TASKS`), for a model of ``length`` values (d):

* ``train`` -- one epoch of local training from the zero model. For d = 650 (the demo model):
  :func:`xaynet.browser.digits.train_epoch` on device 0's shard of the digits training set, as
  a page's device does. For any other d there is no real task of that size, so a stand-in of
  the same kind (:func:`train_linear`): one epoch of mini-batch SGD on the logistic loss of a
  dense linear model with d weights (d - 1 features and a bias) over :data:`LINEAR_SAMPLES`
  synthetic samples in batches of :data:`LINEAR_BATCH`.
* ``mask`` -- :func:`xaynet.mask.mask_model` with the default mask config: quantize a model of
  d values in [-1, 1], weighted by ``samples / MAX_WEIGHT`` as the devices do, and add the
  mask a seed expands to (what :meth:`UpdateTask.masked_model
  <xaynet.participant.update.UpdateTask.masked_model>` does).
* ``seal`` -- the rest of :meth:`UpdateTask.update_message
  <xaynet.participant.update.UpdateTask.update_message>` and its sending: seal the mask seed to
  the summer, build the Update message around the masked model, sign it and seal it to the
  coordinator key as one body (:func:`~xaynet.participant.requests.sealed_requests`).
* ``seal_chunks`` -- the same split into sealed bodies of at most
  :data:`~xaynet.message.ORIGINAL_MAX_MESSAGE_SIZE` (4 kB) bytes, each signed and sealed: the
  original Xaynet's chunk size, for comparison (this SDK's participants send up to 1 MiB per
  request, so at these sizes they send one body, as ``seal`` does).
* ``upload`` -- ``POST /message`` of the sealed body through the participant's transport. The
  body is sealed to a random key, so the coordinator cannot open it and answers
  ``400 undecryptable``: this measures moving that many bytes, not the coordinator's work.
* ``upload_chunks`` -- the chunk bodies, one ``POST`` after another.
* ``aggregate`` -- a summer's Sum2 work for :data:`UPDATERS` updaters: open each sealed mask
  seed with the ephemeral key, derive its mask and add it up (the loop of
  :meth:`SumTask.model_mask <xaynet.participant.sum.SumTask.model_mask>`, with a choice of path).

Each task runs once untimed (imports, caches, the allocator's growth), then ``repeat`` times
timed with :func:`time.perf_counter`. Inputs are made by :func:`prepare` from a fixed seed and
are not part of any timing.
"""

from __future__ import annotations

import math
import operator
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from xaynet import crypto
from xaynet.browser import digits
from xaynet.errors import LocalProtocolError
from xaynet.mask import DEFAULT_MASK_CONFIG, Aggregation, MaskObject, Path, derive_mask, mask_model
from xaynet.message import ORIGINAL_MAX_MESSAGE_SIZE, Message, Update
from xaynet.participant.requests import sealed_requests
from xaynet.participant.role import Role, choose_role
from xaynet.participant.sum import SumTask
from xaynet.participant.transport import PostOutcome
from xaynet.participant.update import UpdateTask
from xaynet.round import RoundParameters

__all__ = [
    "TASKS",
    "UPDATERS",
    "LINEAR_SAMPLES",
    "LINEAR_BATCH",
    "MAX_LENGTH",
    "Poster",
    "Fixture",
    "prepare",
    "train",
    "train_linear",
    "mask",
    "seal",
    "seal_chunks",
    "upload",
    "upload_chunks",
    "aggregate",
    "run",
    "run_command",
]

TASKS = ("train", "mask", "seal", "seal_chunks", "upload", "upload_chunks", "aggregate")
#: Updaters whose masks a summer aggregates in ``aggregate``.
UPDATERS = 100
#: The linear stand-in's synthetic samples and mini-batch size.
LINEAR_SAMPLES = 32
LINEAR_BATCH = 8
#: The largest d the command takes: a worker holds the inputs several times over.
MAX_LENGTH = 2_000_000
MAX_REPEAT = 50
_SEED = 20240601


class Poster(Protocol):
    """What ``upload`` needs of a transport (``FetchTransport``, ``HttpTransport``)."""

    async def post_message(self, body: bytes) -> PostOutcome: ...


@dataclass
class Fixture:
    """The inputs of every task for one model length (see :func:`prepare`)."""

    length: int
    #: ``"digits"`` or ``"linear"``: what ``train`` runs
    training: str
    train_x: list[list[float]]
    train_y: list[int]
    #: the model ``mask`` masks: a list of floats (natively, a numpy array for the numpy path)
    model: Any
    scalar: Fraction
    params: RoundParameters
    updater: UpdateTask
    summer: SumTask
    mask_seed: bytes
    masked: MaskObject
    body: bytes
    chunk_bodies: list[bytes]
    #: updater public key -> its mask seed sealed to the summer's ephemeral key
    encrypted_seeds: dict[bytes, bytes]


def prepare(
    length: int, *, dataset: digits.Dataset | None = None, updaters: int = UPDATERS
) -> Fixture:
    """Inputs for d = ``length``, drawn from a fixed seed.

    ``dataset`` (the parsed digits data) is needed for d = 650, where ``train`` is the demo's
    real training; any other d trains the linear stand-in.
    """
    _check_int("length", length, 1, MAX_LENGTH)
    _check_int("updaters", updaters, 1, 10_000)
    rng = random.Random(_SEED)
    if length == digits.MODEL_LENGTH:
        if dataset is None:
            raise LocalProtocolError("d = 650 trains on the digits: pass the data set")
        shard = digits.local_data(dataset, 0)
        training, train_x, train_y = "digits", shard.x, shard.y
    else:
        training = "linear"
        train_x, train_y = _linear_data(length - 1, rng)
    coordinator = crypto.EncryptKeyPair.from_seed(rng.randbytes(32))
    params = RoundParameters(
        round_id=1,
        coordinator_pk=coordinator.public,
        sum_probability=0.5,
        update_probability=1.0,
        seed=rng.randbytes(32),
        mask_config=DEFAULT_MASK_CONFIG,
        model_length=length,
    )
    updater, summer = _roles(params, rng)
    encrypted_seeds = {
        rng.randbytes(32): crypto.seal(summer.ephemeral_pk, rng.randbytes(32))
        for _ in range(updaters)
    }
    model = [rng.uniform(-1.0, 1.0) for _ in range(length)]
    scalar = Fraction(len(train_y), digits.MAX_WEIGHT)
    mask_seed = rng.randbytes(32)
    masked = mask_model(mask_seed, model, config=params.mask_config, scalar=scalar, path="pure")
    fixture = Fixture(
        length=length,
        training=training,
        train_x=train_x,
        train_y=train_y,
        model=model,
        scalar=scalar,
        params=params,
        updater=updater,
        summer=summer,
        mask_seed=mask_seed,
        masked=masked,
        body=b"",  # made just below, from the fixture itself
        chunk_bodies=[],
        encrypted_seeds=encrypted_seeds,
    )
    fixture.body = seal(fixture)
    fixture.chunk_bodies = seal_chunks(fixture)
    return fixture


def _linear_data(features: int, rng: random.Random) -> tuple[list[list[float]], list[int]]:
    # Every sample is a rotation of one random vector: distinct samples at the memory cost of
    # pointers (the float objects are shared), which matters at 32 x 100,000 inside wasm.
    base = [rng.uniform(-1.0, 1.0) for _ in range(features)]
    samples = []
    for k in range(LINEAR_SAMPLES):
        shift = (k * 7919) % features if features else 0
        samples.append(base[shift:] + base[:shift])
    labels = [rng.randrange(2) for _ in range(LINEAR_SAMPLES)]
    return samples, labels


def _roles(params: RoundParameters, rng: random.Random) -> tuple[UpdateTask, SumTask]:
    """An updater and a summer of the round: the first keys of the seeded draw to get each."""
    updater: UpdateTask | None = None
    summer: SumTask | None = None
    for _ in range(200):  # each draw is a summer with p = 0.5: 200 misses never happen
        keys = crypto.SigningKeyPair.from_seed(rng.randbytes(32))
        decision = choose_role(keys, params)
        if decision.role is Role.UPDATE and updater is None:
            updater = UpdateTask(keys, params, decision)
        elif decision.role is Role.SUM and summer is None:
            summer = SumTask(keys, params, decision, rng.randbytes(32))
        if updater is not None and summer is not None:
            return updater, summer
    raise LocalProtocolError("no updater and summer in 200 key draws")  # pragma: no cover


# -- the tasks ------------------------------------------------------------------------------------


def train(fixture: Fixture) -> tuple[list[float], float]:
    """One epoch from the zero model (see the module docstring); the model and mean loss."""
    rng = random.Random(_SEED)  # the same batch order every time
    if fixture.training == "digits":
        return digits.train_epoch(digits.zero_model(), fixture.train_x, fixture.train_y, rng=rng)
    return train_linear([0.0] * fixture.length, fixture.train_x, fixture.train_y, rng=rng)


def train_linear(
    weights: Sequence[float],
    samples: Sequence[Sequence[float]],
    labels: Sequence[int],
    *,
    rng: random.Random,
    batch_size: int = LINEAR_BATCH,
    learning_rate: float = 0.1,
) -> tuple[list[float], float]:
    """One epoch of mini-batch SGD on the logistic loss; ``weights[-1]`` is the bias.

    Returns the new weights and the mean loss seen during the epoch (before each batch's step).
    """
    w, bias = list(weights[:-1]), weights[-1]
    order = list(range(len(labels)))
    rng.shuffle(order)
    seen_loss = 0.0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        grad = [0.0] * len(w)
        grad_bias = 0.0
        for i in batch:
            x, y = samples[i], labels[i]
            z = sum(map(operator.mul, w, x)) + bias
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            seen_loss -= math.log(max(p if y else 1.0 - p, 1e-300))
            error = p - y  # d(logistic loss)/dz
            grad = [g + error * xi for g, xi in zip(grad, x, strict=True)]
            grad_bias += error
        step = learning_rate / len(batch)
        w = [wi - step * g for wi, g in zip(w, grad, strict=True)]
        bias -= step * grad_bias
    w.append(bias)
    return w, seen_loss / max(len(labels), 1)


def mask(fixture: Fixture, path: Path = "pure") -> MaskObject:
    """The model masked with the default config (the seed is reused: inputs, not a protocol)."""
    return mask_model(
        fixture.mask_seed,
        fixture.model,
        config=fixture.params.mask_config,
        scalar=fixture.scalar,
        path=path,
    )


def _update_message(fixture: Fixture) -> Message:
    task = fixture.updater
    sum_dict = {fixture.summer.keys.public: fixture.summer.ephemeral_pk}
    seed_dict = UpdateTask.local_seed_dict(fixture.mask_seed, sum_dict)
    update_sig = task.decision.update_signature
    if update_sig is None:  # pragma: no cover - RoleDecision guarantees it for updaters
        raise LocalProtocolError("an update decision carries an update signature")
    payload = Update(task.decision.sum_signature, update_sig, fixture.masked, seed_dict)
    return Message(task.keys.public, fixture.params.coordinator_pk, payload)


def seal(fixture: Fixture) -> bytes:
    """The Update message, signed and sealed to the coordinator key as one body."""
    (body,) = sealed_requests(
        _update_message(fixture), fixture.updater.keys, max_message_size=None, message_id=0
    )
    return body


def seal_chunks(fixture: Fixture) -> list[bytes]:
    """The Update message in sealed chunks of at most ``ORIGINAL_MAX_MESSAGE_SIZE`` bytes."""
    return sealed_requests(
        _update_message(fixture),
        fixture.updater.keys,
        max_message_size=ORIGINAL_MAX_MESSAGE_SIZE,
        message_id=1,
    )


async def upload(fixture: Fixture, poster: Poster) -> PostOutcome:
    """``POST /message`` of the sealed body (the coordinator cannot open it; see above)."""
    return await poster.post_message(fixture.body)


async def upload_chunks(fixture: Fixture, poster: Poster) -> PostOutcome:
    """Every chunk body, one after another; the answer to the last one."""
    outcome = PostOutcome(0, "none")
    for body in fixture.chunk_bodies:
        outcome = await poster.post_message(body)
    return outcome


def aggregate(fixture: Fixture, path: Path = "pure") -> MaskObject:
    """A summer's mask for the updaters' sealed seeds (``SumTask.model_mask``'s loop)."""
    params = fixture.params
    config, length = params.mask_config, params.model_length
    keys = fixture.summer.ephemeral_keys
    aggregation = Aggregation(config, length, path=path)
    for updater_pk in sorted(fixture.encrypted_seeds):
        seed = keys.open(fixture.encrypted_seeds[updater_pk])
        aggregation.add(derive_mask(seed, config=config, length=length, path=path))
    return aggregation.result()


# -- running them ---------------------------------------------------------------------------------


async def run(
    fixture: Fixture,
    tasks: Sequence[str] = TASKS,
    *,
    repeat: int = 3,
    path: Path = "pure",
    poster: Poster | None = None,
) -> dict[str, Any]:
    """Time ``tasks`` on ``fixture``: one untimed run, then ``repeat`` timed runs each.

    Answers a JSON-ready dict: ``seconds`` (task -> the timed runs), ``answers`` (upload task ->
    the coordinator's answers, ``"400 undecryptable"``), the runtime and the sizes involved.
    The upload tasks need ``poster``.
    """
    _check_tasks(tasks)
    _check_int("repeat", repeat, 1, MAX_REPEAT)
    seconds: dict[str, list[float]] = {}
    answers: dict[str, list[str]] = {}
    for name in tasks:
        call = _runner(fixture, name, path, poster)
        await call()
        samples, seen = [], []
        for _ in range(repeat):
            began = time.perf_counter()
            result = await call()
            samples.append(time.perf_counter() - began)
            if isinstance(result, PostOutcome):
                seen.append(f"{result.status} {result.reason}")
        seconds[name] = samples
        if seen:
            answers[name] = sorted(set(seen))
    return {
        "runtime": _runtime(),
        "crypto": crypto.get_backend().name,
        "length": fixture.length,
        "training": fixture.training,
        "path": path,
        "repeat": repeat,
        "updaters": len(fixture.encrypted_seeds),
        "body_bytes": len(fixture.body),
        "chunks": len(fixture.chunk_bodies),
        "chunk_bytes": sum(map(len, fixture.chunk_bodies)),
        "seconds": seconds,
        "answers": answers,
    }


def _runner(
    fixture: Fixture, name: str, path: Path, poster: Poster | None
) -> Callable[[], Awaitable[object]]:
    if name in ("upload", "upload_chunks"):
        if poster is None:
            raise LocalProtocolError(f"{name} needs a transport to post with")
        send = upload if name == "upload" else upload_chunks
        target: Poster = poster

        async def post() -> object:
            return await send(fixture, target)

        return post
    work: Callable[[], object] = {
        "train": lambda: train(fixture),
        "mask": lambda: mask(fixture, path),
        "seal": lambda: seal(fixture),
        "seal_chunks": lambda: seal_chunks(fixture),
        "aggregate": lambda: aggregate(fixture, path),
    }[name]

    async def compute() -> object:
        return work()

    return compute


async def run_command(
    args: Mapping[str, Any], *, dataset: digits.Dataset | None, poster: Poster | None
) -> dict[str, Any]:
    """The worker's ``bench`` command: ``{"length": d, "repeat": n, "tasks": [...]}``.

    ``tasks`` defaults to every task, ``repeat`` to 3; see :func:`run` for the answer.
    """
    length = _check_int("length", args.get("length"), 1, MAX_LENGTH)
    repeat = _check_int("repeat", args.get("repeat", 3), 1, MAX_REPEAT)
    tasks = args.get("tasks", list(TASKS))
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise LocalProtocolError("tasks: expected a list of task names")
    _check_tasks(tasks)
    fixture = prepare(length, dataset=dataset)
    return await run(fixture, tasks, repeat=repeat, path="pure", poster=poster)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return value


def _check_tasks(tasks: Sequence[str]) -> None:
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise LocalProtocolError(f"unknown tasks {unknown}: choose from {', '.join(TASKS)}")


def _runtime() -> str:
    version = sys.version.split()[0]
    return f"Pyodide (Python {version})" if sys.platform == "emscripten" else f"CPython {version}"
