"""The CPU-bound checks of a submitted message, done off the event loop.

``open_request`` turns a request body into a verified :class:`~xaynet.message.Message` (or an
:class:`Outcome` saying why not), in the order of the original's pipeline: open the sealed box
with the round key, parse the header, check the coordinator key in it, filter by phase, verify
the signature, parse the payload. ``check_eligibility`` verifies the task signatures of a
complete message. Both are pure functions of their arguments, so they run in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from xaynet import crypto
from xaynet.eligibility import verify_sum_eligibility, verify_update_eligibility
from xaynet.errors import DecodeError, DecryptionError, SignatureError, XaynetError
from xaynet.message import Message, Sum, Sum2, Tag, Update, open_message, parse_header
from xaynet.round import RoundParameters
from xaynet_coordinator.outcome import Outcome
from xaynet_coordinator.phase import MESSAGE_PHASE, Phase

__all__ = ["RoundKeys", "open_request", "check_eligibility"]


@dataclass(frozen=True, slots=True)
class RoundKeys:
    """The current round's key pair, and the previous round's to recognise stale messages."""

    current: crypto.EncryptKeyPair
    previous: crypto.EncryptKeyPair | None = None


def open_request(body: bytes, keys: RoundKeys, phase: Phase) -> Message | Outcome:
    """Decrypt, parse and verify ``body`` for the current round and ``phase``."""
    try:
        plaintext = open_message(body, keys.current)
    except DecryptionError:
        if keys.previous is not None:
            try:
                open_message(body, keys.previous)
            except XaynetError:
                pass
            else:
                return Outcome("stale_round", "sealed to the previous round's key")
        return Outcome("undecryptable")
    except DecodeError as exc:
        return Outcome("malformed", str(exc))
    try:
        header = parse_header(plaintext)
    except XaynetError as exc:
        return Outcome("malformed", str(exc))
    if header.coordinator_pk != keys.current.public:
        return Outcome("wrong_coordinator_key")
    expected = MESSAGE_PHASE[header.tag]
    if expected is not phase:
        return Outcome(
            "wrong_phase", f"a {header.tag.name.lower()} message during the {phase.value} phase"
        )
    try:
        return Message.from_bytes(plaintext)
    except SignatureError as exc:
        return Outcome("bad_signature", str(exc))
    except XaynetError as exc:
        return Outcome("malformed", str(exc))


def check_eligibility(message: Message, params: RoundParameters) -> Outcome | None:
    """None if the sender's task signatures select it for the message's task."""
    payload = message.payload
    pk, seed = message.participant_pk, params.seed
    if isinstance(payload, Sum | Sum2):
        if verify_sum_eligibility(pk, seed, payload.sum_signature, params.sum_probability):
            return None
        return Outcome("not_eligible", "the sum signature does not select this participant")
    if isinstance(payload, Update):
        if verify_update_eligibility(
            pk,
            seed,
            payload.sum_signature,
            payload.update_signature,
            params.sum_probability,
            params.update_probability,
        ):
            return None
        return Outcome(
            "not_eligible",
            "the update signature does not select this participant, or its sum signature is "
            "invalid or selects it for the sum task",
        )
    return Outcome("malformed", f"a {Tag(message.tag).name} message cannot be checked")
