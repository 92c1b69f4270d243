"""Role selection: a participant decides on its own whether it sums, updates or idles."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from xaynet.crypto import SigningKeyPair
from xaynet.eligibility import SIGNATURE_LENGTH, is_eligible, sum_signature, update_signature
from xaynet.errors import LocalProtocolError
from xaynet.round import RoundParameters

__all__ = ["Role", "RoleDecision", "choose_role", "require_role"]


class Role(enum.Enum):
    """What a participant does in a round."""

    SUM = "sum"
    UPDATE = "update"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RoleDecision:
    """A participant's role in a round and the task signatures that prove it.

    ``update_signature`` is ``None`` exactly for summers: they never compute it.
    """

    role: Role
    sum_signature: bytes
    update_signature: bytes | None

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            raise LocalProtocolError("RoleDecision.role must be a Role")
        if len(self.sum_signature) != SIGNATURE_LENGTH:
            raise LocalProtocolError(f"sum_signature is {SIGNATURE_LENGTH} bytes")
        if (self.role is Role.SUM) != (self.update_signature is None):
            raise LocalProtocolError("exactly summers have no update signature")
        if self.update_signature is not None and len(self.update_signature) != SIGNATURE_LENGTH:
            raise LocalProtocolError(f"update_signature is {SIGNATURE_LENGTH} bytes")


def choose_role(keys: SigningKeyPair, params: RoundParameters) -> RoleDecision:
    """Sum if sigma_sum is eligible, else update if sigma_update is eligible, else nothing.

    Deterministic: the same keys and round always yield the same decision.
    """
    sum_sig = sum_signature(keys, params.seed)
    if is_eligible(sum_sig, params.sum_probability):
        return RoleDecision(Role.SUM, sum_sig, None)
    update_sig = update_signature(keys, params.seed)
    role = Role.UPDATE if is_eligible(update_sig, params.update_probability) else Role.NONE
    return RoleDecision(role, sum_sig, update_sig)


def require_role(
    keys: SigningKeyPair, params: RoundParameters, decision: RoleDecision, role: Role
) -> None:
    """Check that ``decision`` gives ``role`` and was made with ``keys`` for ``params``' round.

    Raises :class:`LocalProtocolError`: a task built from a decision of another round or key
    would produce messages the coordinator rejects.
    """
    if not isinstance(params, RoundParameters):
        raise LocalProtocolError("params must be RoundParameters")
    if not isinstance(decision, RoleDecision) or decision.role is not role:
        raise LocalProtocolError(f"a {role.value} task needs a {role.value} role decision")
    if decision.sum_signature != sum_signature(keys, params.seed):
        raise LocalProtocolError("the role decision was not made with these keys for this round")
