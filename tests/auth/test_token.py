"""Token verification without a server: tokens minted here by a throwaway CA."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from werkzeug.datastructures import Headers

from distribution.auth import Access, Forbidden, Unauthenticated, keys
from distribution.auth import token as token_module
from distribution.auth.token import InvalidToken, TokenController
from distribution.config import ConfigError
from tests.auth.tokens import (
    ISSUER,
    NOW,
    SERVICE,
    Authority,
    certificate,
    der64,
    ec_key,
    repository,
    rsa_key,
)

REALM = "https://auth.example.com/token"


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority()


@pytest.fixture(scope="module")
def controller(authority: Authority) -> TokenController:
    return TokenController(REALM, SERVICE, ISSUER, [authority.root], {})


def bearer(token: str) -> Headers:
    return Headers({"Authorization": f"Bearer {token}"})


PULL_FOO = [Access("repository", "foo", "pull")]
PUSH_FOO = [Access("repository", "foo", "pull"), Access("repository", "foo", "push")]


def test_x5c_chain_through_an_intermediate(controller, authority):
    grant = controller.authorized(bearer(authority.mint([repository("foo", "pull")])), PULL_FOO)
    assert grant.user == "alice"


def test_ec_leaf_signs_es256(authority):
    ec_authority = Authority(leaf_key=ec_key())
    controller = TokenController(REALM, SERVICE, ISSUER, [ec_authority.root], {})
    token = ec_authority.mint([repository("foo", "pull")])
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert controller.authorized(bearer(token), PULL_FOO).user == "alice"


@pytest.mark.parametrize("key_id", [keys.libtrust_key_id, keys.thumbprint])
def test_kid_of_a_key_in_the_bundle(authority, key_id):
    """docker_auth/GitLab (libtrust fingerprint) and Go 3 (RFC 7638) name the bundle's key."""
    signer = rsa_key()
    cert = certificate("Token Signer", signer)  # the bundle holds the signing cert itself
    controller = TokenController(REALM, SERVICE, ISSUER, [cert], {})
    token = authority.mint([], headers={"kid": key_id(signer.public_key())}, key=signer)
    assert controller.authorized(bearer(token), []).user == "alice"


def test_libtrust_key_id_format():
    key_id = keys.libtrust_key_id(rsa_key().public_key())
    groups = key_id.split(":")
    assert len(groups) == 12 and all(len(g) == 4 and g.isalnum() for g in groups)


def test_go_ec_thumbprint_alias_selects_the_key(authority):
    """Go 3 (and token servers copying it) hash the curve's generator for EC keys."""
    signer = ec_key()
    cert = certificate("EC Signer", signer)
    controller = TokenController(REALM, SERVICE, ISSUER, [cert], {})
    alias = keys._go_generator_thumbprint(signer.public_key())
    assert alias == keys._go_generator_thumbprint(ec_key().public_key())
    token = authority.mint([], headers={"kid": alias, "alg": "ES256"}, key=signer)
    assert controller.authorized(bearer(token), []).user == "alice"
    other = authority.mint([], headers={"kid": alias, "alg": "ES256"}, key=ec_key())
    with pytest.raises(Unauthenticated):
        controller.authorized(bearer(other), [])


def test_jwks_key_by_kid(tmp_path, authority):
    signer = ec_key()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signer.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "key-1"}]}))
    controller = token_module.from_parameters(
        {"realm": REALM, "service": SERVICE, "issuer": ISSUER, "jwks": str(tmp_path / "jwks.json")}
    )
    token = authority.mint([], headers={"kid": "key-1", "alg": "ES256"}, key=signer)
    assert controller.authorized(bearer(token), []).user == "alice"


def test_jwk_header_must_be_a_trusted_key(authority):
    signer = rsa_key()
    controller = TokenController(REALM, SERVICE, ISSUER, [certificate("S", signer)], {})
    trusted = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signer.public_key()))
    assert controller.authorized(
        bearer(authority.mint([], headers={"jwk": trusted}, key=signer)), []
    )
    stranger = rsa_key()
    untrusted = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(stranger.public_key()))
    with pytest.raises(Unauthenticated):
        controller.authorized(
            bearer(authority.mint([], headers={"jwk": untrusted}, key=stranger)), []
        )


