"""tools/mint_token.py, the minting helper of `make token` and of the tests:
its key file, and that each of its tokens is what it says, judged by PyJWT
(pbp-fcgi's own verdict on such tokens is Tests/IdentityTests). No stack."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import mint_token  # noqa: E402


def decode(token, secret, **options):
    return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]}, **options)


def test_a_new_key_file_is_86_base64url_characters_and_private(tmp_path):
    path = tmp_path / "sub" / "jwt.key"
    secret = mint_token.ensure_key(str(path))
    text = path.read_bytes()
    assert text.endswith(b"\n") and len(text) == 87
    assert secret == text[:-1]
    assert all(chr(c).isalnum() or chr(c) in "-_" for c in secret)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert mint_token.ensure_key(str(path)) == secret, "an existing key is kept"


def test_the_secret_is_the_file_text_less_its_line_ends(tmp_path):
    path = tmp_path / "jwt.key"
    path.write_bytes(b"a-secret-someone-wrote-by-hand-0123456789\r\n")
    assert mint_token.read_secret(str(path)) == b"a-secret-someone-wrote-by-hand-0123456789"


def test_make_token_prints_a_token_for_pbp_user(tmp_path):
    key = tmp_path / "jwt.key"
    before = int(time.time())
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "mint_token.py"), "--key", str(key), "--sub", "alice", "--ttl", "60"],
        check=True, capture_output=True, text=True).stdout.strip()
    claims = decode(out, mint_token.read_secret(str(key)))
    assert claims["sub"] == "alice" and claims["role"] == "pbp_user"
    assert before + 60 <= claims["exp"] <= int(time.time()) + 60
    other = subprocess.run(
        [sys.executable, str(REPO / "tools" / "mint_token.py"), "--key", str(key), "--sub", "bob", "--role", ""],
        check=True, capture_output=True, text=True).stdout.strip()
    assert "role" not in decode(other, mint_token.read_secret(str(key)))
    refused = subprocess.run([sys.executable, str(REPO / "tools" / "mint_token.py"), "--key", str(key), "--sub", ""],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "SUB=" in refused.stderr


def test_bad_tokens_are_bad_in_the_way_they_say():
    secret = b"the-tests-hs256-secret-0123456789abcdef"
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(mint_token.expired(secret, "alice"), secret, leeway=60)
    with pytest.raises(jwt.ImmatureSignatureError):
        decode(mint_token.not_yet_valid(secret, "alice"), secret, leeway=60)
    with pytest.raises(jwt.MissingRequiredClaimError):
        decode(mint_token.without_expiry(secret, "alice"), secret)
    with pytest.raises(jwt.InvalidSignatureError):
        decode(mint_token.wrong_key("alice"), secret)
    genuine = mint_token.mint(secret, "alice")
    forged = mint_token.forged(genuine, role="postgres")
    assert jwt.decode(forged, options={"verify_signature": False})["role"] == "postgres"
    with pytest.raises(jwt.InvalidSignatureError):
        decode(forged, secret)
    none = mint_token.alg_none("alice")
    assert jwt.get_unverified_header(none)["alg"] == "none" and none.endswith(".")
    with pytest.raises(jwt.InvalidAlgorithmError):
        decode(none, secret)


@pytest.mark.parametrize("make_pair,algorithm", [(mint_token.ec_key_pair, "ES256"), (mint_token.rsa_key_pair, "RS256")])
def test_signed_tokens_verify_against_the_jwks_written(tmp_path, make_pair, algorithm):
    private_key, public_jwk = make_pair("key-1")
    assert "d" not in public_jwk, "the JWKS holds public keys only"
    path = tmp_path / "jwks.json"
    mint_token.write_jwks(str(path), [public_jwk])
    key_set = jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
    token = mint_token.mint_signed(private_key, algorithm, "key-1", sub="carol", aud="pbp")
    assert jwt.get_unverified_header(token)["kid"] == "key-1"
    claims = jwt.decode(token, key_set["key-1"].key, algorithms=[algorithm], audience="pbp")
    assert claims["sub"] == "carol" and claims["role"] == "pbp_user"
    assert os.path.getsize(path) > 0
