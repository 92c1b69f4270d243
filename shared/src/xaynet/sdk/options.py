"""Settings of an SDK participant, and how they build its machine, transport and agent."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

from xaynet.crypto import SigningKeyPair
from xaynet.errors import LocalProtocolError
from xaynet.participant.actions import Event
from xaynet.participant.backoff import Backoff
from xaynet.participant.machine import DEFAULT_MAX_MESSAGE_SIZE, ParticipantMachine
from xaynet.participant.transport import Transport
from xaynet.sdk.agent import DEFAULT_FAILURE_BACKOFF, DEFAULT_POLL_BACKOFF, AgentSettings
from xaynet.sdk.http import ClientCert, HttpTransport

__all__ = ["ParticipantOptions"]


@dataclass(frozen=True, slots=True)
class ParticipantOptions:
    """Everything about a participant except its model.

    Protocol:

    * ``max_weight`` -- the largest weight any participant of the deployment gives (e.g. the
      largest number of local samples); the scalar is ``weight / max_weight``. **Every
      participant of a deployment must use the same value**, or the weighting is skewed.
    * ``model_length`` -- the model length this app serves; a round announcing another raises
      :class:`~xaynet.errors.ConfigError` (or is skipped with ``skip_unsupported_rounds``).
    * ``max_message_size`` -- larger messages go in chunks of at most this many bytes.
    * ``keys`` -- the identity; ``None`` draws a fresh one (ignored when restoring a state: the
      state holds its identity).

    Network: ``timeout`` per request (seconds), ``verify`` (``True``, ``False`` or a CA bundle
    path), ``client_cert`` (PEM path or ``(cert, key)`` paths), ``retries`` per request.

    Driving: ``use_events`` (follow ``GET /events``), ``event_timeout``, ``poll_backoff``,
    ``retry_backoff``, ``give_up_after`` (consecutive failures before
    :class:`~xaynet.sdk.agent.CoordinatorUnreachable`; ``None``: retry forever, logging each
    failure).

    Sources: ``random_bytes`` for keys and seeds (``os.urandom``: keep it cryptographically
    secure), ``rng`` for the jitter of waits, ``on_event`` to observe every protocol event,
    ``name`` for log lines. ``transport_factory(url)`` replaces the httpx transport (another
    HTTP stack, tests); it is called in the participant's event loop.
    """

    max_weight: float = 1.0
    model_length: int | None = None
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    keys: SigningKeyPair | None = None
    timeout: float = 30.0
    verify: bool | str = True
    client_cert: ClientCert | None = None
    retries: int = 2
    use_events: bool = True
    event_timeout: float = 15.0
    poll_backoff: Backoff = DEFAULT_POLL_BACKOFF
    retry_backoff: Backoff = DEFAULT_FAILURE_BACKOFF
    give_up_after: int | None = None
    skip_unsupported_rounds: bool = False
    random_bytes: Callable[[int], bytes] = os.urandom
    rng: random.Random | None = None
    on_event: Callable[[Event], None] | None = None
    name: str | None = None
    transport_factory: Callable[[str], Transport] | None = None

    def __post_init__(self) -> None:
        self.agent_settings()  # validates those fields early

    def machine(self, state: bytes | None = None) -> ParticipantMachine:
        """A new participant, or the one saved in ``state``."""
        if state is not None:
            if self.keys is not None:
                raise LocalProtocolError("give keys or a saved state, not both")
            if not isinstance(state, bytes | bytearray):
                raise LocalProtocolError("state must be the bytes save() returned")
            return ParticipantMachine.restore(bytes(state), random_bytes=self.random_bytes)
        keys = self.keys
        if keys is None:
            keys = SigningKeyPair.from_seed(self.random_bytes(32))
        return ParticipantMachine(
            keys,
            random_bytes=self.random_bytes,
            max_weight=self.max_weight,
            max_message_size=self.max_message_size,
            model_length=self.model_length,
        )

    def transport(self, url: str) -> Transport:
        if self.transport_factory is not None:
            return self.transport_factory(url)
        return HttpTransport(
            url,
            timeout=self.timeout,
            verify=self.verify,
            client_cert=self.client_cert,
            retries=self.retries,
            rng=self.rng,
        )

    def agent_settings(self) -> AgentSettings:
        return AgentSettings(
            use_events=self.use_events,
            event_timeout=self.event_timeout,
            poll_backoff=self.poll_backoff,
            retry_backoff=self.retry_backoff,
            give_up_after=self.give_up_after,
            skip_unsupported_rounds=self.skip_unsupported_rounds,
        )