def _unsigned(authority: Authority) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = json.dumps(authority.claims([repository("foo", "pull")])).encode()
    return f"{header}.{base64.urlsafe_b64encode(claims).rstrip(b'=').decode()}."


def _resigned(authority: Authority) -> str:
    """Same claims and x5c, signature by a key the chain does not certify."""
    return authority.mint([repository("foo", "pull")], key=rsa_key())


def _tampered(authority: Authority) -> str:
    head, _, signature = authority.mint([repository("foo", "pull")]).split(".")
    claims = authority.claims([repository("foo", "pull", "push", "delete")])
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


def _foreign_chain(authority: Authority) -> str:
    stranger = Authority()
    return stranger.mint([repository("foo", "pull")])


def _hmac_with_public_key(authority: Authority) -> str:
    public = authority.leaf_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "x5c": authority.x5c}).encode()
    ).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(authority.claims([])).encode()).rstrip(b"=")
    signing_input = header + b"." + body
    signature = hmac.new(public, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


BAD_TOKENS = {
    "unsigned alg none": _unsigned,
    "re-signed by another key": _resigned,
    "claims changed after signing": _tampered,
    "chain from an untrusted CA": _foreign_chain,
    "HMAC keyed with the public key": _hmac_with_public_key,
    "expired": lambda a: a.mint([], exp=int(time.time()) - 120),
    "not yet valid": lambda a: a.mint([], nbf=int(time.time()) + 600),
    "wrong audience": lambda a: a.mint([], aud="another-registry"),
    "wrong issuer": lambda a: a.mint([], iss="someone-else"),
    "no expiry": lambda a: a.mint([], exp=None),
    "expiry not a number": lambda a: a.mint([], exp="tomorrow"),
    "no key named": lambda a: a.mint([], headers={}),
    "unknown kid": lambda a: a.mint([], headers={"kid": "ABCD:EFGH"}),
    "x5c not a list": lambda a: a.mint([], headers={"x5c": "abc"}),
    "x5c garbage": lambda a: a.mint([], headers={"x5c": ["!!!not base64"]}),
    "x5c not DER": lambda a: a.mint([], headers={"x5c": [base64.b64encode(b"junk").decode()]}),
    "garbage": lambda a: "not.a.token",
    "two parts": lambda a: "abc.def",
    "binary junk": lambda a: base64.b64encode(bytes(range(256))).decode(),
    "header not JSON": lambda a: "bm90IGpzb24.e30.c2ln",
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_401_invalid_token(controller, authority, make):
    with pytest.raises(Unauthenticated) as caught:
        controller.authorized(bearer(make(authority)), PULL_FOO)
    challenge = caught.value.challenge
    assert challenge.startswith(f'Bearer realm="{REALM}",service="{SERVICE}"')
    assert challenge.endswith(',scope="repository:foo:pull",error="invalid_token"')


def test_expired_leaf_certificate_is_refused(authority):
    old = Authority()
    old.leaf = certificate(
        "Old Signer",
        old.leaf_key,
        (old.intermediate, old.intermediate_key),
        start=NOW - datetime.timedelta(days=3),
    )
    controller = TokenController(REALM, SERVICE, ISSUER, [old.root], {})
    with pytest.raises(InvalidToken, match="not valid now"):
        controller.verify(old.mint([]))


def test_a_leaf_cannot_act_as_an_intermediate(authority):
    """A non-CA certificate in the chain cannot vouch for the next one."""
    rogue_key = rsa_key()
    rogue = certificate("Rogue", rogue_key, (authority.leaf, authority.leaf_key))
    token = jwt.encode(
        authority.claims([]),
        rogue_key,
        algorithm="RS256",
        headers={"x5c": [der64(rogue), *authority.x5c]},
    )
    controller = TokenController(REALM, SERVICE, ISSUER, [authority.root], {})
    with pytest.raises(InvalidToken, match="does not lead to a root"):
        controller.verify(token)


def test_leeway_accepts_small_clock_skew(controller, authority):
    token = authority.mint([], exp=int(time.time()) - 30, nbf=int(time.time()) + 30)
    assert controller.verify(token)["sub"] == "alice"


def test_audience_list_containing_the_service(controller, authority):
    assert controller.verify(authority.mint([], aud=["other", SERVICE]))


def test_missing_action_is_403_insufficient_scope(controller, authority):
    token = authority.mint([repository("foo", "pull")], sub="bob")
    with pytest.raises(Forbidden) as caught:
        controller.authorized(bearer(token), PUSH_FOO)
    assert caught.value.user == "bob"
    assert caught.value.challenge.endswith(
        ',scope="repository:foo:pull,push",error="insufficient_scope"'
    )


def test_wildcard_action_and_other_repositories(controller, authority):
    token = authority.mint([repository("foo", "*"), repository("bar", "pull")])
    controller.authorized(bearer(token), [*PUSH_FOO, Access("repository", "foo", "delete")])
    with pytest.raises(Forbidden):
        controller.authorized(bearer(token), [Access("repository", "baz", "pull")])


def test_catalog_needs_the_registry_grant(controller, authority):
    catalog = [Access("registry", "catalog", "*")]
    with pytest.raises(Forbidden):
        controller.authorized(bearer(authority.mint([repository("foo", "*")])), catalog)
    grant = {"type": "registry", "name": "catalog", "actions": ["*"]}
    controller.authorized(bearer(authority.mint([grant])), catalog)


@pytest.mark.parametrize(
    "claim", [None, "all", [1, "x"], [{"type": "repository", "name": "foo", "actions": "pull"}]]
)
def test_malformed_access_claim_grants_nothing(controller, authority, claim):
    token = authority.mint(claim)
    with pytest.raises(Forbidden):
        controller.authorized(bearer(token), PULL_FOO)


@pytest.mark.parametrize(
    "header", [None, "Basic dXNlcjpwdw==", "Bearer", "Bearer    ", "bearer" + " x" * 20000]
)
def test_no_usable_bearer_is_a_plain_challenge(controller, header):
    headers = Headers({"Authorization": header} if header else {})
    with pytest.raises(Unauthenticated) as caught:
        controller.authorized(headers, PULL_FOO)
    assert "error=" not in caught.value.challenge


def test_autoredirect_realm_uses_the_request_host(authority, tmp_path):
    controller = token_module.from_parameters(
        {
            "realm": "ignored",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(authority.write_bundle(tmp_path)),
            "autoredirect": True,
        }
    )
    headers = Headers({"Host": "registry.example.com", "X-Forwarded-Proto": "http"})
    with pytest.raises(Unauthenticated) as caught:
        controller.authorized(headers, [])
    assert caught.value.challenge == (
        'Bearer realm="http://registry.example.com/auth/token",service="test-registry"'
    )


def parameters(tmp_path: Path, authority: Authority, **changes) -> dict:
    values = {
        "realm": REALM,
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(authority.write_bundle(tmp_path)),
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"realm": None}, "auth.token.realm"),
        ({"realm": "not a url"}, "auth.token.realm"),
        ({"realm": "ftp://x/token"}, "auth.token.realm"),
        ({"service": ""}, "auth.token.service"),
        ({"issuer": 42}, "auth.token.issuer"),
        ({"rootcertbundle": None}, "auth.token"),
        ({"rootcertbundle": "/nonexistent/bundle.pem"}, "auth.token.rootcertbundle"),
        ({"signingalgorithms": ["HS257"]}, "auth.token.signingalgorithms"),
        ({"signingalgorithms": ["none"]}, "auth.token.signingalgorithms"),
        ({"autoredirect": "yes please"}, "auth.token.autoredirect"),
    ],
)
def test_bad_options_name_their_key(tmp_path, authority, changes, key):
    with pytest.raises(ConfigError) as caught:
        token_module.check(parameters(tmp_path, authority, **changes))
    assert caught.value.key == key


