"""A whole PET round in memory: participants from ``xaynet.participant`` and a small coordinator.

The coordinator here is the simplest faithful one: it opens, verifies and checks every request
(round key, coordinator key, tag for the phase, task eligibility including the validity of an
updater's sum signature), builds the sum dict, aggregates masked models, transposes local seed
dicts into the global seed dict, counts mask votes and unmasks with the strictly most-voted mask.
A round without a summer or an updater fails and the next one starts with a chained seed, as the
original coordinator does.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from xaynet.crypto import EncryptKeyPair, SigningKeyPair
from xaynet.eligibility import verify_sum_eligibility, verify_update_eligibility
from xaynet.errors import RemoteProtocolError
from xaynet.mask import Aggregation, MaskConfigPair, MaskObject
from xaynet.message import (
    Message,
    Reassembler,
    Sum,
    Sum2,
    Tag,
    Update,
    open_message,
)
from xaynet.participant import Role, SumTask, UpdateTask, choose_role, sealed_requests
from xaynet.round import INITIAL_ROUND_SEED, RoundParameters, next_round_seed

__all__ = [
    "RoundFailedError",
    "RoundOutcome",
    "InMemoryCoordinator",
    "run_round",
    "f32",
    "weighted_mean",
    "quantization_bound",
]


class RoundFailedError(Exception):
    """The in-memory coordinator could not finish the round.

    ``restart`` is true when the role draw left a phase empty (no summer or no update): the
    original coordinator then simply starts the next round.
    """

    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


def f32(value: float) -> float:
    """``value`` rounded to the nearest binary32, as an F32 config sees it."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def weighted_mean(models: Sequence[Sequence[float]], scalars: Sequence[float]) -> list[Fraction]:
    """The exact scalar-weighted mean sum_j s_j w_j / sum_j s_j."""
    total = sum(Fraction(s) for s in scalars)
    return [
        sum(
            (Fraction(s) * Fraction(m[i]) for m, s in zip(models, scalars, strict=True)), Fraction()
        )
        / total
        for i in range(len(models[0]))
    ]


def quantization_bound(config: MaskConfigPair, count: int, scalar_sum: float, mean: float) -> float:
    """How far the unmasked value may be from the exact weighted mean (no clamping assumed).

    Each of the ``count`` encoded values (and scalars) is truncated down by less than 1/E, so the
    numerator V and denominator S lose a < N/E_vect and b < N/E_unit; then
    |(V - a)/(S - b) - V/S| <= (a + |V/S| b) / (S - b). Add a few ulps for the float result.
    """
    a = count / config.vect.exp_shift
    b = count / config.unit.exp_shift
    return (a + abs(mean) * b) / (scalar_sum - b) + 4 * abs(mean) * 2**-52 + 1e-300


@dataclass
class InMemoryCoordinator:
    """One round of a coordinator, fed sealed request bodies phase by phase."""

    params: RoundParameters
    round_keys: EncryptKeyPair
    phase: Tag = Tag.SUM
    sum_dict: dict[bytes, bytes] = field(default_factory=dict)
    seed_dict: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)
    updaters: set[bytes] = field(default_factory=set)
    votes: Counter[bytes] = field(default_factory=Counter)
    voters: set[bytes] = field(default_factory=set)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)
    aggregation: Aggregation = field(init=False)
    reassembler: Reassembler = field(init=False)

    def __post_init__(self) -> None:
        self.aggregation = Aggregation(self.params.mask_config, self.params.model_length)
        self.reassembler = Reassembler(
            max_bytes_per_participant=1 << 26,
            max_messages_per_participant=2,
            max_chunks_per_message=1 << 16,
            max_total_bytes=1 << 28,
        )

    def receive(self, body: bytes) -> None:
        """Handle one POST body; protocol violations are recorded as rejections."""
        try:
            message = Message.from_bytes(open_message(body, self.round_keys))
            if message.coordinator_pk != self.round_keys.public:
                raise RemoteProtocolError("message for another round key")
            if message.tag is not self.phase:
                raise RemoteProtocolError(
                    f"{message.tag.name} message in the {self.phase.name} phase"
                )
            whole = self.reassembler.add(message)
            if whole is not None:
                self._handle(whole)
        except RemoteProtocolError as err:
            self.rejected.append((body, str(err)))

    def _handle(self, message: Message) -> None:
        pk, payload, p = message.participant_pk, message.payload, self.params
        if isinstance(payload, Sum):
            if not verify_sum_eligibility(pk, p.seed, payload.sum_signature, p.sum_probability):
                raise RemoteProtocolError("not sum eligible")
            if pk in self.sum_dict:
                raise RemoteProtocolError("summer already registered")
            self.sum_dict[pk] = payload.ephm_pk
        elif isinstance(payload, Update):
            if not verify_update_eligibility(
                pk,
                p.seed,
                payload.sum_signature,
                payload.update_signature,
                p.sum_probability,
                p.update_probability,
            ):
                raise RemoteProtocolError("not update eligible")
            if set(payload.local_seed_dict) != set(self.sum_dict):
                raise RemoteProtocolError("local seed dict does not cover the sum dict")
            if pk in self.updaters:
                raise RemoteProtocolError("updater already submitted")
            self.aggregation.add(payload.masked_model)  # validates before changing anything
            self.updaters.add(pk)
            for summer_pk, sealed_seed in payload.local_seed_dict.items():
                self.seed_dict.setdefault(summer_pk, {})[pk] = sealed_seed
        elif isinstance(payload, Sum2):
            if not verify_sum_eligibility(pk, p.seed, payload.sum_signature, p.sum_probability):
                raise RemoteProtocolError("not sum eligible")
            if pk not in self.sum_dict or pk in self.voters:
                raise RemoteProtocolError("unknown summer or second vote")
            self.voters.add(pk)
            self.votes[payload.model_mask.to_bytes()] += 1
        else:  # pragma: no cover - the reassembler returns whole messages only
            raise RemoteProtocolError("unexpected payload")

    def next_phase(self) -> None:
        self.reassembler.clear()
        if self.phase is Tag.SUM and not self.sum_dict:
            raise RoundFailedError("no sum message", restart=True)
        if self.phase is Tag.UPDATE and not self.updaters:
            raise RoundFailedError("no update message", restart=True)
        self.phase = {Tag.SUM: Tag.UPDATE, Tag.UPDATE: Tag.SUM2}[self.phase]

    def unmask(self) -> list[float]:
        """Unmask with the strictly most-voted mask."""
        ranked = self.votes.most_common(2)
        if not ranked:
            raise RoundFailedError("no mask")
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            raise RoundFailedError("ambiguous masks")
        mask, _ = MaskObject.decode(ranked[0][0])
        return self.aggregation.unmask(mask)


