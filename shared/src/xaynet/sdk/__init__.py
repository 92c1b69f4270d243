"""Python participants for a Xaynet coordinator (CPython: needs ``pip install xaynet[sdk]``).

Two APIs, both on top of the sans-IO :class:`~xaynet.participant.ParticipantMachine`:

1. Callbacks in a thread -- subclass :class:`Participant`, implement ``train_round``::

       from xaynet.sdk import Participant, ParticipantOptions, spawn_participant

       class Trainer(Participant):
           def train_round(self, global_model):
               model = local_training(global_model)  # numpy array or list of floats
               return model, number_of_samples          # the weight

       handle = spawn_participant(URL, Trainer, options=ParticipantOptions(max_weight=10_000))
       ...
       state = handle.stop()   # bytes; they hold the secret key

2. asyncio -- :class:`AsyncParticipant`::

       async with AsyncParticipant(URL, options=ParticipantOptions(max_weight=10_000)) as p:
           global_model = await p.next_global_model()
           p.set_local_model(local_training(global_model.values), weight=number_of_samples)

Weights. The global model is the weighted mean of the local models: pass the number of local
samples as the weight and set ``max_weight`` to an upper bound of every participant's weight,
**the same value for all participants of a deployment** (the SDK masks ``weight / max_weight``;
a common factor cancels out, so the result is FedAvg). Model values must stay within the
vector bound of the round's mask config (±100 with the default B2), beyond which they are
clamped.

Errors: :class:`~xaynet.errors.ModelError` for a model of the wrong length or type or a bad
weight, :class:`~xaynet.errors.ConfigError` for a round this participant cannot serve
(``options.model_length``), :class:`CoordinatorUnreachable` after ``options.give_up_after``
failed requests (by default a participant retries forever and logs each failure on the
``xaynet.sdk`` logger).

Lower levels: :class:`Agent` (the asyncio driver with a :class:`ModelProvider`),
:class:`HttpTransport` (httpx), :class:`SharedTransport` (many agents in one process over one
connection pool and one event stream).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xaynet.participant.actions import (
    Event,
    GlobalModelAvailable,
    MessageAccepted,
    MessageRejected,
    MessageSent,
    Retrying,
    RoleTaken,
    RoundStarted,
    RoundUnsupported,
    TaskAbandoned,
    TaskFailed,
)
from xaynet.participant.backoff import Backoff
from xaynet.participant.role import Role
from xaynet.participant.transport import (
    EventsNotSupported,
    GlobalModel,
    PostOutcome,
    Transport,
    TransportError,
)
from xaynet.sdk.agent import Agent, AgentSettings, CoordinatorUnreachable, ModelProvider
from xaynet.sdk.fanout import SharedTransport

if TYPE_CHECKING:
    from xaynet.sdk.aio import AsyncParticipant
    from xaynet.sdk.http import HttpTransport
    from xaynet.sdk.options import ParticipantOptions
    from xaynet.sdk.participant import Participant, ParticipantHandle, spawn_participant

# These need httpx and numpy (CPython): imported on first use, so that the agent and the shared
# transport also run inside Pyodide (the browser participant drives an Agent over fetch).
_LAZY = {
    "AsyncParticipant": "xaynet.sdk.aio",
    "HttpTransport": "xaynet.sdk.http",
    "ParticipantOptions": "xaynet.sdk.options",
    "Participant": "xaynet.sdk.participant",
    "ParticipantHandle": "xaynet.sdk.participant",
    "spawn_participant": "xaynet.sdk.participant",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xaynet.sdk' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    # the two APIs
    "Participant",
    "ParticipantHandle",
    "spawn_participant",
    "AsyncParticipant",
    "ParticipantOptions",
    "GlobalModel",
    # errors
    "CoordinatorUnreachable",
    "TransportError",
    "EventsNotSupported",
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
    "Role",
    # lower levels
    "Agent",
    "AgentSettings",
    "ModelProvider",
    "Backoff",
    "HttpTransport",
    "SharedTransport",
    "Transport",
    "PostOutcome",
]
