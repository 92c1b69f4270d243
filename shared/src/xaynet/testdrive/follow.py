"""Following a coordinator's events: what :class:`~.fleet.Fleet` and
:class:`~.digits.DigitsDrive` share.

A :class:`Follower` reads the coordinator's event stream into its :class:`~.ledger.Ledger`
(phases with their times, announced rounds, why a round failed), tells its listeners, and ends
the run once the requested rounds are complete. Subclasses say what differs: what a ``model``
event triggers (:meth:`Follower._on_model`), what they prune in long runs
(:meth:`Follower._prune`) and what happens without an event stream
(:meth:`Follower._without_events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar, cast

import httpx

from xaynet.errors import ConfigError
from xaynet.participant.transport import EventsNotSupported, GlobalModel, Transport
from xaynet.testdrive.ledger import Ledger, RoundRecord

log = logging.getLogger("xaynet.testdrive")

#: Seconds the shutdown waits for the participants' and the run's tasks to end.
SHUTDOWN_SECONDS = 15.0

__all__ = ["Follower", "check_run_options"]

#: Seconds between two "participants are retrying" notices.
_RETRY_NOTICE = 5.0

R = TypeVar("R", bound=RoundRecord)


def check_run_options(config: Any) -> None:
    """The options every task's config has: URL, stop conditions, network (``ConfigError``)."""
    if not config.url.startswith(("http://", "https://")):
        raise ConfigError(f"the coordinator URL must start with http:// or https://: {config.url}")
    if config.rounds is not None and config.rounds < 1:
        raise ConfigError("rounds must be >= 1")
    if config.duration is not None and not config.duration > 0:
        raise ConfigError("duration must be > 0")
    if not config.timeout > 0:
        raise ConfigError("timeout must be > 0")
    if config.connections < 1 or config.start_attempts < 1:
        raise ConfigError("connections and start_attempts must be >= 1")
    if config.give_up_after is not None and config.give_up_after < 1:
        raise ConfigError("give_up_after must be >= 1")


