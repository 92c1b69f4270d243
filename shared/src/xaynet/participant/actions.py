"""What the participant state machine asks for, what it is told, and what it reports.

* :class:`Request` -- returned by ``ParticipantMachine.next_request()``: an I/O request
  (:class:`FetchParams`, :class:`FetchSums`, :class:`FetchSeeds`, :class:`Post`), the app's local
  model (:class:`NeedModel`), local CPU work (:class:`Compute`) or a pause (:class:`Wait`).
* :class:`Response` -- passed to ``ParticipantMachine.receive()``: the outcome of a request.
* :class:`Event` -- returned by the machine's methods: what happened, for the app and its logs.

All are frozen dataclasses; responses check their field types, since drivers build them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from xaynet.errors import LocalProtocolError
from xaynet.participant.role import Role
from xaynet.round import RoundParameters

__all__ = [
    "State",
    "Task",
    "WaitReason",
    # requests
    "Request",
    "FetchParams",
    "FetchSums",
    "FetchSeeds",
    "Post",
    "NeedModel",
    "Compute",
    "Wait",
    # responses
    "Response",
    "ParamsReceived",
    "SumsReceived",
    "SeedsReceived",
    "PostResult",
    "TransportFailed",
    "Waited",
    "ModelAnnounced",
    # events
    "Event",
    "RoundStarted",
    "RoleTaken",
    "GlobalModelAvailable",
    "MessageSent",
    "MessageAccepted",
    "MessageRejected",
    "TaskAbandoned",
    "TaskFailed",
    "Retrying",
    "RoundUnsupported",
    "check_key_map",
]

_KEY_LENGTH = 32


class State(enum.Enum):
    """Where the participant is in the current round."""

    AWAITING = "awaiting"
    NEW_ROUND = "new_round"
    SUM = "sum"
    SENDING_SUM = "sending_sum"
    SUM2 = "sum2"
    SENDING_SUM2 = "sending_sum2"
    UPDATE = "update"
    SENDING_UPDATE = "sending_update"


class Task(enum.Enum):
    """The message a task sends."""

    SUM = "sum"
    UPDATE = "update"
    SUM2 = "sum2"


class WaitReason(enum.Enum):
    """Why the machine asks the driver to wait."""

    #: the coordinator has no round yet
    NO_ROUND = "no_round"
    #: nothing to do in this round: wait for the next one
    NEXT_ROUND = "next_round"
    #: the sum dict is not published yet (Update phase not reached)
    SUMS = "sums"
    #: this summer's seeds are not published yet (Sum2 phase not reached)
    SEEDS = "seeds"
    #: the app has no local model yet
    MODEL = "model"
    #: the coordinator asked to send again later (503 storage_unavailable, shutting_down, ...)
    RETRY = "retry"
    #: a request failed in the transport
    TRANSPORT = "transport"


# -- requests: what the driver must do --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """Base class of what :meth:`ParticipantMachine.next_request` asks for."""

    name: ClassVar[str] = "request"


@dataclass(frozen=True, slots=True)
class FetchParams(Request):
    """``GET /params`` (with ``If-None-Match: etag`` when given); answer with ParamsReceived."""

    name: ClassVar[str] = "params"
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class FetchSums(Request):
    """``GET /sums``; answer with :class:`SumsReceived`."""

    name: ClassVar[str] = "sums"


@dataclass(frozen=True, slots=True)
class FetchSeeds(Request):
    """``GET /seeds?pk=<summer_pk hex>``; answer with :class:`SeedsReceived`."""

    name: ClassVar[str] = "seeds"
    summer_pk: bytes


@dataclass(frozen=True, slots=True)
class Post(Request):
    """``POST /message`` with ``body``, part ``part`` of ``parts``; answer with PostResult."""

    name: ClassVar[str] = "post"
    body: bytes = field(repr=False)
    task: Task
    part: int
    parts: int

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True, slots=True)
class NeedModel(Request):
    """The participant updates in this round: the app must provide its local model.

    Answer with :meth:`ParticipantMachine.set_model`, :meth:`~ParticipantMachine.model_unavailable`
    or :meth:`~ParticipantMachine.decline_task`. ``params.model_length`` and
    ``params.mask_config.vect.data_type`` say what the model must look like.
    """

    name: ClassVar[str] = "model"
    params: RoundParameters


@dataclass(frozen=True, slots=True)
class Compute(Request):
    """Local work (role selection, key generation, masking, mask aggregation): call
    :meth:`ParticipantMachine.compute`, possibly in a worker thread. ``state`` says which."""

    name: ClassVar[str] = "compute"
    state: State


@dataclass(frozen=True, slots=True)
class Wait(Request):
    """Nothing to do now: wait (``attempt`` counts the waits without progress, for a backoff),
    then answer with :class:`Waited`."""

    name: ClassVar[str] = "wait"
    reason: WaitReason
    attempt: int


# -- responses: what the driver reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """Base class of what :meth:`ParticipantMachine.receive` takes."""


@dataclass(frozen=True, slots=True)
class ParamsReceived(Response):
    """The answer to :class:`FetchParams`: ``params`` is ``None`` for 304 (not modified) and 204
    (no round yet)."""

    params: RoundParameters | None
    etag: str | None = None

    def __post_init__(self) -> None:
        if self.params is not None and not isinstance(self.params, RoundParameters):
            raise LocalProtocolError("ParamsReceived.params must be RoundParameters or None")
        if self.etag is not None and not isinstance(self.etag, str):
            raise LocalProtocolError("ParamsReceived.etag must be a string or None")


def check_key_map(value: Mapping[bytes, bytes] | None, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{what} must be a mapping of bytes or None")
    for key, item in value.items():
        if not isinstance(key, bytes) or len(key) != _KEY_LENGTH:
            raise LocalProtocolError(f"{what}: keys are {_KEY_LENGTH}-byte public keys")
        if not isinstance(item, bytes):
            raise LocalProtocolError(f"{what}: values are bytes")


@dataclass(frozen=True, slots=True)
class SumsReceived(Response):
    """The answer to :class:`FetchSums`: summer pk -> ephemeral pk, ``None`` for 204."""

    sums: Mapping[bytes, bytes] | None

    def __post_init__(self) -> None:
        check_key_map(self.sums, "SumsReceived.sums")


@dataclass(frozen=True, slots=True)
class SeedsReceived(Response):
    """The answer to :class:`FetchSeeds`: updater pk -> sealed seed, ``None`` for 204."""

    seeds: Mapping[bytes, bytes] | None

    def __post_init__(self) -> None:
        check_key_map(self.seeds, "SeedsReceived.seeds")


@dataclass(frozen=True, slots=True)
class PostResult(Response):
    """The answer to :class:`Post`: HTTP status and the coordinator's reason word."""

    status: int
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise LocalProtocolError("PostResult.status must be an int")
        if not isinstance(self.reason, str) or not isinstance(self.detail, str):
            raise LocalProtocolError("PostResult.reason and detail must be strings")


