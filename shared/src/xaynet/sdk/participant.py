"""The callback API: subclass :class:`Participant`, start it with :func:`spawn_participant`.

::

    class Trainer(Participant):
        def __init__(self, data):
            self.data = data

        def train_round(self, global_model):
            weights = global_model if global_model is not None else initial_weights()
            weights = train(weights, self.data)
            return weights, len(self.data)  # local model and its weight (samples)

    handle = spawn_participant(
        "http://127.0.0.1:8081", Trainer, my_data, options=ParticipantOptions(max_weight=10_000)
    )
    ...
    state = handle.stop()  # saved state: it holds the secret key, store it safely

The participant runs in its own thread with its own event loop; the class is instantiated in
that thread with the given arguments, and every hook is called from it:

* ``train_round(global_model)`` -- when the participant is an updater: return
  ``(local_model, weight)``; ``global_model`` is the newest global model (a float64 numpy
  array), ``None`` before the first one. The model is a numpy array or a list of numbers with
  the round's model length; the weight is >= 0 and <= ``options.max_weight``.
* ``on_new_global_model(model)`` -- every newly published global model.
* ``participate_in_update_task()`` -- return ``False`` to skip an Update task.
* ``on_event(event)`` -- every protocol event (roles, messages, failures).
* ``on_stop()`` -- once, when the participant stops.

An exception in a hook (a :class:`~xaynet.errors.ModelError` for a wrong model, for instance)
stops the participant; :meth:`ParticipantHandle.stop` and :meth:`ParticipantHandle.join`
raise it.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from xaynet.participant.actions import Event
from xaynet.participant.machine import ParticipantMachine
from xaynet.participant.transport import GlobalModel
from xaynet.round import RoundParameters
from xaynet.sdk.agent import Agent
from xaynet.sdk.options import ParticipantOptions

__all__ = ["Participant", "ParticipantHandle", "spawn_participant"]

log = logging.getLogger("xaynet.sdk")

Model = npt.NDArray[np.float64]


class Participant(abc.ABC):
    """A participant app: implement :meth:`train_round`, override the hooks you need."""

    @abc.abstractmethod
    def train_round(self, global_model: Model | None) -> tuple[Any, float]:
        """Train on ``global_model`` (``None`` before the first) -> ``(local_model, weight)``."""

    def on_new_global_model(self, model: Model) -> None:  # noqa: B027 - an optional hook
        """A new global model was published."""

    def participate_in_update_task(self) -> bool:
        """Whether to take an Update task now (e.g. ``False`` on a low battery)."""
        return True

    def on_event(self, event: Event) -> None:  # noqa: B027 - an optional hook
        """A protocol event (role taken, message accepted or rejected, task failed, ...)."""

    def on_stop(self) -> None:  # noqa: B027 - an optional hook
        """The participant stops (called once, in its thread)."""


class _Hooks:
    """The agent's model provider, backed by a :class:`Participant`."""

    def __init__(self, participant: Participant) -> None:
        self.participant = participant

    def wants_update(self, params: RoundParameters) -> bool:
        return bool(self.participant.participate_in_update_task())

    async def local_model(
        self, params: RoundParameters, global_model: GlobalModel | None
    ) -> tuple[Any, float] | None:
        values = None if global_model is None else global_model.values
        result: tuple[Any, float] = self.participant.train_round(values)
        return result


