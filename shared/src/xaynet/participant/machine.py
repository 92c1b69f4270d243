"""The participant's state machine: one object that knows what to do next, without doing I/O.

Like h11, the machine never touches the network, a clock or a random source of its own. A
driver asks it what to do and reports what happened::

    machine = ParticipantMachine.new(random_bytes=os.urandom, max_weight=1000)
    while True:
        request = machine.next_request()
        match request:
            case FetchParams(etag):   events = machine.receive(ParamsReceived(*get_params(etag)))
            case FetchSums():         events = machine.receive(SumsReceived(get_sums()))
            case FetchSeeds(pk):      events = machine.receive(SeedsReceived(get_seeds(pk)))
            case Post(body):          events = machine.receive(PostResult(*post(body)))
            case NeedModel(params):   machine.set_model(model, weight)  # or model_unavailable()
            case Compute():           events = machine.compute()         # CPU work: masking
            case Wait(reason, n):     sleep(backoff(n)); events = machine.receive(Waited())

A failed request is reported with ``receive(TransportFailed(...))``; the machine then waits and
retries. Global models are the driver's business: the machine only says when a new one may be
available (:class:`GlobalModelAvailable`, on a new round or after ``receive(ModelAnnounced())``),
and the driver fetches ``GET /model``. ``xaynet.sdk.agent`` is such a driver for asyncio; the
browser participant has its own.

States (:class:`State`), as in the original SDK:

* ``AWAITING`` -- no task in the current round; wait for new round parameters.
* ``NEW_ROUND`` -- new parameters arrived: choose the role (sum, update or none).
* ``SUM`` / ``SENDING_SUM`` -- draw the ephemeral key, send the Sum message.
* ``SUM2`` / ``SENDING_SUM2`` -- poll this summer's seeds, aggregate the masks, send Sum2.
* ``UPDATE`` / ``SENDING_UPDATE`` -- get the local model from the app and the sum dict, mask,
  send the Update message (in chunks when it exceeds ``max_message_size``).

New round parameters abandon an unfinished task (:class:`TaskAbandoned`). After every wait the
machine re-reads the parameters first, so it notices a new round even in the middle of a task.

How ``POST /message`` outcomes are handled (docs/PROTOCOL.md, section 10):

* 202 -- next chunk, or the message is done (:class:`MessageAccepted`);
* 409 ``already_submitted`` -- the message counts already: done;
* 409 ``wrong_phase``, 410 ``stale_round``, 503 ``phase_full`` / ``phase_closing`` /
  ``not_accepting`` -- too late for this round: the task is abandoned until the next round;
* 503 ``storage_unavailable`` / ``shutting_down``, other 5xx, 408, 429 and transport failures --
  the same bytes are sent again after a wait (:class:`Retrying`);
* any other 4xx -- the task failed (:class:`TaskFailed` with the reason word and detail).

Weights. The global model is ``sum(s_j * w_j) / sum(s_j)`` over the accepted updates, where the
scalar ``s_j`` enters the masking clamped to the unit bound (1 with the default ``B0`` unit
config) and every value ``s_j * w_j`` is clamped to the vector bound ``B_vect``. A common factor
of all scalars cancels, so the machine uses ``scalar = weight / max_weight``: give the number of
local samples as the weight and the same ``max_weight`` (an upper bound of any participant's
weight) to every participant of a deployment, and the result is FedAvg by sample counts. Since
the scalar is at most 1, model values within ``+-B_vect`` are never clamped; a small scalar costs
precision (``s * w`` is encoded with the resolution ``1 / E`` of the vector config).

Persistence. :meth:`ParticipantMachine.save` returns JSON bytes from which
:meth:`ParticipantMachine.restore` continues, mid-round included (a pending Sum2, an Update
half-sent in chunks). **They hold the participant's secret signing key and the round's secrets
(the ephemeral key seed of a summer, the sealed bodies and local model of an updater): store
them like a private key.**
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from xaynet.crypto import SigningKeyPair
from xaynet.errors import DecodeError, LocalProtocolError, ModelError, RemoteProtocolError
from xaynet.mask import encoding
from xaynet.mask.encoding import Scalar
from xaynet.mask.masking import check_model_length
from xaynet.participant.actions import (
    Compute,
    Event,
    FetchParams,
    FetchSeeds,
    FetchSums,
    GlobalModelAvailable,
    MessageAccepted,
    MessageRejected,
    MessageSent,
    ModelAnnounced,
    NeedModel,
    ParamsReceived,
    Post,
    PostResult,
    Request,
    Response,
    Retrying,
    RoleTaken,
    RoundStarted,
    RoundUnsupported,
    SeedsReceived,
    State,
    SumsReceived,
    Task,
    TaskAbandoned,
    TaskFailed,
    TransportFailed,
    Wait,
    Waited,
    WaitReason,
    check_key_map,
)
from xaynet.participant.requests import sealed_requests
from xaynet.participant.role import Role, RoleDecision, choose_role
from xaynet.participant.sum import SumTask
from xaynet.participant.update import UpdateTask
from xaynet.round import RoundParameters

# The requests, responses and events it speaks are defined (and exported) in ``actions``.
__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "STATE_FORMAT",
    "STATE_VERSION",
    "RandomBytes",
    "ParticipantMachine",
    "convert_local_model",
]

#: ``random_bytes(n)`` returns ``n`` bytes from a cryptographically secure generator.
RandomBytes = Callable[[int], bytes]

#: Sealed bodies above this size are sent as chunks: 1 MiB keeps each request small enough for
#: proxies and the coordinator's body limit, and costs a few requests only for large models.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20

STATE_FORMAT = "xaynet-participant-state"
STATE_VERSION = 1

_TASK_OF_STATE = {
    State.SUM: Task.SUM,
    State.SENDING_SUM: Task.SUM,
    State.SUM2: Task.SUM2,
    State.SENDING_SUM2: Task.SUM2,
    State.UPDATE: Task.UPDATE,
    State.SENDING_UPDATE: Task.UPDATE,
}
_SENDING = {
    State.SENDING_SUM: Task.SUM,
    State.SENDING_SUM2: Task.SUM2,
    State.SENDING_UPDATE: Task.UPDATE,
}
_ROLE_OF_STATE = {
    State.SUM: Role.SUM,
    State.SENDING_SUM: Role.SUM,
    State.SUM2: Role.SUM,
    State.SENDING_SUM2: Role.SUM,
    State.UPDATE: Role.UPDATE,
    State.SENDING_UPDATE: Role.UPDATE,
}

# POST outcomes that end the task for this round, and those that ask for the same bytes again.
_TOO_LATE = frozenset(
    {"wrong_phase", "stale_round", "phase_full", "phase_closing", "not_accepting"}
)
_TRY_AGAIN = frozenset({"storage_unavailable", "shutting_down"})


def _task_bodies_json(bodies: list[bytes]) -> list[str]:
    return [base64.b64encode(body).decode("ascii") for body in bodies]


class ParticipantMachine:
    """One participant's protocol state across rounds (see the module docstring).

    ``keys`` is the participant's identity. ``random_bytes`` supplies every random value (the
    ephemeral and mask seeds, multipart message ids). ``max_weight`` turns a weight into the
    scalar ``weight / max_weight`` (see the module docstring). ``max_message_size`` limits each
    sealed request body (``None``: no chunking). ``model_length``, when given, is the model
    length this participant can serve: a round announcing another one is skipped with
    :class:`RoundUnsupported`.
    """

    def __init__(
        self,
        keys: SigningKeyPair,
        *,
        random_bytes: RandomBytes,
        max_weight: Scalar = 1,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        model_length: int | None = None,
    ) -> None:
        if not isinstance(keys, SigningKeyPair):
            raise LocalProtocolError("keys must be a SigningKeyPair")
        if not callable(random_bytes):
            raise LocalProtocolError("random_bytes must be a callable n -> n random bytes")
        self._keys = keys
        self._random_bytes = random_bytes
        try:
            self._max_weight = encoding.to_scalar(max_weight)
        except ModelError as err:
            raise LocalProtocolError(f"max_weight: {err}") from None
        if self._max_weight <= 0:
            raise LocalProtocolError("max_weight must be > 0")
        if max_message_size is not None and (
            isinstance(max_message_size, bool) or not isinstance(max_message_size, int)
        ):
            raise LocalProtocolError("max_message_size must be an int or None")
        self._max_message_size = max_message_size
        if model_length is not None and (
            isinstance(model_length, bool) or not isinstance(model_length, int) or model_length < 1
        ):
            raise LocalProtocolError("model_length must be a positive int or None")
        self._model_length = model_length

        self._params: RoundParameters | None = None
        self._etag: str | None = None
        self._state = State.AWAITING
        self._refresh = False
        self._wait: WaitReason | None = None
        self._attempt = 0
        self._outstanding: Request | None = None
        self._reset_round()

    @classmethod
    def new(
        cls,
        *,
        random_bytes: RandomBytes,
        max_weight: Scalar = 1,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        model_length: int | None = None,
    ) -> ParticipantMachine:
        """A participant with a fresh identity drawn from ``random_bytes``."""
        keys = SigningKeyPair.from_seed(_draw(random_bytes, 32))
        return cls(
            keys,
            random_bytes=random_bytes,
            max_weight=max_weight,
            max_message_size=max_message_size,
            model_length=model_length,
        )

    def _reset_round(self) -> None:
        self._decision: RoleDecision | None = None
        self._ephemeral_seed: bytes | None = None
        self._seeds: dict[bytes, bytes] | None = None
        self._sums: dict[bytes, bytes] | None = None
        self._model: Any = None
        self._scalar: Fraction | None = None
        self._bodies: list[bytes] = []
        self._part = 0
        self._sent = 0

    # -- read-only views ---------------------------------------------------------------------

    @property
    def keys(self) -> SigningKeyPair:
        return self._keys

    @property
    def public_key(self) -> bytes:
        """The participant's identity (Ed25519 public key)."""
        return self._keys.public

    @property
    def state(self) -> State:
        return self._state

    @property
    def params(self) -> RoundParameters | None:
        """The parameters of the round the participant is in (``None`` before the first)."""
        return self._params

    @property
    def round_id(self) -> int | None:
        return None if self._params is None else self._params.round_id

    @property
    def role(self) -> Role | None:
        """The role in the current round; ``None`` before it is chosen."""
        if self._decision is not None:
            return self._decision.role
        return None

    @property
    def task(self) -> Task | None:
        """The unfinished task, if any."""
        return _TASK_OF_STATE.get(self._state)

    @property
    def needs_model(self) -> bool:
        """Whether :meth:`set_model` is expected: an updater without a local model yet."""
        return self._state is State.UPDATE and self._model is None

    @property
    def max_weight(self) -> Fraction:
        return self._max_weight

    @property
    def max_message_size(self) -> int | None:
        return self._max_message_size

    @property
    def model_length(self) -> int | None:
        """The model length this participant serves (``None``: whatever the round says)."""
        return self._model_length

    def __repr__(self) -> str:
        return (
            f"<ParticipantMachine {self._keys.public.hex()[:16]} round={self.round_id} "
            f"state={self._state.value}>"
        )

    # -- driving -------------------------------------------------------------------------------

    def next_request(self) -> Request:
        """What the driver should do next. Repeats the same request until it is answered."""
        if self._outstanding is None:
            self._outstanding = self._decide()
        return self._outstanding

    def _decide(self) -> Request:
        if self._wait is not None:
            return Wait(self._wait, self._attempt)
        if self._params is None or self._refresh:
            return FetchParams(self._etag)
        params = self._params
        state = self._state
        if state is State.AWAITING:
            self._wait = WaitReason.NEXT_ROUND
            return Wait(self._wait, self._attempt)
        if state in (State.NEW_ROUND, State.SUM):
            return Compute(state)
        if state is State.SUM2:
            if self._seeds is None:
                return FetchSeeds(self._keys.public)
            return Compute(state)
        if state is State.UPDATE:
            if self._model is None:
                return NeedModel(params)
            if self._sums is None:
                return FetchSums()
            return Compute(state)
        task = _SENDING[state]
        return Post(self._bodies[self._part], task, self._part, len(self._bodies))

    def _answering(self, *kinds: type[Request]) -> Request:
        request = self._outstanding
        if request is None or not isinstance(request, kinds):
            expected = " or ".join(kind.__name__ for kind in kinds)
            got = "nothing" if request is None else type(request).__name__
            raise LocalProtocolError(f"this answers {expected}, but the machine asked for {got}")
        return request

    def receive(self, response: Response) -> list[Event]:
        """Report the outcome of the current request; returns the events it caused."""
        if isinstance(response, ModelAnnounced):
            return [GlobalModelAvailable(response.round_id)]
        if isinstance(response, TransportFailed):
            request = self._answering(FetchParams, FetchSums, FetchSeeds, Post)
            self._outstanding = None
            self._wait = WaitReason.TRANSPORT
            return [Retrying(self.round_id, request.name, response.error, self._attempt)]
        if isinstance(response, ParamsReceived):
            self._answering(FetchParams)
            self._outstanding = None
            return self._on_params(response)
        if isinstance(response, SumsReceived):
            self._answering(FetchSums)
            self._outstanding = None
            if not response.sums:
                self._wait = WaitReason.SUMS
            else:
                self._sums = dict(response.sums)
                self._attempt = 0
            return []
        if isinstance(response, SeedsReceived):
            self._answering(FetchSeeds)
            self._outstanding = None
            if not response.seeds:
                self._wait = WaitReason.SEEDS
            else:
                self._seeds = dict(response.seeds)
                self._attempt = 0
            return []
        if isinstance(response, PostResult):
            request = self._answering(Post)
            assert isinstance(request, Post)
            self._outstanding = None
            return self._on_post(request, response)
        if isinstance(response, Waited):
            self._answering(Wait)
            self._outstanding = None
            self._wait = None
            self._attempt += 1
            # After any wait the round may have changed: look before acting.
            self._refresh = True
            return []
        raise LocalProtocolError(f"not a response: {response!r}")

    def _on_params(self, response: ParamsReceived) -> list[Event]:
        self._refresh = False
        if response.etag is not None:
            self._etag = response.etag
        params = response.params
        if params is None or params == self._params:
            if self._params is None:
                self._wait = WaitReason.NO_ROUND
            return []
        events: list[Event] = []
        task = self.task
        if task is not None and self._params is not None:
            events.append(TaskAbandoned(self._params.round_id, task, "new_round"))
        self._reset_round()
        self._params = params
        self._attempt = 0
        self._state = State.NEW_ROUND
        events += [RoundStarted(params.round_id, params), GlobalModelAvailable(None)]
        if self._model_length is not None and params.model_length != self._model_length:
            self._state = State.AWAITING
            events.append(
                RoundUnsupported(
                    params.round_id,
                    f"the round's model has {params.model_length} values, this participant's "
                    f"{self._model_length}",
                )
            )
        return events

    def _on_post(self, request: Post, result: PostResult) -> list[Event]:
        params = self._params
        assert params is not None
        round_id, task, status, reason = params.round_id, request.task, result.status, result.reason
        if 200 <= status < 300 or reason == "already_submitted":
            self._sent += request.size
            self._part += 1
            self._attempt = 0
            events: list[Event] = []
            if 200 <= status < 300:
                events.append(
                    MessageSent(round_id, task, request.part, request.parts, request.size, reason)
                )
            if self._part < len(self._bodies) and reason != "already_submitted":
                return events
            events.append(MessageAccepted(round_id, task, len(self._bodies), self._sent, reason))
            if task is Task.SUM:
                self._bodies, self._part, self._sent = [], 0, 0
                self._state = State.SUM2
            else:
                self._finish()
            return events
        if (
            reason in _TRY_AGAIN
            or (status >= 500 and reason not in _TOO_LATE)
            or status in (408, 429)
        ):
            self._wait = WaitReason.RETRY
            detail = f"{status} {reason}" + (f": {result.detail}" if result.detail else "")
            return [Retrying(round_id, request.name, detail, self._attempt)]
        rejected = MessageRejected(round_id, task, status, reason, result.detail)
        self._finish()
        # A refused message often means the round moved on: look at once.
        self._refresh = True
        if reason in _TOO_LATE:
            return [rejected, TaskAbandoned(round_id, task, reason)]
        return [rejected, TaskFailed(round_id, task, reason, result.detail)]

    def _finish(self) -> None:
        """The task is over (done, abandoned or failed): wait for the next round."""
        decision = self._decision
        self._reset_round()
        self._decision = decision
        self._state = State.AWAITING

    # -- local work ------------------------------------------------------------------------------

    def compute(self) -> list[Event]:
        """Do the local work a :class:`Compute` request asks for; returns the events."""
        self._answering(Compute)
        self._outstanding = None
        params = self._params
        assert params is not None
        state = self._state
        if state is State.NEW_ROUND:
            chosen = choose_role(self._keys, params)
            self._decision = chosen
            self._state = {Role.SUM: State.SUM, Role.UPDATE: State.UPDATE}.get(
                chosen.role, State.AWAITING
            )
            return [RoleTaken(params.round_id, chosen.role)]
        decision = self._decision
        assert decision is not None
        if state is State.SUM:
            seed = _draw(self._random_bytes, 32)
            task = SumTask(self._keys, params, decision, seed)
            self._ephemeral_seed = seed
            self._start_sending(task.sum_message(), State.SENDING_SUM)
            return []
        if state is State.SUM2:
            assert self._ephemeral_seed is not None
            assert self._seeds is not None
            task = SumTask(self._keys, params, decision, self._ephemeral_seed)
            try:
                message = task.sum2_message(self._seeds)
            except RemoteProtocolError as err:
                self._finish()
                return [TaskFailed(params.round_id, Task.SUM2, "invalid_seeds", str(err))]
            self._start_sending(message, State.SENDING_SUM2)
            return []
        if state is State.UPDATE:
            assert self._scalar is not None
            assert self._sums is not None
            update = UpdateTask(self._keys, params, decision)
            try:
                message = update.update_message(
                    self._model,
                    scalar=self._scalar,
                    mask_seed=_draw(self._random_bytes, 32),
                    sum_dict=self._sums,
                )
            except RemoteProtocolError as err:
                self._finish()
                return [TaskFailed(params.round_id, Task.UPDATE, "invalid_sums", str(err))]
            # The local model is in the sealed bodies now; drop the plaintext copy.
            self._model = None
            self._start_sending(message, State.SENDING_UPDATE)
            return []
        raise AssertionError(f"nothing to compute in {state}")  # pragma: no cover

    def _start_sending(self, message: Any, state: State) -> None:
        message_id = int.from_bytes(_draw(self._random_bytes, 2), "little")
        self._bodies = sealed_requests(
            message, self._keys, max_message_size=self._max_message_size, message_id=message_id
        )
        self._part, self._sent = 0, 0
        self._state = state
        self._attempt = 0

    # -- the app's local model -------------------------------------------------------------------

    def set_model(self, model: Any, weight: Scalar = 1) -> None:
        """Provide the local model for this round's Update task.

        ``model``: a 1-d numpy array or a sequence of ``params.model_length`` numbers of the
        round's data type. ``weight``: >= 0 and <= ``max_weight``, e.g. the number of local
        samples. Raises :class:`ModelError` for a wrong length, a value the data type cannot take
        or a bad weight, and :class:`LocalProtocolError` when no model is needed
        (:attr:`needs_model`).
        """
        if not self.needs_model:
            raise LocalProtocolError(f"no local model is needed in the {self._state.value} state")
        params = self._params
        assert params is not None
        scalar = self.scalar_for(weight)
        values = convert_local_model(model, params)
        self._model, self._scalar = values, scalar
        self._attempt = 0
        # Only an unanswered NeedModel is withdrawn: a driver may be in the middle of any other
        # request (a Wait included) and will answer it.
        if isinstance(self._outstanding, NeedModel):
            self._outstanding = None

    def scalar_for(self, weight: Scalar) -> Fraction:
        """The scalar ``weight / max_weight``; raises :class:`ModelError` for a bad weight."""
        try:
            value = encoding.to_scalar(weight)
        except ModelError as err:
            raise ModelError(f"weight: {err}") from None
        if value > self._max_weight:
            raise ModelError(
                f"the weight {weight} exceeds max_weight {_show(self._max_weight)}: raise "
                "max_weight (the same value for every participant of the deployment)"
            )
        return value / self._max_weight

    def model_unavailable(self) -> None:
        """The app has no local model yet: the machine waits and asks again."""
        self._answering(NeedModel)
        self._outstanding = None
        self._wait = WaitReason.MODEL

    def decline_task(self) -> list[Event]:
        """Skip this round's Update task (e.g. the device is busy)."""
        if not self.needs_model:
            raise LocalProtocolError(f"no task to decline in the {self._state.value} state")
        params = self._params
        assert params is not None
        if isinstance(self._outstanding, NeedModel):
            self._outstanding = None
        self._finish()
        return [TaskAbandoned(params.round_id, Task.UPDATE, "declined")]

    # -- persistence -----------------------------------------------------------------------------

    def save(self) -> bytes:
        """The whole state as JSON bytes, for :meth:`restore`.

        **They contain the secret signing key and the current round's secrets in clear**: keep
        them as confidential as a private key. A request in flight is not part of the state:
        after restoring, the machine asks for it again (resending a body is harmless).
        """
        params = self._params
        data: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "signing_key_seed": self._keys.secret[:32].hex(),
            "settings": {
                "max_weight": _show(self._max_weight),
                "max_message_size": self._max_message_size,
                "model_length": self._model_length,
            },
            "params": None if params is None else params.to_json_dict(),
            "etag": self._etag,
            "state": self._state.value,
            "ephemeral_seed": None if self._ephemeral_seed is None else self._ephemeral_seed.hex(),
            "sums": _hex_map(self._sums),
            "seeds": _hex_map(self._seeds),
            "model": None if self._model is None else _as_list(self._model),
            "scalar": None if self._scalar is None else _show(self._scalar),
            "bodies": _task_bodies_json(self._bodies),
            "part": self._part,
            "sent": self._sent,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes, *, random_bytes: RandomBytes) -> ParticipantMachine:
        """Continue from :meth:`save`'s bytes. Raises :class:`DecodeError` if they are not."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise DecodeError(f"participant state: not JSON: {err}") from None
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise DecodeError("participant state: not a saved xaynet participant")
        if doc.get("version") != STATE_VERSION:
            raise DecodeError(
                f"participant state: version {doc.get('version')!r} is not {STATE_VERSION}"
            )
        try:
            return cls._from_doc(doc, random_bytes)
        except (KeyError, TypeError, ValueError, binascii.Error, LocalProtocolError) as err:
            if isinstance(err, DecodeError):
                raise
            raise DecodeError(f"participant state: {type(err).__name__}: {err}") from None

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], random_bytes: RandomBytes) -> ParticipantMachine:
        settings = doc["settings"]
        keys = SigningKeyPair.from_seed(bytes.fromhex(doc["signing_key_seed"]))
        machine = cls(
            keys,
            random_bytes=random_bytes,
            max_weight=Fraction(settings["max_weight"]),
            max_message_size=settings["max_message_size"],
            model_length=settings["model_length"],
        )
        state = State(doc["state"])
        params = None if doc["params"] is None else RoundParameters.from_json_dict(doc["params"])
        if params is None and state is not State.AWAITING:
            raise DecodeError(f"participant state: {state.value} without round parameters")
        etag = doc["etag"]
        if etag is not None and not isinstance(etag, str):
            raise DecodeError("participant state: etag")
        machine._params, machine._etag, machine._state = params, etag, state
        if params is not None and state is not State.NEW_ROUND:
            # Deterministic, so the saved role need not be trusted: recompute and compare.
            machine._decision = choose_role(keys, params)
            role = _ROLE_OF_STATE.get(state)
            if role is not None and machine._decision.role is not role:
                raise DecodeError(f"participant state: {state.value} but the role is not {role}")
        ephemeral = doc["ephemeral_seed"]
        machine._ephemeral_seed = None if ephemeral is None else bytes.fromhex(ephemeral)
        machine._sums = _from_hex_map(doc["sums"])
        machine._seeds = _from_hex_map(doc["seeds"])
        if doc["model"] is not None:
            if params is None:  # pragma: no cover - excluded above
                raise DecodeError("participant state: a model without round parameters")
            machine._model = convert_local_model(doc["model"], params)
            machine._scalar = Fraction(doc["scalar"])
        machine._bodies = [base64.b64decode(body, validate=True) for body in doc["bodies"]]
        part, sent = doc["part"], doc["sent"]
        if not isinstance(part, int) or not isinstance(sent, int) or sent < 0:
            raise DecodeError("participant state: part and sent are integers")
        machine._part, machine._sent = part, sent
        machine._check_consistent()
        return machine

    def _check_consistent(self) -> None:
        state = self._state
        problem = None
        if state in _SENDING and not 0 <= self._part < len(self._bodies):
            problem = "no body left to send"
        elif state in (State.SUM2, State.SENDING_SUM2) and self._ephemeral_seed is None:
            problem = "a summer without its ephemeral key seed"
        elif state is State.UPDATE and (self._model is None) != (self._scalar is None):
            problem = "a model without a scalar"
        elif self._ephemeral_seed is not None and len(self._ephemeral_seed) != 32:
            problem = "the ephemeral seed is 32 bytes"
        if problem is not None:
            raise DecodeError(f"participant state: {state.value}: {problem}")


# -- helpers --------------------------------------------------------------------------------------


def convert_local_model(model: Any, params: RoundParameters) -> Any:
    """``model`` checked against the round (length, data type) and converted to its values.

    A numpy array gives a float64 (or int64) array, a sequence a list. Raises
    :class:`ModelError` with the reason.
    """
    check_model_length(model, params.model_length)
    data_type = params.mask_config.vect.data_type
    if type(model).__module__ == "numpy":
        from xaynet.mask import _numpy

        return _numpy.convert_model(model, data_type)
    return encoding.convert_model(model, data_type)


def _draw(random_bytes: RandomBytes, count: int) -> bytes:
    value = random_bytes(count)
    if not isinstance(value, bytes | bytearray) or len(value) != count:
        raise LocalProtocolError(f"random_bytes({count}) must return {count} bytes")
    return bytes(value)


def _show(value: Fraction) -> str:
    return str(value)


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, list):
        return values
    result: list[Any] = values.tolist()
    return result


def _hex_map(value: dict[bytes, bytes] | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {key.hex(): item.hex() for key, item in sorted(value.items())}


def _from_hex_map(value: object) -> dict[bytes, bytes] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodeError("participant state: a dictionary is not an object")
    result = {bytes.fromhex(key): bytes.fromhex(item) for key, item in value.items()}
    check_key_map(result, "participant state")
    return result
