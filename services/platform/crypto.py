"""Encryption of tokens at rest: Fernet under a list of keys, the first one encrypting (MultiFernet)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenDecryptionError(RuntimeError):
    """A stored token cannot be decrypted with any configured key."""


class TokenCipher:
    """Encrypts and decrypts secrets with MultiFernet so that keys can rotate."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("TOKEN_ENCRYPTION_KEYS is empty: at least one Fernet key is needed.")
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except ValueError as exc:
            raise ValueError("TOKEN_ENCRYPTION_KEYS holds a malformed key; generate one with `flask keys generate`.") from exc

    def encrypt(self, plaintext: str) -> str:
        """Return the ciphertext of plaintext under the newest key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext; :raises TokenDecryptionError: if no configured key opens it."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptionError("a stored token cannot be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ciphertext under the newest key; :raises TokenDecryptionError: if no key opens it."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptionError("a stored token cannot be decrypted with the configured keys") from exc


def generate_key() -> str:
    """Return a new Fernet key."""
    return Fernet.generate_key().decode()


def cipher_for(config: dict) -> TokenCipher:
    """Return the cipher configured by TOKEN_ENCRYPTION_KEYS."""
    keys = config["TOKEN_ENCRYPTION_KEYS"]
    return _cipher(tuple(keys) if isinstance(keys, list | tuple) else keys)


@functools.lru_cache(maxsize=8)
def _cipher(keys) -> TokenCipher:
    # Built once per key list: every callback and exchange encrypts or decrypts, and a changed list
    # (a rotation, a test) is simply another entry.
    return TokenCipher(keys)
