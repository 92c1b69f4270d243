"""An updater's task: mask the local model and seal the mask seed to every summer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xaynet.crypto import SigningKeyPair, seal
from xaynet.errors import DecodeError, LocalProtocolError, ModelError
from xaynet.mask import MaskObject, mask_model
from xaynet.mask.encoding import Scalar
from xaynet.message import LocalSeedDict, Message, Update
from xaynet.participant.role import Role, RoleDecision, require_role
from xaynet.round import RoundParameters

__all__ = ["UpdateTask"]

_KEY_LENGTH = 32
_SEED_LENGTH = 32


@dataclass(frozen=True, slots=True)
class UpdateTask:
    """An updater's state for one round."""

    keys: SigningKeyPair = field(repr=False)
    params: RoundParameters
    decision: RoleDecision

    def __post_init__(self) -> None:
        require_role(self.keys, self.params, self.decision, Role.UPDATE)

    def masked_model(self, model: Any, *, scalar: Scalar = 1, mask_seed: bytes) -> MaskObject:
        """``model`` (a sequence of numbers or a 1-d numpy array) masked with ``mask_seed``.

        ``scalar`` (int, float or Fraction, >= 0) is the aggregation weight, e.g. the number of
        training samples (FedAvg); it is clamped to the round's unit bound. Raises
        :class:`ModelError` for a model of the wrong length or with values the round's data type
        cannot take.
        """
        try:
            length = len(model)
        except TypeError:
            raise ModelError(
                f"the model must be a sequence of numbers, got {type(model).__name__}"
            ) from None
        if length != self.params.model_length:
            raise ModelError(
                f"the model has {length} values, the round expects {self.params.model_length}"
            )
        _check_seed(mask_seed)
        return mask_model(mask_seed, model, config=self.params.mask_config, scalar=scalar)

    def update_message(
        self,
        model: Any,
        *,
        scalar: Scalar = 1,
        mask_seed: bytes,
        sum_dict: Mapping[bytes, bytes],
    ) -> Message:
        """The Update message: the masked model and ``mask_seed`` sealed to every summer.

        ``mask_seed`` must be 32 fresh random bytes, never reused. ``sum_dict`` is the round's
        sum dict (summer pk -> ephemeral pk); an empty or malformed one raises
        :class:`DecodeError`.
        """
        seed_dict = self.local_seed_dict(mask_seed, sum_dict)
        masked = self.masked_model(model, scalar=scalar, mask_seed=mask_seed)
        update_sig = self.decision.update_signature
        if update_sig is None:  # pragma: no cover - RoleDecision guarantees it for updaters
            raise LocalProtocolError("an update decision carries an update signature")
        return Message(
            self.keys.public,
            self.params.coordinator_pk,
            Update(self.decision.sum_signature, update_sig, masked, seed_dict),
        )

    @staticmethod
    def local_seed_dict(mask_seed: bytes, sum_dict: Mapping[bytes, bytes]) -> LocalSeedDict:
        """``mask_seed`` sealed to the ephemeral key of every summer in ``sum_dict``."""
        _check_seed(mask_seed)
        if not sum_dict:
            raise DecodeError("the sum dict is empty: there is no summer to send the seed to")
        for summer_pk, ephm_pk in sum_dict.items():
            if not isinstance(summer_pk, bytes) or len(summer_pk) != _KEY_LENGTH:
                raise DecodeError(f"a summer public key in the sum dict is {_KEY_LENGTH} bytes")
            if not isinstance(ephm_pk, bytes) or len(ephm_pk) != _KEY_LENGTH:
                raise DecodeError(f"an ephemeral key in the sum dict is {_KEY_LENGTH} bytes")
        seed = bytes(mask_seed)
        # Sorted: the message layout must not depend on the mapping's iteration order.
        return LocalSeedDict(
            (summer_pk, seal(sum_dict[summer_pk], seed)) for summer_pk in sorted(sum_dict)
        )


def _check_seed(mask_seed: bytes) -> None:
    if not isinstance(mask_seed, bytes | bytearray) or len(mask_seed) != _SEED_LENGTH:
        raise LocalProtocolError(f"a mask seed is {_SEED_LENGTH} bytes")