def test_unreadable_bundle_and_jwks(tmp_path, authority):
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        token_module.check(
            parameters(tmp_path, authority, rootcertbundle=str(tmp_path / "junk.pem"))
        )
    assert caught.value.key == "auth.token.rootcertbundle"
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    with pytest.raises(ConfigError) as caught:
        token_module.check(parameters(tmp_path, authority, jwks=str(tmp_path / "jwks.json")))
    assert caught.value.key == "auth.token.jwks"


def test_signing_algorithms_restrict_what_is_accepted(tmp_path, authority):
    controller = token_module.from_parameters(
        parameters(tmp_path, authority, signingalgorithms=["ES256"])
    )
    with pytest.raises(InvalidToken, match="not accepted"):
        controller.verify(authority.mint([]))


def _hmac_controller(tmp_path: Path, authority: Authority, **extra) -> TokenController:
    """A controller whose jwks has a symmetric key ``shared`` besides an EC key ``ec-1``."""
    signer = ec_key()
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signer.public_key()))
    secret = base64.urlsafe_b64encode(b"s" * 32).rstrip(b"=").decode()
    document = {"keys": [{**ec_jwk, "kid": "ec-1"}, {"kty": "oct", "kid": "shared", "k": secret}]}
    (tmp_path / "jwks.json").write_text(json.dumps(document))
    return token_module.from_parameters(
        parameters(tmp_path, authority, jwks=str(tmp_path / "jwks.json"), **extra)
    )


