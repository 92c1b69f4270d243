"""The asyncio API: the app trains when it likes and awaits new global models.

::

    async with AsyncParticipant("http://127.0.0.1:8081", options=options) as participant:
        while True:
            global_model = await participant.next_global_model()
            local = train(global_model.values)
            participant.set_local_model(local, weight=len(data))

The participant runs as a task of the current event loop. The local model set with
:meth:`AsyncParticipant.set_local_model` is used the next time the participant is an updater
(a newer one replaces it; once used, it is gone). A model set after :meth:`next_global_model`
returned a global model that has since been replaced is dropped, not submitted: await the newer
global model and train from it. When an Update task comes and no model is set, the participant
waits for one as long as the round lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from xaynet.mask.masking import check_model_length
from xaynet.participant.actions import State
from xaynet.participant.machine import ParticipantMachine, convert_local_model
from xaynet.participant.role import Role
from xaynet.participant.transport import GlobalModel, Transport
from xaynet.round import RoundParameters
from xaynet.sdk.agent import Agent
from xaynet.sdk.options import ParticipantOptions

__all__ = ["AsyncParticipant"]


class _Slot:
    """A one-model store: the agent's model provider.

    A model trained from a global model that has since been replaced is stale: it is dropped
    rather than submitted, so the app retrains from the newer global model (FedAvg combines
    updates of the same global model).
    """

    def __init__(self) -> None:
        self.model: tuple[Any, float] | None = None
        #: key of the global model the app had last received when it set ``model``
        self.base: tuple[int, str | None] | None = None

    def put(self, model: tuple[Any, float], base: tuple[int, str | None] | None) -> None:
        self.model, self.base = model, base

    def wants_update(self, params: RoundParameters) -> bool:
        return True

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[Any, float] | None:
        model, self.model = self.model, None
        stale = (
            model is not None
            and self.base is not None
            and global_model is not None
            and global_model.key != self.base
        )
        return None if stale else model  # a stale model was trained from an older global model


class AsyncParticipant:
    """A participant running in the current event loop (an async context manager).

    ``state`` continues a saved participant; ``options`` holds the SDK settings;
    ``transport`` replaces the httpx transport (tests, other runtimes).
    """

    def __init__(
        self,
        url: str,
        *,
        state: bytes | None = None,
        options: ParticipantOptions | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.url = url
        self.options = options if options is not None else ParticipantOptions()
        self.machine: ParticipantMachine = self.options.machine(state)
        self._owns_transport = transport is None
        self.transport: Transport = (
            transport if transport is not None else self.options.transport(url)
        )
        self._slot = _Slot()
        self._changed = asyncio.Event()
        self._returned: tuple[int, str | None] | None = None
        self.agent = Agent(
            self.machine,
            self.transport,
            self._slot,
            settings=self.options.agent_settings(),
            rng=self.options.rng,
            on_event=self.options.on_event,
            on_global_model=lambda _model: self._changed.set(),
            name=self.options.name,
        )
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<AsyncParticipant {self.url} {self.machine.state.value}>"

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the participant's task in the running event loop."""
        if self._task is not None:
            raise RuntimeError("the participant is already started")
        self._task = asyncio.get_running_loop().create_task(
            self.agent.run(), name=f"xaynet-participant-{self.agent.name}"
        )

    async def stop(self) -> bytes:
        """Stop the task, close the transport and return the saved state.

        Raises the error that stopped the participant, if one did. **The state holds the
        secret signing key.**
        """
        error = await self._halt()
        if error is not None:
            raise error
        return self.save()

    async def _halt(self) -> BaseException | None:
        task, self._task = self._task, None
        error: BaseException | None = None
        if task is not None:
            if task.done():
                error = None if task.cancelled() else task.exception()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._owns_transport:
            await self.transport.aclose()
        return error

    async def __aenter__(self) -> AsyncParticipant:
        self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        error = await self._halt()
        if error is not None and exc_type is None:
            raise error

    # -- the app's side ----------------------------------------------------------------------

    def set_local_model(self, model: Any, weight: float = 1.0) -> None:
        """Offer ``(model, weight)`` for the next Update task.

        Checked at once against the current round (length and data type) and ``max_weight``:
        raises :class:`~xaynet.errors.ModelError`.
        """
        self.machine.scalar_for(weight)
        params = self.machine.params
        if params is not None:
            convert_local_model(model, params)
        elif self.options.model_length is not None:
            check_model_length(model, self.options.model_length)
        self._slot.put((model, weight), self._returned)
        self.agent.poke("local_model")

    @property
    def has_local_model(self) -> bool:
        """Whether a local model waits for the next Update task."""
        return self._slot.model is not None

    @property
    def global_model(self) -> GlobalModel | None:
        """The newest global model fetched so far."""
        return self.agent.global_model

    async def next_global_model(self, timeout: float | None = None) -> GlobalModel:
        """The first global model not returned yet: the current one at first, then each new one.

        Raises what stopped the participant (e.g.
        :class:`~xaynet.sdk.agent.CoordinatorUnreachable`) and :class:`TimeoutError`.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._raise_if_stopped()
            model = self.agent.global_model
            if model is not None and model.key != self._returned:
                self._returned = model.key
                return model
            self._changed.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no new global model in time")
            waiter = asyncio.ensure_future(self._changed.wait())
            waits: set[asyncio.Future[Any]] = {waiter}
            if self._task is not None:
                waits.add(self._task)
            try:
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    def _raise_if_stopped(self) -> None:
        task = self._task
        if task is None:
            raise RuntimeError("the participant is not running: use 'async with' or start()")
        if task.done():
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
            raise RuntimeError("the participant has stopped")

    def save(self) -> bytes:
        """The participant's state (see :meth:`ParticipantMachine.save`): **it holds the secret
        signing key**. Safe to call while running."""
        return self.machine.save()

    # -- views -------------------------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self.machine.public_key

    @property
    def round_params(self) -> RoundParameters | None:
        return self.machine.params

    @property
    def role(self) -> Role | None:
        return self.machine.role

    @property
    def state(self) -> State:
        return self.machine.state
