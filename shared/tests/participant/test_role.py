from __future__ import annotations

import itertools
from collections import Counter

import pytest

from participant._fixtures import make_params, with_role
from xaynet.crypto import SigningKeyPair, verify
from xaynet.eligibility import is_eligible
from xaynet.errors import LocalProtocolError
from xaynet.participant import Role, RoleDecision, choose_role, require_role

SIG = bytes(64)


def test_decisions_follow_eligibility() -> None:
    params = make_params()
    seen = set()
    for i in range(200):
        keys = SigningKeyPair.from_seed(i.to_bytes(32, "big"))
        decision = choose_role(keys, params)
        seen.add(decision.role)
        assert verify(keys.public, params.seed + b"sum", decision.sum_signature)
        sum_eligible = is_eligible(decision.sum_signature, params.sum_probability)
        if decision.role is Role.SUM:
            assert sum_eligible
            assert decision.update_signature is None
            continue
        assert not sum_eligible
        assert decision.update_signature is not None
        assert verify(keys.public, params.seed + b"update", decision.update_signature)
        update_eligible = is_eligible(decision.update_signature, params.update_probability)
        assert (decision.role is Role.UPDATE) == update_eligible
        assert choose_role(keys, params) == decision  # deterministic
    assert seen == set(Role)


def test_role_frequencies() -> None:
    # P(sum) = p_sum, P(update) = (1 - p_sum) * p_update; 3000 fixed keys, so not flaky.
    params = make_params(sum_probability=0.2, update_probability=0.5)
    counts = Counter(
        choose_role(SigningKeyPair.from_seed(i.to_bytes(32, "big")), params).role
        for i in range(3000)
    )
    assert counts[Role.SUM] / 3000 == pytest.approx(0.2, abs=0.03)
    assert counts[Role.UPDATE] / 3000 == pytest.approx(0.4, abs=0.03)
    assert counts[Role.NONE] / 3000 == pytest.approx(0.4, abs=0.03)


def test_roles_change_with_the_round_seed() -> None:
    keys = SigningKeyPair.from_seed(bytes(32))
    decisions = {choose_role(keys, make_params(seed=bytes([i]) * 32)).role for i in range(40)}
    assert decisions == set(Role)


@pytest.mark.parametrize(
    ("role", "sum_sig", "update_sig"),
    [
        (Role.SUM, SIG, SIG),
        (Role.UPDATE, SIG, None),
        (Role.NONE, SIG, None),
        (Role.UPDATE, SIG[:63], SIG),
        (Role.UPDATE, SIG, SIG + b"\x00"),
        ("sum", SIG, None),
    ],
)
def test_decision_validation(role: Role, sum_sig: bytes, update_sig: bytes | None) -> None:
    with pytest.raises(LocalProtocolError):
        RoleDecision(role, sum_sig, update_sig)


def test_require_role() -> None:
    params = make_params()
    summer, sum_decision = with_role(Role.SUM, params)
    updater, update_decision = with_role(Role.UPDATE, params)
    require_role(summer, params, sum_decision, Role.SUM)
    require_role(updater, params, update_decision, Role.UPDATE)
    for keys, decision, role, round_params in itertools.chain(
        [
            (summer, sum_decision, Role.UPDATE, params),  # wrong role
            (updater, sum_decision, Role.SUM, params),  # other keys
            (summer, sum_decision, Role.SUM, make_params(seed=bytes(32))),  # other round
        ]
    ):
        with pytest.raises(LocalProtocolError):
            require_role(keys, round_params, decision, role)