def _hs256(authority: Authority, secret: bytes, headers: dict) -> str:
    return jwt.encode(
        authority.claims([repository("foo", "pull")]),
        secret,
        algorithm="HS256",
        headers=headers,
    )


def test_hmac_token_verified_with_the_oct_key_its_kid_names(tmp_path, authority):
    """Go 3's HS256 in ``signingalgorithms``, with a symmetric key of ``jwks``."""
    controller = _hmac_controller(tmp_path, authority)
    token = _hs256(authority, b"s" * 32, {"kid": "shared"})
    assert controller.authorized(bearer(token), PULL_FOO).user == "alice"
    with pytest.raises(InvalidToken):
        controller.verify(_hs256(authority, b"x" * 32, {"kid": "shared"}))


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"kid": "ec-1"}, "no symmetric key 'ec-1'"),  # a public key is never an HMAC secret
        ({"kid": "missing"}, "no symmetric key 'missing'"),
        ({}, "by kid alone"),
        ({"kid": "shared", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}, "by kid alone"),
    ],
)
def test_hmac_token_with_any_other_key_is_refused(tmp_path, authority, headers, reason):
    controller = _hmac_controller(tmp_path, authority)
    with pytest.raises(InvalidToken, match=reason):
        controller.verify(_hs256(authority, b"s" * 32, headers))


def test_hmac_keyed_with_a_public_key_of_jwks_is_refused(tmp_path, authority):
    """The classic confusion: HS256 keyed with the PEM of a trusted public key."""
    controller = _hmac_controller(tmp_path, authority)
    public = authority.leaf_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for headers in ({"kid": "ec-1"}, {"x5c": authority.x5c}):
        token = jwt.api_jws.PyJWS().encode(
            json.dumps(authority.claims([])).encode(), b"k" * 32, algorithm="HS256", headers=headers
        )
        forged = token.rsplit(".", 1)[0]
        signature = hmac.new(public, forged.encode(), hashlib.sha256).digest()
        forged += "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
        with pytest.raises(InvalidToken):
            controller.verify(forged)


def test_hmac_needs_its_algorithm_in_signingalgorithms(tmp_path, authority):
    controller = _hmac_controller(tmp_path, authority, signingalgorithms=["ES256"])
    with pytest.raises(InvalidToken, match="not accepted"):
        controller.verify(_hs256(authority, b"s" * 32, {"kid": "shared"}))


def test_an_oct_key_without_a_kid_is_refused_at_start_up(tmp_path, authority):
    document = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}
    (tmp_path / "jwks.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        token_module.check(parameters(tmp_path, authority, jwks=str(tmp_path / "jwks.json")))
    assert caught.value.key == "auth.token.jwks"
    assert "needs a kid" in caught.value.message
