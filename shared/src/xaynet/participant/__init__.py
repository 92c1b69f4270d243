"""The participant's protocol logic, without I/O.

:class:`ParticipantMachine` (:mod:`xaynet.participant.machine`) is the whole participant as a
sans-IO state machine: a driver asks it what to do next and reports what happened (the
requests, responses and events are in :mod:`xaynet.participant.actions`).
:mod:`xaynet.participant.transport` describes the network side a driver implements.

The building blocks it uses are public too: :func:`choose_role`, then a :class:`SumTask` or an
:class:`UpdateTask` with the dictionaries the driver downloads and the random seeds it draws, and
:func:`sealed_requests` for the bodies to POST.
"""

from __future__ import annotations

from xaynet.participant.actions import Event, Request, Response, State, Task, WaitReason
from xaynet.participant.backoff import Backoff
from xaynet.participant.machine import DEFAULT_MAX_MESSAGE_SIZE, ParticipantMachine
from xaynet.participant.requests import sealed_requests
from xaynet.participant.role import Role, RoleDecision, choose_role, require_role
from xaynet.participant.sum import SeedDecryptionError, SumTask
from xaynet.participant.update import UpdateTask

__all__ = [
    "ParticipantMachine",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "State",
    "Task",
    "WaitReason",
    "Request",
    "Response",
    "Event",
    "Backoff",
    "Role",
    "RoleDecision",
    "choose_role",
    "require_role",
    "SumTask",
    "SeedDecryptionError",
    "UpdateTask",
    "sealed_requests",
]
