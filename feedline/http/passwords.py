"""Hash and check passwords with argon2id (argon2-cffi), the memory-hard KDF OWASP advises.

The hash is a PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) that carries its
own parameters, so raising the cost in the settings re-hashes a password at its owner's
next successful login (:meth:`Passwords.needs_rehash`) without breaking older hashes.

A login for a handle that does not exist, or a user with no password, still pays one
verification against a fixed dummy hash: the answer takes as long as a wrong password,
so timing does not tell which handles exist.
"""

from __future__ import annotations

import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from feedline.http.validation import bounded_text
from feedline.settings import AccountSettings

# ASVS 4.0 2.1.1/2.1.2: at least 12 characters, at least 64 allowed, no more than 128;
# no composition rules.
MIN_CHARS = 12
MAX_CHARS = 128


def password(name: str, value: Any) -> str:
    """Accept 12..128 characters of text (any, no NUL); a request field validator."""
    return bounded_text(name, value, MIN_CHARS, MAX_CHARS)


class Passwords:
    """Hash new passwords and verify candidates at the configured argon2id cost."""

    def __init__(self, accounts: AccountSettings):
        self._hasher = PasswordHasher(
            time_cost=accounts.argon2_time_cost,
            memory_cost=accounts.argon2_memory_kib,
            parallelism=accounts.argon2_parallelism,
        )
        self._dummy: str | None = None

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored: str | None, candidate: str) -> bool:
        """Tell whether ``candidate`` matches ``stored``; None costs the same and is False."""
        if stored is None:
            if self._dummy is None:  # the hash of a random secret nobody knows
                self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
            stored = self._dummy
        try:
            return self._hasher.verify(stored, candidate)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
