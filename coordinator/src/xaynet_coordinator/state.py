"""The coordinator state that survives a restart: the round, its keys and its phase.

It is written to storage at every phase transition, before anything of the new phase is
published, so a restarted coordinator (Redis backend) knows which round it was running, with
which round key, and since when the phase has been open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from xaynet.crypto import EncryptKeyPair
from xaynet.round import RoundParameters
from xaynet_coordinator.phase import Phase

__all__ = ["CoordinatorState", "StateDecodeError"]

_VERSION = 1


class StateDecodeError(Exception):
    """The stored state cannot be read (another format, corrupted data)."""


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    """The persisted state of the coordinator."""

    round_id: int
    phase: Phase
    phase_started_at: float
    seed: bytes
    round_keys: EncryptKeyPair | None
    params: RoundParameters | None
    failure: str | None = None

    def with_phase(self, phase: Phase, now: float, failure: str | None = None) -> CoordinatorState:
        return replace(self, phase=phase, phase_started_at=now, failure=failure)

    def to_bytes(self) -> bytes:
        data = {
            "version": _VERSION,
            "round_id": self.round_id,
            "phase": self.phase.value,
            "phase_started_at": self.phase_started_at,
            "seed": self.seed.hex(),
            # The round secret key is stored: without it a restarted coordinator could not open
            # the messages of the round it resumes. Protect the storage accordingly.
            "round_public": self.round_keys.public.hex() if self.round_keys else None,
            "round_secret": self.round_keys.secret.hex() if self.round_keys else None,
            "params": self.params.to_json_dict() if self.params else None,
            "failure": self.failure,
        }
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CoordinatorState:
        try:
            data = json.loads(raw)
            if data.get("version") != _VERSION:
                raise StateDecodeError(f"unsupported state version {data.get('version')!r}")
            keys = None
            if data["round_secret"] is not None:
                keys = EncryptKeyPair(
                    bytes.fromhex(data["round_public"]), bytes.fromhex(data["round_secret"])
                )
            params = (
                RoundParameters.from_json_dict(data["params"])
                if data["params"] is not None
                else None
            )
            return cls(
                round_id=int(data["round_id"]),
                phase=Phase(data["phase"]),
                phase_started_at=float(data["phase_started_at"]),
                seed=bytes.fromhex(data["seed"]),
                round_keys=keys,
                params=params,
                failure=data.get("failure"),
            )
        except StateDecodeError:
            raise
        except Exception as exc:  # any defect of stored data means the same: unreadable
            raise StateDecodeError(f"the stored coordinator state is unreadable: {exc}") from exc