class Follower(Generic[R]):
    """Follows the coordinator's events into ``ledger``, whose records are of type ``R``."""

    ledger: Ledger

    def __init__(self, ledger: Ledger, rounds: int | None) -> None:
        self.ledger = ledger
        #: called with ("phase" | "round" | "model" | "failure" | "retrying", record)
        self.listeners: list[Callable[[str, R], None]] = []
        #: the error that stopped the run, if any
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._rounds = rounds
        self._client: httpx.AsyncClient | None = None
        self._done: asyncio.Event | None = None
        self._following = asyncio.Event()
        self._retry_notified = float("-inf")
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def done(self) -> bool:
        """Whether the requested rounds are complete."""
        return self._rounds is not None and len(self.ledger.completed) >= self._rounds

    def _record(self, round_id: int) -> R:
        # The subclass's ledger makes the records of its type.
        return cast(R, self.ledger.round(round_id))

    # -- running -----------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _follow(
        self,
        events: AsyncIterator[tuple[str, Any]],
        start: Callable[[], None],
        stop: asyncio.Event,
        *,
        duration: float | None,
        timeout: float,
    ) -> None:
        """Follow ``events``, ``start`` the participants, wait for the end of the run."""
        assert self._done is not None
        self.started_at = time.monotonic()
        self._spawn(self._monitor(events))
        # Learn the coordinator's phase before the participants act, so that a round they take
        # part in from its start is known as such.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._following.wait(), min(5.0, timeout))
        start()
        waits = {self._spawn(stop.wait()), self._spawn(self._done.wait())}
        if duration is not None:
            waits.add(self._spawn(asyncio.sleep(duration)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await bounded_gather("the run's tasks", tasks)

    # -- the coordinator's events -------------------------------------------------------------

    async def _monitor(self, events: AsyncIterator[tuple[str, Any]]) -> None:
        try:
            async for kind, data in events:
                self._on_coordinator_event(kind, data)
                if kind == "phase":
                    self._following.set()
        except EventsNotSupported as exc:
            await self._without_events(exc)
        finally:
            self._following.set()

    async def _without_events(self, exc: EventsNotSupported) -> None:
        """The coordinator has no event stream: poll ``GET /state`` instead."""
        log.info("no event stream (%s): polling GET /state", exc)
        await self._poll_state()

    async def _poll_state(self) -> None:
        """Without an event stream: turn ``GET /state`` into the same events."""
        assert self._client is not None
        seen_model: tuple[Any, Any] | None = None
        while True:
            try:
                state = (await self._client.get("/state")).json()
            except (httpx.HTTPError, ValueError) as exc:
                self.ledger.last_error = f"GET /state: {exc}"
            else:
                self._on_coordinator_event("phase", state)
                self._following.set()
                model = state.get("global_model")
                if isinstance(model, dict):
                    key = (model.get("round_id"), model.get("model_id"))
                    if seen_model is not None and key != seen_model:
                        self._on_coordinator_event("model", model)
                    seen_model = key
            await asyncio.sleep(0.5)

    def _on_coordinator_event(self, kind: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        ledger = self.ledger
        if kind == "error":
            ledger.last_error = f"event stream: {data.get('error')}"
            ledger.last_error_at = time.monotonic()
            return
        round_id = data.get("round_id")
        if not isinstance(round_id, int):
            return
        if kind == "phase" and isinstance(data.get("phase"), str):
            phase, since = data["phase"], data.get("since")
            ledger.coordinator_phase(
                round_id, phase, float(since) if isinstance(since, int | float) else None
            )
            record = self._record(round_id)
            if phase == "failure" and record.failure is None:
                record.failure = "failed"
                self._spawn(self._failure_reason(record))
            self._notify("phase", record)
            self._prune(round_id)
        elif kind == "round":
            ledger.round_announced(round_id)
            self._notify("round", self._record(round_id))
        elif kind == "model":
            self._on_model(round_id, data)

    def _on_model(self, round_id: int, data: dict[str, Any]) -> None:
        """The global model of ``round_id`` is out (``data``: the event)."""
        raise NotImplementedError

    def _prune(self, round_id: int) -> None:
        """Forget the details of rounds long before ``round_id`` (phase events call it)."""

    async def _failure_reason(self, record: R) -> None:
        assert self._client is not None
        with contextlib.suppress(httpx.HTTPError, ValueError):
            state = (await self._client.get("/state")).json()
            last = state.get("last_failure") or {}
            if last.get("round_id") == record.round_id and last.get("reason"):
                record.failure = str(last["reason"])
            elif state.get("failure"):
                record.failure = str(state["failure"])
        self._notify("failure", record)

    async def _fetch_model(self, view: Transport, round_id: int) -> GlobalModel | None:
        """The global model of ``round_id`` (``None``: not fetched, or already a newer one)."""
        model: GlobalModel | None = None
        for attempt in range(10):
            with contextlib.suppress(Exception):
                model = await view.get_model()
            if model is not None and model.round_id >= round_id:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
        if model is None or model.round_id != round_id:
            return None
        return model

    def _model_done(self, record: R) -> None:
        """Tell the listeners about the round's model; end the run after the last round."""
        self._notify("model", record)
        if self.done and self._done is not None:
            self._done.set()

    # -- the listeners --------------------------------------------------------------------------

    def retrying(self) -> None:
        """A participant retries after a failure: tell the listeners, at most every 5 s."""
        now = time.monotonic()
        if now - self._retry_notified < _RETRY_NOTICE:
            return
        self._retry_notified = now
        round_id = self.ledger.round_id
        self._notify("retrying", self._record(round_id if round_id is not None else 0))

    def _notify(self, kind: str, record: R) -> None:
        for listener in self.listeners:
            listener(kind, record)


async def bounded_gather(what: str, awaitables: list[Any]) -> None:
    """Await ``awaitables`` for up to :data:`SHUTDOWN_SECONDS`; then log where the laggards
    are (their stacks) and go on, so that a stuck task cannot hang the command's exit."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: ending with an error is fine at shutdown
    if not pending:
        return
    stacks = io.StringIO()
    for task in pending:
        task.print_stack(limit=12, file=stacks)
    log.error(
        "shutdown: %d of %s still running after %g s; their stacks:\n%s",
        len(pending),
        what,
        SHUTDOWN_SECONDS,
        stacks.getvalue(),
    )
