"""Token rules the issue found missing: audience, issuer, a maximum lifetime, and where the key lives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest

from serving import auth

KEY = "k" * 40


def signed(**claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {"sub": "u1", "iat": now, "exp": now + 600, "iss": auth.ISSUER, "aud": auth.AUDIENCE}
    base |= claims
    return jwt.encode({k: v for k, v in base.items() if v is not None}, KEY, algorithm="HS256")


def test_minted_tokens_carry_issuer_and_audience():
    claims = jwt.decode(auth.mint_token("u1", KEY), KEY, algorithms=["HS256"], audience=auth.AUDIENCE)
    assert claims["iss"] == auth.ISSUER and claims["aud"] == auth.AUDIENCE
    assert auth.verify_token(signed(), KEY).user_id == "u1"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": None}, "aud"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": None}, "iss"),
        ({"iss": "evil"}, "issuer"),
        ({"iat": None}, "iat"),
        ({"exp": int(time.time()) + auth.MAX_TTL_SECONDS + 3600}, "lifetime"),
    ],
    ids=["no-aud", "wrong-aud", "no-iss", "wrong-iss", "no-iat", "too-long"],
)
def test_tokens_without_our_audience_issuer_or_a_bounded_lifetime_are_refused(claims, reason):
    with pytest.raises(auth.InvalidToken, match=reason):
        auth.verify_token(signed(**claims), KEY)


def test_minting_refuses_a_lifetime_over_the_maximum():
    with pytest.raises(ValueError, match="ttl_seconds"):
        auth.mint_token("u1", KEY, ttl_seconds=auth.MAX_TTL_SECONDS + 1)


def test_the_key_file_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Issue 11: started from another folder, the service silently made a new key there.
    monkeypatch.delenv("STREAMREC_JWT_KEY", raising=False)
    monkeypatch.delenv("STREAMREC_JWT_KEY_FILE", raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("STREAMREC_HOME", str(home))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    first = auth.key_from_env()
    monkeypatch.chdir(tmp_path / "b")
    assert auth.key_from_env() == first
    assert (home / "var" / "jwt.key").is_file()
    assert not (tmp_path / "a" / "var").exists() and not (tmp_path / "b" / "var").exists()
    # A relative STREAMREC_JWT_KEY_FILE is relative to the same base, not to the working directory.
    monkeypatch.setenv("STREAMREC_JWT_KEY_FILE", "var/jwt.key")
    assert auth.key_from_env() == first
    assert os.getcwd() == str(tmp_path / "b")


def test_the_default_base_is_the_project_not_the_working_directory(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STREAMREC_HOME", raising=False)
    assert auth.key_path() == auth.PROJECT_ROOT / "var" / "jwt.key"
    assert (auth.PROJECT_ROOT / "serving" / "auth.py").is_file()
