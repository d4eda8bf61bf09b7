"""Check token generation, hashing and Authorization header parsing."""

from __future__ import annotations

import hashlib

import pytest

from feedline.http import auth


def test_tokens_are_long_random_and_well_formed():
    tokens = {auth.new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(auth.TOKEN_RE.fullmatch(t) and len(t) >= 43 for t in tokens)


def test_hash_is_sha256_of_the_token():
    token = auth.new_token()
    assert auth.hash_token(token) == hashlib.sha256(token.encode()).digest()
    assert len(auth.hash_token(token)) == 32


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_header_yields_the_token(scheme):
    token = auth.new_token()
    assert auth.bearer_token(f"{scheme} {token}") == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abcdefghijklmnopqrstu",
        "Bearer short",
        "Bearer has space inside the token",
        "Bearer ünïcödeünïcödeünïcöde",
    ],
)
def test_malformed_headers_yield_nothing(header):
    assert auth.bearer_token(header) is None
