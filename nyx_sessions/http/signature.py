"""Discord's request signatures: Ed25519 over ``X-Signature-Timestamp`` + the raw body.

Discord signs every request it sends to an interactions endpoint with the application's
key; the public half is on the application's page of the developer portal, as 64 hex
digits. A request whose signature is missing or does not verify, or whose timestamp is
too far from now (a replayed request), must be refused with 401: Discord itself sends
such requests now and then and removes the endpoint URL of an application that accepts
them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SignatureVerifier"]

SIGNATURE_HEADER = "X-Signature-Ed25519"
"""The header with the hex Ed25519 signature."""

TIMESTAMP_HEADER = "X-Signature-Timestamp"
"""The header with the signing time, in Unix seconds; signed along with the body."""


class SignatureVerifier:
    """Checks that a request comes from Discord, signed with the application's key.

    Parameters
    ----------
    public_key:
        The application's public key: 64 hex digits, or its 32 bytes.
    max_age:
        Seconds that a timestamp may lie before or after now.
    clock:
        Unix time in seconds; default :func:`time.time`.

    Raises
    ------
    ValueError
        ``public_key`` is not an Ed25519 public key.
    """

    __slots__ = ("_clock", "_key", "max_age")

    def __init__(
        self,
        public_key: str | bytes,
        *,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raw = bytes.fromhex(public_key) if isinstance(public_key, str) else public_key
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes (64 hex digits)")
        self._key = VerifyKey(raw)
        self.max_age = max_age
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Return whether ``body`` and its ``headers`` carry a fresh, valid signature."""
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp or not timestamp.isdigit():
            return False
        if abs(self._clock() - int(timestamp)) > self.max_age:
            return False
        try:
            self._key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"<SignatureVerifier key={self._key.encode().hex()} max_age={self.max_age}>"
