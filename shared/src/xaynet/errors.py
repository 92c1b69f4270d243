"""The package's exceptions.

As in h11, errors are split by whose fault they are:

* :class:`LocalProtocolError` -- the caller misused the API (wrong model length, a config the
  participant cannot serve, a missing crypto backend). Fix the calling code.
* :class:`RemoteProtocolError` -- bytes or objects that came from a peer break the protocol
  (malformed message, bad signature, undecryptable box, a mask object that cannot be aggregated).
  Reject the input; the local state is unchanged.

Every exception raised on purpose by ``xaynet`` derives from :class:`XaynetError`, so a decoder fed
arbitrary bytes raises nothing else.
"""

from __future__ import annotations

__all__ = [
    "XaynetError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ConfigError",
    "ModelError",
    "CryptoUnavailableError",
    "DecodeError",
    "DecryptionError",
    "SignatureError",
    "AggregationError",
]


class XaynetError(Exception):
    """Base class of every error the package raises on purpose."""


class LocalProtocolError(XaynetError):
    """The caller misused the API."""


class RemoteProtocolError(XaynetError):
    """Input from a peer breaks the protocol."""


class ConfigError(LocalProtocolError, ValueError):
    """An invalid masking configuration (unknown name or code, unusable combination)."""


class ModelError(LocalProtocolError, ValueError):
    """A local model or scalar the masking cannot take (length, type, non-finite value)."""


class CryptoUnavailableError(LocalProtocolError):
    """No crypto backend can be loaded in this runtime."""


class DecodeError(RemoteProtocolError, ValueError):
    """Bytes that do not decode to a valid protocol structure."""


class DecryptionError(RemoteProtocolError):
    """A sealed box that does not open with the given key."""


class SignatureError(RemoteProtocolError):
    """A signature that does not verify."""


class AggregationError(RemoteProtocolError):
    """A mask object that cannot be aggregated (or used to unmask) with the current state.

    ``reason`` is a stable machine-readable word: ``config_mismatch``, ``length_mismatch``,
    ``too_many_models``, ``out_of_range``, ``no_model``, ``zero_weight`` (all scalars were 0) or
    ``not_representable`` (the mean exceeds the float range).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
