"""The verified-token cache of ``shared.auth`` (used by intake on every request)."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.auth import mint_token, verify_token_cached

SECRET = "unit-test-secret-unit-test-secret-0123"


def test_cached_token_still_expires() -> None:
    token = mint_token(SECRET, subject="app", roles=["intake_client"], ttl_seconds=1)
    assert verify_token_cached(SECRET, token).subject == "app"
    assert verify_token_cached(SECRET, token).roles == frozenset({"intake_client"})
    time.sleep(2.1)  # exp has whole-second resolution
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_token_cached(SECRET, token)


def test_bad_tokens_are_refused_every_time() -> None:
    token = mint_token(SECRET, subject="app", roles=["agent"])
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            verify_token_cached("another-secret-another-secret-0123456", token)
        with pytest.raises(jwt.DecodeError):
            verify_token_cached(SECRET, token[:-3] + "!!!")
