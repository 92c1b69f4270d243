"""Turning a message into the request bodies a driver POSTs to the coordinator."""

from __future__ import annotations

from xaynet.crypto import SigningKeyPair
from xaynet.message import Message, seal_message, split_message

__all__ = ["sealed_requests"]


def sealed_requests(
    message: Message,
    keys: SigningKeyPair,
    *,
    max_message_size: int | None,
    message_id: int,
) -> list[bytes]:
    """Sign and seal ``message`` (or its chunks) to the coordinator key in its header.

    ``max_message_size`` limits each sealed body (``None``: unlimited, one body). When the
    message is longer it is split into chunk messages sharing ``message_id`` (a u16 the caller
    draws at random), each signed and sealed on its own. Send the bodies in order; a failed
    send is retried with the same body.
    """
    parts = split_message(message, max_message_size=max_message_size, message_id=message_id)
    return [seal_message(part.to_bytes(keys), message.coordinator_pk) for part in parts]