class ParticipantHandle:
    """A participant running in its own thread (see :func:`spawn_participant`)."""

    def __init__(
        self,
        url: str,
        participant_class: type[Participant],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        state: bytes | None,
        options: ParticipantOptions,
    ) -> None:
        if not (isinstance(participant_class, type) and issubclass(participant_class, Participant)):
            raise TypeError("participant_class must be a subclass of xaynet.sdk.Participant")
        self.url = url
        self.options = options
        #: the user's participant, once the thread created it
        self.participant: Participant | None = None
        #: the error that stopped the participant, if any
        self.error: BaseException | None = None
        #: the state saved when the participant stopped (the state it started from before)
        self.state: bytes | None = state
        self._class, self._args, self._kwargs = participant_class, args, kwargs
        self._machine: ParticipantMachine | None = None
        self._agent: Agent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"xaynet-{participant_class.__name__}", daemon=True
        )

    def __repr__(self) -> str:
        status = "running" if self.running else "stopped"
        return f"<ParticipantHandle {self._class.__name__} {self.url} {status}>"

    # -- views -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def public_key(self) -> bytes | None:
        """The participant's identity, once started."""
        return None if self._machine is None else self._machine.public_key

    @property
    def global_model(self) -> GlobalModel | None:
        """The newest global model the participant fetched."""
        return None if self._agent is None else self._agent.global_model

    # -- life --------------------------------------------------------------------------------

    def start(self, timeout: float | None = 30.0) -> None:
        """Start the thread and wait until the participant exists (or failed to start)."""
        self._thread.start()
        self._ready.wait(timeout)
        if self.error is not None and self.participant is None:
            self._thread.join(timeout)
            raise self.error

    def stop(self, timeout: float | None = 30.0) -> bytes:
        """Stop the participant, wait for its thread, and return its saved state.

        ``on_stop`` has been called when this returns. Raises the error that stopped the
        participant, if one did (the state is then in :attr:`state`), and :class:`TimeoutError`
        if the thread does not end in time (e.g. ``train_round`` is still running).
        """
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop_event.set)
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bytes:
        """Wait until the participant stops by itself (an error) or is stopped."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the participant did not stop within {timeout} s")
        if self.error is not None:
            raise self.error
        if self.state is None:  # pragma: no cover - saved on every clean exit
            raise RuntimeError("the participant stopped without a state")
        return self.state

    def __enter__(self) -> ParticipantHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.stop()
        else:
            with contextlib.suppress(Exception):
                self.stop()

    # -- the thread --------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # reported through the handle
            self.error = exc
            log.error("participant %s stopped by an error: %r", self._class.__name__, exc)
        finally:
            self._ready.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        options = self.options
        participant = self._class(*self._args, **self._kwargs)
        self.participant = participant
        machine = self._machine = options.machine(self.state)
        transport = options.transport(self.url)

        def on_event(event: Event) -> None:
            if options.on_event is not None:
                options.on_event(event)
            participant.on_event(event)

        def on_global_model(model: GlobalModel) -> None:
            participant.on_new_global_model(model.values)

        agent = self._agent = Agent(
            machine,
            transport,
            _Hooks(participant),
            settings=options.agent_settings(),
            rng=options.rng,
            on_event=on_event,
            on_global_model=on_global_model,
            name=options.name,
        )
        self._ready.set()
        run = asyncio.create_task(agent.run())
        stopping = asyncio.create_task(self._stop_event.wait())
        error: BaseException | None = None
        try:
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if run.done():
                error = None if run.cancelled() else run.exception()
            else:
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
            self.state = machine.save()
            await transport.aclose()
            participant.on_stop()
        if error is not None:
            raise error


def spawn_participant(
    url: str,
    participant_class: type[Participant],
    *args: Any,
    state: bytes | None = None,
    options: ParticipantOptions | None = None,
    **kwargs: Any,
) -> ParticipantHandle:
    """Run ``participant_class(*args, **kwargs)`` against the coordinator at ``url``.

    ``state`` continues a participant saved by :meth:`ParticipantHandle.stop` (identity and
    round progress); ``options`` holds the SDK settings (:class:`ParticipantOptions`). Returns
    once the participant is created; raises what its constructor raised.
    """
    handle = ParticipantHandle(
        url,
        participant_class,
        args,
        kwargs,
        state=state,
        options=options if options is not None else ParticipantOptions(),
    )
    handle.start()
    return handle
