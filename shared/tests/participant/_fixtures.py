"""Shared builders for the participant tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xaynet.crypto import EncryptKeyPair, SigningKeyPair
from xaynet.mask import MaskConfig, MaskConfigPair
from xaynet.participant import Role, RoleDecision, choose_role
from xaynet.round import RoundParameters

CONFIG = MaskConfigPair.uniform(MaskConfig.from_names("Prime", "F32", "B0", "M3"))
ROUND_KEYS = EncryptKeyPair.from_seed(bytes(range(100, 132)))


def make_params(**changes: Any) -> RoundParameters:
    values: dict[str, Any] = {
        "round_id": 3,
        "coordinator_pk": ROUND_KEYS.public,
        "sum_probability": 0.3,
        "update_probability": 0.6,
        "seed": bytes(range(32)),
        "mask_config": CONFIG,
        "model_length": 4,
    }
    values.update(changes)
    return RoundParameters(**values)


def identities() -> Iterator[SigningKeyPair]:
    for i in range(100_000):
        yield SigningKeyPair.from_seed(i.to_bytes(32, "little"))


def with_role(
    role: Role, params: RoundParameters, skip: int = 0
) -> tuple[SigningKeyPair, RoleDecision]:
    """The first identity (after ``skip`` matches) that gets ``role`` in the round."""
    for keys in identities():
        decision = choose_role(keys, params)
        if decision.role is role:
            if skip == 0:
                return keys, decision
            skip -= 1
    raise AssertionError("no identity with that role")  # pragma: no cover
