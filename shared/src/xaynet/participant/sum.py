"""A summer's two tasks: announce an ephemeral key (Sum), then aggregate the masks (Sum2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xaynet.crypto import EncryptKeyPair, SigningKeyPair
from xaynet.errors import DecodeError, DecryptionError, LocalProtocolError
from xaynet.mask import Aggregation, MaskObject, derive_mask
from xaynet.message import Message, Sum, Sum2
from xaynet.participant.role import Role, RoleDecision, require_role
from xaynet.round import RoundParameters

__all__ = ["SeedDecryptionError", "SumTask"]

_KEY_LENGTH = 32
_SEED_LENGTH = 32


class SeedDecryptionError(DecryptionError):
    """An updater's sealed mask seed does not open to a 32-byte seed with the ephemeral key.

    ``updater_pk`` names the updater, so the caller can report (or blame) it.
    """

    def __init__(self, updater_pk: bytes, message: str) -> None:
        super().__init__(message)
        self.updater_pk = updater_pk


@dataclass(frozen=True, slots=True)
class SumTask:
    """A summer's state for one round: its ephemeral X25519 key pair, derived from a seed.

    Keeping ``ephemeral_seed`` (not the key pair) is enough to resume the task later.
    """

    keys: SigningKeyPair = field(repr=False)
    params: RoundParameters
    decision: RoleDecision
    ephemeral_seed: bytes = field(repr=False)
    ephemeral_keys: EncryptKeyPair = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_role(self.keys, self.params, self.decision, Role.SUM)
        if (
            not isinstance(self.ephemeral_seed, bytes | bytearray)
            or len(self.ephemeral_seed) != _SEED_LENGTH
        ):
            raise LocalProtocolError(f"the ephemeral seed is {_SEED_LENGTH} bytes")
        object.__setattr__(self, "ephemeral_seed", bytes(self.ephemeral_seed))
        object.__setattr__(self, "ephemeral_keys", EncryptKeyPair.from_seed(self.ephemeral_seed))

    @property
    def ephemeral_pk(self) -> bytes:
        """The key updaters seal their mask seeds to."""
        return self.ephemeral_keys.public

    def sum_message(self) -> Message:
        """The Sum message announcing the ephemeral key."""
        return Message(
            self.keys.public,
            self.params.coordinator_pk,
            Sum(self.decision.sum_signature, self.ephemeral_pk),
        )

    def model_mask(self, encrypted_seeds: Mapping[bytes, bytes]) -> MaskObject:
        """Open every updater's seed and add up the masks they expand to.

        ``encrypted_seeds`` is this summer's column of the global seed dict: updater pk ->
        sealed seed. Raises :class:`SeedDecryptionError` for a seed that does not open and
        :class:`DecodeError` for an empty or malformed column.
        """
        if not encrypted_seeds:
            raise DecodeError("no encrypted seeds: there is no mask to aggregate")
        config, length = self.params.mask_config, self.params.model_length
        for updater_pk in encrypted_seeds:
            if not isinstance(updater_pk, bytes) or len(updater_pk) != _KEY_LENGTH:
                raise DecodeError(f"an updater public key is {_KEY_LENGTH} bytes")
        aggregation = Aggregation(config, length)
        # Sorted so that the work (and any error) does not depend on the mapping's order.
        for updater_pk in sorted(encrypted_seeds):
            try:
                seed = self.ephemeral_keys.open(encrypted_seeds[updater_pk])
            except DecryptionError:
                raise SeedDecryptionError(
                    updater_pk, f"the seed of updater {updater_pk.hex()} does not open"
                ) from None
            if len(seed) != _SEED_LENGTH:
                raise SeedDecryptionError(
                    updater_pk,
                    f"the seed of updater {updater_pk.hex()} is {len(seed)} bytes, "
                    f"not {_SEED_LENGTH}",
                )
            aggregation.add(derive_mask(seed, config=config, length=length))
        return aggregation.result()

    def sum2_message(self, encrypted_seeds: Mapping[bytes, bytes]) -> Message:
        """The Sum2 message: this summer's vote for the mask that unmasks the aggregate."""
        return Message(
            self.keys.public,
            self.params.coordinator_pk,
            Sum2(self.decision.sum_signature, self.model_mask(encrypted_seeds)),
        )
