#!/usr/bin/env python3
"""Mints the JSON Web Tokens pbp-fcgi verifies, for people and for tests.

`make token SUB=alice` runs this: it prints a HS256 token for role pbp_user
(ROLE=, TTL= seconds, AUD=) signed with .pbp/jwt.key, which it creates if
missing. The integration tests import it for the tokens they need, good and
bad alike: expired, not yet valid, alg none, forged, signed with another key,
and RS256/ES256 tokens with a JWKS to match.

The key file (the format Sources/Identity reads): the HS256 secret is the
file's bytes, less the line ends at its end. A file made here holds 64
random bytes written as base64url (86 characters) and a newline; the secret is
that text itself, not the bytes it encodes, so any JWT library given the text
signs tokens pbp-fcgi accepts (`jwt.encode(claims, open(path).read().strip(), "HS256")`).
"""

import argparse
import base64
import json
import os
import secrets
import sys
import time

import jwt

DEFAULT_ROLE = "pbp_user"
DEFAULT_TTL = 3600


# --- The key file --------------------------------------------------------------


def read_secret(path):
    """The HS256 secret of a key file, as pbp-fcgi reads it."""
    with open(path, "rb") as file:
        return file.read().rstrip(b"\r\n")


def ensure_key(path):
    """The secret of the key file at `path`, made first (mode 0600) if there is none."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    text = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=") + b"\n"
    try:
        # O_EXCL: two makes at once must not each write a key and sign with different ones.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret(path)
    with os.fdopen(descriptor, "wb") as file:
        file.write(text)
    return read_secret(path)


# --- Good tokens ---------------------------------------------------------------


def claims_for(sub=None, role=DEFAULT_ROLE, ttl=DEFAULT_TTL, now=None, aud=None, extra=None):
    """The claims of a token: `exp` ttl seconds after `now`, `iat` now; `role`
    None leaves the claim out (the verifier then uses its default token role)."""
    now = int(time.time()) if now is None else now
    claims = {"iat": now, "exp": now + ttl}
    if sub is not None:
        claims["sub"] = sub
    if role is not None:
        claims["role"] = role
    if aud is not None:
        claims["aud"] = aud
    claims.update(extra or {})
    return claims


def mint(secret, sub=None, role=DEFAULT_ROLE, ttl=DEFAULT_TTL, now=None, aud=None, extra=None, headers=None):
    """A HS256 token signed with `secret` (bytes or text)."""
    return jwt.encode(claims_for(sub, role, ttl, now, aud, extra), secret, algorithm="HS256", headers=headers)


def mint_signed(private_key, algorithm, kid, sub=None, role=DEFAULT_ROLE, ttl=DEFAULT_TTL, now=None, aud=None,
                extra=None):
    """A RS256 or ES256 token signed with a key from `rsa_key_pair`/`ec_key_pair`, naming `kid`."""
    return jwt.encode(claims_for(sub, role, ttl, now, aud, extra), private_key, algorithm=algorithm,
                      headers={"kid": kid})


# --- Bad tokens ----------------------------------------------------------------


def expired(secret, sub=None, role=DEFAULT_ROLE, seconds_ago=3600, **options):
    """A token whose `exp` passed `seconds_ago` seconds ago (well beyond any skew)."""
    now = int(time.time())
    return mint(secret, sub, role, ttl=seconds_ago, now=now - 2 * seconds_ago, **options)


def not_yet_valid(secret, sub=None, role=DEFAULT_ROLE, seconds_ahead=3600, **options):
    """A token whose `nbf` is `seconds_ahead` seconds from now."""
    extra = {"nbf": int(time.time()) + seconds_ahead}
    return mint(secret, sub, role, ttl=2 * seconds_ahead, extra=extra, **options)


def without_expiry(secret, sub=None, role=DEFAULT_ROLE):
    claims = claims_for(sub, role)
    del claims["exp"]
    return jwt.encode(claims, secret, algorithm="HS256")


def alg_none(sub=None, role=DEFAULT_ROLE, ttl=DEFAULT_TTL):
    """An unsigned token (`alg: none`), which must never be accepted."""
    return _join({"alg": "none", "typ": "JWT"}, claims_for(sub, role, ttl), b"")


def forged(token, **changes):
    """`token` with its claims changed (e.g. role="postgres") and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(_unbase64url(payload))
    claims.update(changes)
    return header + "." + _base64url(json.dumps(claims).encode()) + "." + signature


def wrong_key(sub=None, role=DEFAULT_ROLE, ttl=DEFAULT_TTL):
    """A well-formed HS256 token signed with a secret pbp-fcgi does not have."""
    return mint(secrets.token_urlsafe(48), sub, role, ttl)


def _base64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unbase64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _join(header, claims, signature):
    return ".".join([_base64url(json.dumps(header).encode()), _base64url(json.dumps(claims).encode()),
                     _base64url(signature)])


# --- RS256/ES256 keys and the JWKS pbp-fcgi reads --------------------------------
# These need the `cryptography` package (pinned with PyJWT in the Makefile).


def ec_key_pair(kid):
    """A P-256 private key and its public JWK (a dict with kid and alg ES256)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return private_key, jwk


def rsa_key_pair(kid, bits=2048):
    """An RSA private key and its public JWK (a dict with kid and alg RS256)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return private_key, jwk


def write_jwks(path, public_jwks):
    with open(path, "w") as file:
        json.dump({"keys": list(public_jwks)}, file)


# --- make token ------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print a HS256 token pbp-fcgi accepts.")
    parser.add_argument("--key", default=".pbp/jwt.key", help="the HS256 key file, created if missing")
    parser.add_argument("--sub", required=True, help="the user (sub claim)")
    parser.add_argument("--role", default=DEFAULT_ROLE,
                        help="the PostgreSQL role (role claim); empty leaves the claim out")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="seconds until it expires")
    parser.add_argument("--aud", default=None, help="the audience (aud claim), when pbp-fcgi checks one")
    options = parser.parse_args(argv)
    if not options.sub:
        parser.error("the user is empty: make token SUB=alice")
    if options.ttl <= 0:
        parser.error("TTL must be a positive number of seconds")
    secret = ensure_key(options.key)
    print(mint(secret, options.sub, options.role or None, options.ttl, aud=options.aud))
    return 0


if __name__ == "__main__":
    sys.exit(main())
