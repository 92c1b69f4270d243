"""The participant's per-round protocol logic, without I/O.

A driver fetches the round parameters, calls :func:`choose_role`, then runs a :class:`SumTask`
or an :class:`UpdateTask` with the dictionaries it downloads and the random seeds it draws, and
POSTs the bodies :func:`sealed_requests` returns.
"""

from __future__ import annotations

from xaynet.participant.requests import sealed_requests
from xaynet.participant.role import Role, RoleDecision, choose_role, require_role
from xaynet.participant.sum import SeedDecryptionError, SumTask
from xaynet.participant.update import UpdateTask

__all__ = [
    "Role",
    "RoleDecision",
    "choose_role",
    "require_role",
    "SumTask",
    "SeedDecryptionError",
    "UpdateTask",
    "sealed_requests",
]