@dataclass
class RoundOutcome:
    """What happened in the round that produced a global model."""

    params: RoundParameters
    global_model: list[float]
    summers: list[bytes]
    #: updater pk -> (model, scalar) of every Update the coordinator accepted
    submissions: dict[bytes, tuple[Sequence[float], float]]
    roles: dict[int, Role]
    rejected: list[tuple[bytes, str]]
    attempts: int


def run_round(
    n_participants: int,
    model_length: int,
    *,
    config: MaskConfigPair,
    models: Sequence[Sequence[float]],
    scalars: Sequence[float],
    p_sum: float,
    p_update: float,
    rng: random.Random,
    update_dropout: Callable[[int], bool] = lambda _i: False,
    sum2_dropout: Callable[[int], bool] = lambda _i: False,
    max_message_size: int | None = None,
    max_attempts: int = 50,
) -> RoundOutcome:
    """Play rounds until one completes and return it.

    Participant ``i`` uses ``models[i]`` and ``scalars[i]`` if it becomes an updater.
    ``update_dropout(i)``: updater ``i`` never sends its Update. ``sum2_dropout(i)``: summer
    ``i`` goes away after its Sum message. All randomness (keys, seeds, message ids) comes from
    ``rng``. A round that fails (no summer, no accepted update) is followed by the next round, as
    in the original coordinator; no mask or a mask tie is raised as :class:`RoundFailedError`.
    """
    identities = [SigningKeyPair.from_seed(rng.randbytes(32)) for _ in range(n_participants)]
    previous_seed = INITIAL_ROUND_SEED

    def send(message: Message, keys: SigningKeyPair, coordinator: InMemoryCoordinator) -> None:
        for body in sealed_requests(
            message, keys, max_message_size=max_message_size, message_id=rng.randrange(2**16)
        ):
            coordinator.receive(body)

    for attempt in range(1, max_attempts + 1):
        round_keys = EncryptKeyPair.from_seed(rng.randbytes(32))
        seed = next_round_seed(previous_seed, round_keys.secret, p_sum, p_update)
        previous_seed = seed
        params = RoundParameters(
            round_id=attempt,
            coordinator_pk=round_keys.public,
            sum_probability=p_sum,
            update_probability=p_update,
            seed=seed,
            mask_config=config,
            model_length=model_length,
        )
        coordinator = InMemoryCoordinator(params, round_keys)
        decisions = [choose_role(keys, params) for keys in identities]
        roles = {i: d.role for i, d in enumerate(decisions)}
        try:
            sum_tasks: dict[int, SumTask] = {}
            for i, decision in enumerate(decisions):
                if decision.role is Role.SUM:
                    task = SumTask(identities[i], params, decision, rng.randbytes(32))
                    sum_tasks[i] = task
                    send(task.sum_message(), identities[i], coordinator)
            coordinator.next_phase()

            sum_dict = dict(coordinator.sum_dict)  # what GET /sums would return
            submitted: dict[bytes, tuple[Sequence[float], float]] = {}
            for i, decision in enumerate(decisions):
                if decision.role is Role.UPDATE and not update_dropout(i):
                    update = UpdateTask(identities[i], params, decision)
                    message = update.update_message(
                        models[i], scalar=scalars[i], mask_seed=rng.randbytes(32), sum_dict=sum_dict
                    )
                    send(message, identities[i], coordinator)
                    submitted[identities[i].public] = (models[i], scalars[i])
            coordinator.next_phase()

            for i, task in sum_tasks.items():
                if not sum2_dropout(i):
                    column = coordinator.seed_dict[identities[i].public]  # GET /seeds?pk=
                    send(task.sum2_message(column), identities[i], coordinator)
            global_model = coordinator.unmask()
        except RoundFailedError as err:
            if not err.restart:
                raise
            continue
        accepted = {pk: submitted[pk] for pk in coordinator.updaters}
        return RoundOutcome(
            params=params,
            global_model=global_model,
            summers=list(coordinator.sum_dict),
            submissions=accepted,
            roles=roles,
            rejected=coordinator.rejected,
            attempts=attempt,
        )
    raise RoundFailedError(f"no round completed in {max_attempts} attempts")
