"""Task selection: who sums and who updates in a round.

A participant signs ``round_seed || b"sum"`` (and, when that does not select it,
``round_seed || b"update"``) with its Ed25519 identity key. Ed25519 is deterministic, so the role of
a key in a round is fixed and anyone holding the public key can check it. A signature ``sig`` is
eligible for probability ``p`` iff ``h / (2^256 - 1) <= p`` where ``h`` is SHA-256(sig) read as an
unsigned little-endian integer. The comparison is exact: ``p`` is taken at its exact binary value
and both sides are cross-multiplied as integers, so every implementation agrees on the boundary.
"""

from __future__ import annotations

import math
from typing import Literal

from xaynet.crypto import SigningKeyPair, sha256, verify
from xaynet.errors import ConfigError, LocalProtocolError

__all__ = [
    "SEED_LENGTH",
    "SIGNATURE_LENGTH",
    "Task",
    "is_eligible",
    "task_message",
    "task_signature",
    "sum_signature",
    "update_signature",
    "verify_task_signature",
    "verify_sum_eligibility",
    "verify_update_eligibility",
]

SEED_LENGTH = 32
SIGNATURE_LENGTH = 64
_PUBLIC_KEY_LENGTH = 32

#: The largest SHA-256 value read as an integer: the denominator of the eligibility ratio.
_HASH_MAX = 2**256 - 1

Task = Literal["sum", "update"]


def _check_probability(probability: float) -> None:
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise ConfigError(f"a probability is a float, got {type(probability).__name__}")
    if math.isnan(probability):
        raise ConfigError("a probability cannot be NaN")


def is_eligible(signature: bytes, probability: float) -> bool:
    """Whether ``signature`` selects its signer for a task drawn with ``probability``.

    ``probability < 0`` never selects and ``probability >= 1`` always does (infinities included);
    NaN raises :class:`ConfigError`.
    """
    _check_probability(probability)
    if probability < 0:
        return False
    if probability >= 1:
        return True
    h = int.from_bytes(sha256(bytes(signature)), "little")
    # h / HASH_MAX <= num / den, without any rounding.
    num, den = probability.as_integer_ratio()
    return h * den <= num * _HASH_MAX


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_LENGTH:
        raise LocalProtocolError(f"a round seed is {SEED_LENGTH} bytes")


def task_message(seed: bytes, task: Task) -> bytes:
    """The bytes signed for ``task``: the raw seed followed by the ASCII task name."""
    _check_seed(seed)
    if task not in ("sum", "update"):
        raise LocalProtocolError(f"unknown task {task!r}; expected 'sum' or 'update'")
    return bytes(seed) + task.encode("ascii")


def task_signature(keys: SigningKeyPair, seed: bytes, task: Task) -> bytes:
    """Sign ``seed || task`` with the participant's identity key."""
    return keys.sign(task_message(seed, task))


def sum_signature(keys: SigningKeyPair, seed: bytes) -> bytes:
    """The participant's sigma_sum for the round with ``seed``."""
    return task_signature(keys, seed, "sum")


def update_signature(keys: SigningKeyPair, seed: bytes) -> bytes:
    """The participant's sigma_update for the round with ``seed``."""
    return task_signature(keys, seed, "update")


def verify_task_signature(public_key: bytes, seed: bytes, task: Task, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``seed || task``.

    Malformed keys or signatures (peer input) are simply not valid.
    """
    if len(public_key) != _PUBLIC_KEY_LENGTH or len(signature) != SIGNATURE_LENGTH:
        return False
    return verify(bytes(public_key), task_message(seed, task), bytes(signature))


def verify_sum_eligibility(
    public_key: bytes, seed: bytes, sum_sig: bytes, sum_probability: float
) -> bool:
    """Coordinator check for Sum and Sum2 messages: sigma_sum is valid and eligible."""
    # The hash is cheaper than the signature check, so it goes first.
    return is_eligible(sum_sig, sum_probability) and verify_task_signature(
        public_key, seed, "sum", sum_sig
    )


def verify_update_eligibility(  # noqa: PLR0917 -- mirrors the message fields in order
    public_key: bytes,
    seed: bytes,
    sum_sig: bytes,
    update_sig: bytes,
    sum_probability: float,
    update_probability: float,
) -> bool:
    """Coordinator check for Update messages.

    sigma_update must be valid and eligible, and sigma_sum must be a *valid* signature that is not
    eligible for sum: a summer cannot also update. The original only required sigma_sum not to
    select a summer, so any garbage sigma_sum passed; here the proof of non-selection is enforced.
    """
    return (
        is_eligible(update_sig, update_probability)
        and not is_eligible(sum_sig, sum_probability)
        and verify_task_signature(public_key, seed, "update", update_sig)
        and verify_task_signature(public_key, seed, "sum", sum_sig)
    )
