"""Password rules and hashing (argon2-cffi itself; cheap parameters to keep tests fast)."""

from __future__ import annotations

import falcon
import pytest

from feedline.http.passwords import Passwords, password
from feedline.settings import AccountSettings

CHEAP = AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1)


@pytest.mark.parametrize("value", ["x" * 12, "x" * 128, "é" * 12, "correct horse battery"])
def test_accepted_passwords(value):
    assert password("password", value) == value


@pytest.mark.parametrize("value", ["x" * 11, "x" * 129, "", None, 123456789012, "a\x00" * 7])
def test_refused_passwords_are_422(value):
    with pytest.raises(falcon.HTTPUnprocessableEntity):
        password("password", value)


def test_hash_is_argon2id_and_verifies_only_the_right_password():
    passwords = Passwords(CHEAP)
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse batterY")
    assert not passwords.verify("not a hash", "correct horse battery")


def test_no_stored_hash_never_verifies():
    assert not Passwords(CHEAP).verify(None, "correct horse battery")


def test_a_raised_cost_asks_for_a_rehash():
    stored = Passwords(CHEAP).hash("correct horse battery")
    stronger = Passwords(AccountSettings(argon2_time_cost=2, argon2_memory_kib=8))
    assert stronger.verify(stored, "correct horse battery")
    assert stronger.needs_rehash(stored)
    assert not Passwords(CHEAP).needs_rehash(stored)
