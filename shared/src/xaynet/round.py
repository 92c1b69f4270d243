"""Round parameters and the chaining of round seeds.

:class:`RoundParameters` is everything a participant needs to act in one round; a change of the
whole value marks a new round. Its JSON form is language-neutral: byte fields (keys, seed) are
lowercase hex strings, probabilities JSON numbers, mask configs their names::

    {"round_id": 1, "coordinator_pk": "<64 hex>", "sum_probability": 0.5,
     "update_probability": 0.9, "seed": "<64 hex>",
     "mask_config": {"vect": {"group_type": "Prime", "data_type": "F32",
                              "bound_type": "B0", "model_type": "M3"}, "unit": {...}},
     "model_length": 4}

Each round's seed is derived from the previous one by signing it (with the probabilities) with an
Ed25519 key whose seed is the round's fresh X25519 secret key, then hashing the signature.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xaynet.crypto import SigningKeyPair, sha256
from xaynet.errors import ConfigError, DecodeError, LocalProtocolError
from xaynet.mask.config import MaskConfig, MaskConfigPair

__all__ = [
    "INITIAL_ROUND_SEED",
    "RoundParameters",
    "next_round_seed",
    "round_seed_verify_key",
]

#: The seed of the round before the first one.
INITIAL_ROUND_SEED = bytes(32)

_KEY_LENGTH = 32
_MAX_ROUND_ID = 2**64 - 1
# A mask vector announces its length as a u32.
_MAX_MODEL_LENGTH = 2**32 - 1
_HEX_32 = re.compile(r"[0-9a-fA-F]{64}")
_CONFIG_FIELDS = ("group_type", "data_type", "bound_type", "model_type")
_JSON_FIELDS = frozenset(
    (
        "round_id",
        "coordinator_pk",
        "sum_probability",
        "update_probability",
        "seed",
        "mask_config",
        "model_length",
    )
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class RoundParameters:
    """The public description of one round.

    ``sum_probability`` is in (0, 1): 0 would select no summer, 1 no updater.
    ``update_probability`` is in (0, 1].
    """

    round_id: int
    coordinator_pk: bytes
    sum_probability: float
    update_probability: float
    seed: bytes
    mask_config: MaskConfigPair
    model_length: int

    def __post_init__(self) -> None:
        if not _is_int(self.round_id) or not 0 <= self.round_id <= _MAX_ROUND_ID:
            raise ConfigError("round_id: expected an integer in [0, 2^64)")
        for name in ("coordinator_pk", "seed"):
            value = getattr(self, name)
            if not isinstance(value, bytes | bytearray) or len(value) != _KEY_LENGTH:
                raise ConfigError(f"{name}: expected {_KEY_LENGTH} bytes")
            object.__setattr__(self, name, bytes(value))
        for name, upper_open in (("sum_probability", True), ("update_probability", False)):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ConfigError(f"{name}: expected a finite number")
            value = float(value)
            if not (0 < value < 1 if upper_open else 0 < value <= 1):
                interval = "(0, 1)" if upper_open else "(0, 1]"
                raise ConfigError(f"{name}: {value!r} is not in {interval}")
            object.__setattr__(self, name, value)
        if not isinstance(self.mask_config, MaskConfigPair):
            raise ConfigError("mask_config: expected a MaskConfigPair")
        if not _is_int(self.model_length) or not 1 <= self.model_length <= _MAX_MODEL_LENGTH:
            raise ConfigError("model_length: expected an integer in [1, 2^32)")

    # -- JSON ----------------------------------------------------------------------------------

    def to_json_dict(self) -> dict[str, Any]:
        """A dict of JSON types (str, int, float, dict) for ``json.dumps``."""
        return {
            "round_id": self.round_id,
            "coordinator_pk": self.coordinator_pk.hex(),
            "sum_probability": self.sum_probability,
            "update_probability": self.update_probability,
            "seed": self.seed.hex(),
            "mask_config": {
                "vect": self.mask_config.vect.names(),
                "unit": self.mask_config.unit.names(),
            },
            "model_length": self.model_length,
        }

    @classmethod
    def from_json_dict(cls, data: object) -> RoundParameters:
        """Parse the output of ``json.loads``; any defect raises :class:`DecodeError`.

        Unknown keys are rejected so that a typo or an incompatible producer is noticed.
        """
        if not isinstance(data, Mapping):
            raise DecodeError("round parameters: expected a JSON object")
        missing = sorted(_JSON_FIELDS - data.keys())
        if missing:
            raise DecodeError(f"round parameters: missing field(s) {', '.join(missing)}")
        unknown = sorted(str(key) for key in data.keys() - _JSON_FIELDS)
        if unknown:
            raise DecodeError(f"round parameters: unknown field(s) {', '.join(unknown)}")
        for name in ("round_id", "model_length"):
            if not _is_int(data[name]):
                raise DecodeError(f"round parameters: {name}: expected an integer")
        for name in ("sum_probability", "update_probability"):
            if not _is_number(data[name]):
                raise DecodeError(f"round parameters: {name}: expected a number")
        try:
            return cls(
                round_id=data["round_id"],
                coordinator_pk=_hex_field(data, "coordinator_pk"),
                sum_probability=float(data["sum_probability"]),
                update_probability=float(data["update_probability"]),
                seed=_hex_field(data, "seed"),
                mask_config=_mask_config_field(data["mask_config"]),
                model_length=data["model_length"],
            )
        except ConfigError as err:
            raise DecodeError(f"round parameters: {err}") from None


def _hex_field(data: Mapping[str, object], name: str) -> bytes:
    value = data[name]
    # fullmatch rather than bytes.fromhex alone: fromhex also skips whitespace.
    if not isinstance(value, str) or not _HEX_32.fullmatch(value):
        raise DecodeError(f"round parameters: {name}: expected {_KEY_LENGTH * 2} hex digits")
    return bytes.fromhex(value)


def _mask_config_field(value: object) -> MaskConfigPair:
    if not isinstance(value, Mapping) or set(value) != {"vect", "unit"}:
        raise DecodeError("round parameters: mask_config: expected an object with vect and unit")
    halves = []
    for half in ("vect", "unit"):
        names = value[half]
        if not isinstance(names, Mapping) or set(names) != set(_CONFIG_FIELDS):
            raise DecodeError(
                f"round parameters: mask_config.{half}: expected an object with "
                f"{', '.join(_CONFIG_FIELDS)}"
            )
        if not all(isinstance(names[field], str) for field in _CONFIG_FIELDS):
            raise DecodeError(f"round parameters: mask_config.{half}: names are strings")
        try:
            halves.append(MaskConfig.from_names(*(names[field] for field in _CONFIG_FIELDS)))
        except ConfigError as err:
            raise DecodeError(f"round parameters: mask_config.{half}: {err}") from None
    return MaskConfigPair(halves[0], halves[1])


# -- round seed --------------------------------------------------------------------------------

_PROBABILITIES = struct.Struct("<dd")


def _seed_signing_keys(round_secret_key: bytes) -> SigningKeyPair:
    if not isinstance(round_secret_key, bytes | bytearray) or len(round_secret_key) != 32:
        raise LocalProtocolError("the round secret key is 32 bytes")
    return SigningKeyPair.from_seed(bytes(round_secret_key))


def next_round_seed(
    previous_seed: bytes,
    round_secret_key: bytes,
    sum_probability: float,
    update_probability: float,
) -> bytes:
    """The seed of a new round.

    SHA-256 of the Ed25519 signature of ``previous_seed || f64_le(p_sum) || f64_le(p_update)``,
    signed with the key whose seed is the new round's 32-byte X25519 secret key.
    """
    if not isinstance(previous_seed, bytes | bytearray) or len(previous_seed) != 32:
        raise LocalProtocolError("the previous round seed is 32 bytes")
    keys = _seed_signing_keys(round_secret_key)
    message = bytes(previous_seed) + _PROBABILITIES.pack(sum_probability, update_probability)
    return sha256(keys.sign(message))


def round_seed_verify_key(round_secret_key: bytes) -> bytes:
    """The Ed25519 public key behind :func:`next_round_seed` for this round secret key.

    The original never published it. Publishing it together with the signature lets
    participants check that the seed was derived as documented (though a coordinator that
    draws many round keys could still choose among seeds).
    """
    return _seed_signing_keys(round_secret_key).public
