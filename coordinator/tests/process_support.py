"""Drives the real ``xaynet-coordinator`` process: its config, its life, and participants.

The participants are the protocol core's (``xaynet.participant``) talking HTTP with httpx, so a
test reads like one round of the protocol: summers, updaters, their messages, the global model.
Every wait has a timeout, and a failure shows the end of the coordinator's log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import coordinator_process
import httpx
import numpy as np
import numpy.typing as npt
import redis
from coordinator_process import (
    REDIS_URL,
    START_TIMEOUT,
    CoordinatorProcess,
    config_toml,
)
from redis.exceptions import RedisError

from xaynet.crypto import SigningKeyPair
from xaynet.participant import Role, SumTask, UpdateTask, choose_role, sealed_requests
from xaynet.round import RoundParameters
from xaynet_coordinator.model_store import make_model_id

OCTET_STREAM = {"content-type": "application/octet-stream"}

#: seconds to wait for a phase to come, for a global model
PHASE_TIMEOUT = 20.0
_POLL = 0.05


def redis_unreachable() -> str | None:
    """Why Redis at REDIS_URL cannot be used, or None."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except (RedisError, OSError) as exc:
        return f"Redis at {REDIS_URL} is unreachable (set REDIS_URL): {exc}"
    return None


def delete_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN + DEL: the server may be shared)."""
    with redis.Redis.from_url(REDIS_URL) as client:
        coordinator_process.delete_prefix(client, prefix)


def write_config(
    path: Path,
    *,
    port: int,
    backend: str,
    key_prefix: str,
    models_dir: Path,
    summers: int,
    updaters: int,
    model_length: int,
) -> Path:
    """A TOML config: short minimum phase times, counts that make the phases wait for the test."""
    path.write_text(
        config_toml(
            port,
            models_dir=models_dir,
            model_length=model_length,
            sum_phase={"probability": 0.5, "count": (summers, 100), "time": (1, 60)},
            update_phase={"probability": 0.9, "count": (updaters, 100), "time": (1, 60)},
            sum2_phase={"count": (summers, 100), "time": (1, 60)},
            backend=backend,
            key_prefix=key_prefix,
            # larger than any test's update count: a resumed round rebuilds from the journal alone
            storage_extra="checkpoint_every = 100\n",
        ),
        encoding="utf-8",
    )
    return path


class Coordinator(CoordinatorProcess):
    """The process (restartable with the same config) and an HTTP client on it."""

    def __init__(self, config: Path, port: int, log_path: Path) -> None:
        super().__init__(config, port, log_path)
        self.http: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        return self.url

    # -- life ------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until ``/readyz`` says ready."""
        # A fresh client: the pooled connections of the previous process are dead.
        self._close_http()
        super().start(timeout)
        self.http = httpx.Client(base_url=self.base_url, timeout=10.0)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if not self.running:
            self.fail("the coordinator is not running")
        super().kill()
        self._close_http()

    def terminate(self, timeout: float = 20.0) -> int:
        status = super().terminate(timeout)
        self._close_http()
        return status

    def stop(self) -> None:
        """Clean-up: kill the process if it still runs."""
        self._close_http()
        super().kill()

    def _close_http(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    # -- HTTP --------------------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        if self.http is None:
            self.fail("no HTTP client: the coordinator is not running")
        assert self.http is not None
        return self.http

    def post(self, body: bytes) -> httpx.Response:
        return self.client().post("/message", content=body, headers=OCTET_STREAM)

    def state(self) -> dict[str, Any]:
        response = self.client().get("/state")
        if response.status_code != 200:
            self.fail(f"GET /state answered {response.status_code}: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = PHASE_TIMEOUT) -> Any:
        """Poll ``probe`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if self.process is not None and self.process.poll() is not None:
                self.fail(f"waiting for {what}: the coordinator exited ({self.process.returncode})")
            if time.monotonic() > deadline:
                self.fail(f"{what} did not happen within {timeout} s")
            time.sleep(_POLL)

    def wait_phase(self, round_id: int, phase: str) -> dict[str, Any]:
        """Wait until round ``round_id`` is in ``phase``; fail early if the round failed."""

        def probe() -> dict[str, Any] | None:
            state = self.state()
            if state["round_id"] == round_id and state["phase"] == phase:
                return state
            if state["phase"] == "failure" or state["round_id"] > round_id:
                self.fail(f"waiting for round {round_id} in {phase}, got {state}")
            return None

        result: dict[str, Any] = self.wait_for(f"round {round_id} in phase {phase}", probe)
        return result

    def wait_model(self, round_id: int) -> dict[str, Any]:
        """Wait for the global model of round ``round_id`` (JSON from ``GET /model``)."""

        def probe() -> dict[str, Any] | None:
            response = self.client().get("/model")
            if response.status_code == 200 and response.json()["round_id"] >= round_id:
                model: dict[str, Any] = response.json()
                return model
            state = self.state()
            if state["phase"] == "failure":
                self.fail(f"waiting for the model of round {round_id}: {state}")
            return None

        result: dict[str, Any] = self.wait_for(f"the global model of round {round_id}", probe)
        return result


@contextmanager
def running(coordinator: Coordinator) -> Iterator[Coordinator]:
    try:
        coordinator.start()
        yield coordinator
    finally:
        coordinator.stop()


# -- participants ----------------------------------------------------------------------------------


@dataclass
class Summer:
    keys: SigningKeyPair
    task: SumTask

    def sum_body(self) -> bytes:
        (body,) = sealed_requests(
            self.task.sum_message(), self.keys, max_message_size=None, message_id=1
        )
        return body

    def sum2_body(self, seeds: dict[bytes, bytes]) -> bytes:
        (body,) = sealed_requests(
            self.task.sum2_message(seeds), self.keys, max_message_size=None, message_id=2
        )
        return body


@dataclass
class Updater:
    keys: SigningKeyPair
    task: UpdateTask
    model: npt.NDArray[np.float64]
    scalar: Fraction
    #: split into chunks of at most this many bytes (None: one body)
    max_message_size: int | None
    bodies: list[bytes] = field(default_factory=list)

    def prepare(self, sum_dict: dict[bytes, bytes], message_id: int) -> None:
        message = self.task.update_message(
            self.model, scalar=self.scalar, mask_seed=os.urandom(32), sum_dict=sum_dict
        )
        self.bodies = sealed_requests(
            message, self.keys, max_message_size=self.max_message_size, message_id=message_id
        )


@dataclass
class RoundDriver:
    """The participants of one round against a :class:`Coordinator`."""

    coordinator: Coordinator
    n_summers: int
    n_updaters: int
    #: indices of updaters that send multipart (chunked) messages
    chunked: frozenset[int] = frozenset()
    max_message_size: int = 2048
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    params: RoundParameters | None = None
    summers: list[Summer] = field(default_factory=list)
    updaters: list[Updater] = field(default_factory=list)

    @property
    def round_id(self) -> int:
        assert self.params is not None
        return self.params.round_id

    @property
    def model_id(self) -> str:
        """The id of this round's global model in the model store."""
        assert self.params is not None
        return make_model_id(self.params.round_id, self.params.seed)

    def join(self) -> None:
        """Read the parameters of the round in its Sum phase and draw keys until enough roles."""
        c = self.coordinator

        def sum_phase() -> dict[str, Any] | None:
            state = c.state()
            return state if state["phase"] == "sum" else None

        state = c.wait_for("a round in the sum phase", sum_phase)
        response = c.client().get("/params")
        if response.status_code != 200:
            c.fail(f"GET /params answered {response.status_code}")
        params = RoundParameters.from_json_dict(response.json())
        assert params.round_id == state["round_id"], (params.round_id, state)
        self.params = params
        summers: list[Summer] = []
        updaters: list[Updater] = []
        for _ in range(10_000):
            if len(summers) >= self.n_summers and len(updaters) >= self.n_updaters:
                break
            keys = SigningKeyPair.from_seed(os.urandom(32))
            decision = choose_role(keys, params)
            if decision.role is Role.SUM and len(summers) < self.n_summers:
                summers.append(Summer(keys, SumTask(keys, params, decision, os.urandom(32))))
            elif decision.role is Role.UPDATE and len(updaters) < self.n_updaters:
                i = len(updaters)
                model = self.rng.uniform(-1.0, 1.0, params.model_length)
                # distinct weights, so a lost or doubled update moves the weighted mean
                scalar = Fraction(i + 1, self.n_updaters + 1)
                size = self.max_message_size if i in self.chunked else None
                updaters.append(
                    Updater(keys, UpdateTask(keys, params, decision), model, scalar, size)
                )
        else:  # pragma: no cover - p_sum 0.5, p_update 0.9: a few dozen keys suffice
            raise AssertionError("not enough participants for the round")
        self.summers, self.updaters = summers, updaters

    def send_sum(self, i: int) -> httpx.Response:
        return self.coordinator.post(self.summers[i].sum_body())

    def prepare_updates(self) -> dict[bytes, bytes]:
        """Fetch the sum dict (Update phase) and build every updater's request bodies."""
        c = self.coordinator
        response = c.client().get("/sums")
        if response.status_code != 200:
            c.fail(f"GET /sums answered {response.status_code} in the update phase")
        sums = {bytes.fromhex(k): bytes.fromhex(v) for k, v in response.json().items()}
        assert set(sums) == {s.keys.public for s in self.summers}
        for i, updater in enumerate(self.updaters):
            updater.prepare(sums, message_id=100 + i)
        return sums

    def send_update(self, i: int, chunks: slice | None = None) -> list[httpx.Response]:
        """POST updater ``i``'s bodies (or a slice of its chunks), stopping at the first error."""
        bodies = self.updaters[i].bodies
        assert bodies, "prepare_updates() first"
        responses = []
        for body in bodies[chunks] if chunks is not None else bodies:
            response = self.coordinator.post(body)
            responses.append(response)
            if response.status_code != 202:
                break
        return responses

    def seeds(self, i: int) -> dict[bytes, bytes]:
        c = self.coordinator
        pk = self.summers[i].keys.public.hex()
        response = c.client().get("/seeds", params={"pk": pk})
        if response.status_code != 200:
            c.fail(f"GET /seeds answered {response.status_code} for summer {i}")
        return {bytes.fromhex(k): bytes.fromhex(v) for k, v in response.json().items()}

    def send_sum2(self, i: int) -> httpx.Response:
        return self.coordinator.post(self.summers[i].sum2_body(self.seeds(i)))

    def expected_model(self) -> npt.NDArray[np.float64]:
        """The scalar-weighted mean of every updater's model."""
        weights = np.array([float(u.scalar) for u in self.updaters])
        models = np.stack([u.model for u in self.updaters])
        result: npt.NDArray[np.float64] = weights @ models / weights.sum()
        return result


def reason(response: httpx.Response) -> str:
    """``status reason`` of a ``POST /message`` answer, for readable assertions."""
    try:
        word = response.json().get("reason")
    except ValueError:
        word = response.text[:80]
    return f"{response.status_code} {word}"