@dataclass(frozen=True, slots=True)
class TransportFailed(Response):
    """The request got no usable answer (network error, timeout, 5xx): retry after a wait."""

    error: str

    def __post_init__(self) -> None:
        if not isinstance(self.error, str):
            raise LocalProtocolError("TransportFailed.error must be a string")


@dataclass(frozen=True, slots=True)
class Waited(Response):
    """The answer to :class:`Wait`: the wait is over (time passed or an event arrived)."""


@dataclass(frozen=True, slots=True)
class ModelAnnounced(Response):
    """The coordinator announced a new global model (the ``model`` event); may come anytime."""

    round_id: int | None = None


# -- events: what happened, for the app ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of what the machine reports to the app."""


@dataclass(frozen=True, slots=True)
class RoundStarted(Event):
    """New round parameters arrived."""

    round_id: int
    params: RoundParameters = field(repr=False)


@dataclass(frozen=True, slots=True)
class RoleTaken(Event):
    """The participant's role in the round (``Role.NONE``: no task)."""

    round_id: int
    role: Role


@dataclass(frozen=True, slots=True)
class GlobalModelAvailable(Event):
    """A new global model may be available: ``GET /model``.

    ``round_id`` is the round that produced it when announced, ``None`` when only a new round
    suggests it (the previous round may have failed, in which case the model did not change).
    """

    round_id: int | None = None


@dataclass(frozen=True, slots=True)
class MessageSent(Event):
    """One request body (a whole message, or chunk ``part`` of ``parts``) got a 2xx answer."""

    round_id: int
    task: Task
    part: int
    parts: int
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class MessageAccepted(Event):
    """The coordinator took the message: ``accepted`` (or ``already_submitted``)."""

    round_id: int
    task: Task
    parts: int
    #: sealed bytes sent for this message, chunks included
    size: int
    reason: str = "accepted"


@dataclass(frozen=True, slots=True)
class MessageRejected(Event):
    """The coordinator refused the message for good (followed by TaskAbandoned or TaskFailed)."""

    round_id: int
    task: Task
    status: int
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TaskAbandoned(Event):
    """The task ended without result for a normal reason: ``new_round``, ``declined``, or the
    reason word of a POST that came too late (``wrong_phase``, ``phase_full``, ...)."""

    round_id: int
    task: Task
    reason: str


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    """The task failed: the coordinator rejected the message (``reason`` is its word, e.g.
    ``not_eligible``, ``too_large``) or the round's data was unusable (``invalid_seeds``,
    ``invalid_sums``). Something is wrong with this participant or the coordinator."""

    round_id: int
    task: Task
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Retrying(Event):
    """A request failed or the coordinator was busy; it is repeated after a wait."""

    round_id: int | None
    request: str
    detail: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RoundUnsupported(Event):
    """The round's configuration does not fit this participant (e.g. another model length)."""

    round_id: int
    reason: str


# -- the machine ----------------------------------------------------------------------------------
