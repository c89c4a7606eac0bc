"""Profile tokens: bearer JWTs (HS256) that say which profile a request acts for.

``sub`` is the profile (user) id. A token whose ``scope`` claim contains ``service`` (a trusted
gateway or a back-office job) may act for any profile. An optional ``max_maturity`` claim marks a
restricted (kids) profile: the feed never shows titles rated above it. ``name`` is the profile's
display name, shown in row titles.

Every token names its issuer (``iss``: streamrec) and audience (``aud``: streamrec-serving), which
are checked, and lives at most ``MAX_TTL_SECONDS`` (``exp - iat``, a week).

The signing key comes from configuration: ``STREAMREC_JWT_KEY`` or, when that is unset, a key file
(``STREAMREC_JWT_KEY_FILE``, default ``var/jwt.key`` under ``STREAMREC_HOME`` or the project, not the
working directory) created on first use, so that the service, the
``streamrec token USER`` command and the demo page on one machine agree without any setup.

    >>> key = "k" * 32
    >>> principal = verify_token(mint_token("u_1", key), key)
    >>> principal.user_id, principal.may_act_for("u_1"), principal.may_act_for("u_2")
    ('u_1', True, False)
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
SERVICE_SCOPE = "service"
MIN_KEY_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash output
DEFAULT_TTL_SECONDS = 24 * 3600
#: No token lives longer (exp - iat): a leaked token stops working within a week at most.
MAX_TTL_SECONDS = 7 * 24 * 3600
#: Who mints our tokens and whom they are for: a token minted for another service with the same
#: key (or by another issuer) is refused.
ISSUER = "streamrec"
AUDIENCE = "streamrec-serving"
DEFAULT_KEY_FILE = "var/jwt.key"
#: The folder a relative key path is taken from: ``STREAMREC_HOME``, else the project (the folder
#: holding the ``streamrec`` package), never the working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MATURITY_RATINGS = ("G", "PG", "PG-13", "R", "NC-17")  # ascending; kids profiles stop at PG


class InvalidToken(Exception):
    """The token is missing, malformed, expired or not signed with our key."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as, read from a verified token."""

    user_id: str
    scopes: frozenset[str] = frozenset()
    max_maturity: str | None = None
    name: str | None = None
    expires_at: float = float("inf")  # Unix seconds (the token's exp)

    @property
    def is_service(self) -> bool:
        return SERVICE_SCOPE in self.scopes

    def may_act_for(self, user_id: str) -> bool:
        """A profile acts only for itself; a service token for anyone."""
        return self.is_service or self.user_id == user_id


def check_key(key: str) -> str:
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ValueError(f"jwt key: must be at least {MIN_KEY_BYTES} bytes, got {len(key.encode())}")
    return key


def mint_token(
    user_id: str,
    key: str,
    *,
    scopes: tuple[str, ...] = (),
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    max_maturity: str | None = None,
    name: str | None = None,
    now: float | None = None,
) -> str:
    """A signed token for ``user_id`` (the CLI's ``streamrec token USER``, the demo, the tests)."""
    if not user_id:
        raise ValueError("user_id: must not be empty")
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds: must be between 1 and {MAX_TTL_SECONDS}, got {ttl_seconds}")
    if max_maturity is not None and max_maturity not in MATURITY_RATINGS:
        raise ValueError(f"max_maturity: must be one of {', '.join(MATURITY_RATINGS)}, got {max_maturity!r}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": user_id, "iat": issued, "exp": issued + ttl_seconds,
                                 "iss": ISSUER, "aud": AUDIENCE}
    if scopes:
        claims["scope"] = " ".join(scopes)  # space-separated, as in RFC 8693
    if max_maturity is not None:
        claims["max_maturity"] = max_maturity
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, check_key(key), algorithm=ALGORITHM)


def verify_token(token: str, key: str, *, leeway_seconds: float = 30.0) -> Principal:
    """The principal a token names; raises :class:`InvalidToken` with the reason otherwise."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],  # never taken from the token header
            leeway=leeway_seconds,
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken("token expired") from e
    except jwt.MissingRequiredClaimError as e:
        raise InvalidToken(f"invalid token: missing the {e.claim!r} claim") from e
    except jwt.InvalidAudienceError as e:
        raise InvalidToken(f"invalid token: wrong audience (expected {AUDIENCE!r})") from e
    except jwt.InvalidIssuerError as e:
        raise InvalidToken(f"invalid token: wrong issuer (expected {ISSUER!r})") from e
    except jwt.InvalidTokenError as e:
        raise InvalidToken(f"invalid token: {e}") from e
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise InvalidToken("invalid token: iat and exp must be numbers")
    if expires - issued > MAX_TTL_SECONDS:
        raise InvalidToken(f"invalid token: lifetime (exp - iat) over {MAX_TTL_SECONDS} s")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("invalid token: sub must be a non-empty string")
    scope = claims.get("scope", "")
    maturity = claims.get("max_maturity")
    if maturity is not None and maturity not in MATURITY_RATINGS:
        raise InvalidToken(f"invalid token: unknown max_maturity {maturity!r}")
    name = claims.get("name")
    return Principal(
        user_id=subject,
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        max_maturity=maturity,
        name=name if isinstance(name, str) else None,
        expires_at=float(claims["exp"]) + leeway_seconds,
    )


def key_path(root: Path | None = None) -> Path:
    """Where the key file is: ``STREAMREC_JWT_KEY_FILE`` (default ``var/jwt.key``); a relative
    path is relative to ``root``, else ``STREAMREC_HOME``, else the project: never the working
    directory, so every process of one installation finds the same key wherever it starts."""
    path = Path(os.environ.get("STREAMREC_JWT_KEY_FILE") or DEFAULT_KEY_FILE)
    if path.is_absolute():
        return path
    base = root or Path(os.environ.get("STREAMREC_HOME") or PROJECT_ROOT)
    return base.resolve() / path


def key_from_env(root: Path | None = None) -> str:
    """The signing key: ``STREAMREC_JWT_KEY``, else the key file (:func:`key_path`), created with
    mode 0600 on first use; a key made is logged with its path (never a silent new key)."""
    key = os.environ.get("STREAMREC_JWT_KEY")
    if key:
        return check_key(key)
    path = key_path(root)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once agree on whichever key was written first.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            log.warning("made a new JWT signing key in %s: tokens signed with any other key are refused", path)
    return check_key(path.read_text().strip())
