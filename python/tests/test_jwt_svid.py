"""JWT-SVIDs across implementations: tokens minted by meshtls validated by PyJWT and by
py-spiffe's ``JwtSvid`` (PyPI ``spiffe``), and tokens minted by PyJWT (with keys made by
pyca/cryptography) validated by meshtls; plus the policy rules seen from Python."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess

import pytest

import meshtls

jwt = pytest.importorskip("jwt", reason="PyJWT is not installed (python/requirements-test.txt)")
spiffe = pytest.importorskip(
    "spiffe", reason="py-spiffe is not installed (python/requirements-test.txt)"
)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

TD = "example.org"
SUB = "spiffe://example.org/ns/web/sa/frontend"
KINDS = [("ec-p256", "ES256"), ("ec-p384", "ES384"), ("rsa-2048", "RS256")]


def _now() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp())


@pytest.mark.parametrize("kind,alg", KINDS)
def test_pyjwt_validates_meshtls_tokens(kind: str, alg: str) -> None:
    signer = meshtls.JwtSigner.generate(TD, key=kind)
    token = signer.mint(SUB, ["billing", "audit"], ttl=dt.timedelta(minutes=5))
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": signer.kid, "typ": "JWT"}
    keys = jwt.PyJWKSet.from_json(signer.jwks(shape="workload-api"))
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    claims = jwt.decode(token, key.key, algorithms=[alg], audience="audit")
    assert claims["sub"] == SUB
    assert claims["aud"] == ["billing", "audit"]
    # PyJWT itself refuses another audience: the token really carries what meshtls wrote.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=[alg], audience="other")


@pytest.mark.parametrize("shape", ["spiffe", "workload-api"])
@pytest.mark.parametrize("kind,alg", KINDS)
def test_py_spiffe_validates_meshtls_tokens(kind: str, alg: str, shape: str) -> None:
    signer = meshtls.JwtSigner.generate(TD, key=kind)
    token = signer.mint(SUB, ["billing"])
    bundle = spiffe.JwtBundle.parse(spiffe.TrustDomain(TD), signer.jwks(shape=shape).encode())
    svid = spiffe.JwtSvid.parse_and_validate(token, bundle, {"billing"})
    assert str(svid.spiffe_id) == SUB
    assert set(svid.audience) == {"billing"}
    # A bundle of another key: py-spiffe refuses.
    other = meshtls.JwtSigner.generate(TD, key=kind)
    bundle2 = spiffe.JwtBundle.parse(spiffe.TrustDomain(TD), other.jwks(shape=shape).encode())
    with pytest.raises(Exception):
        spiffe.JwtSvid.parse_and_validate(token, bundle2, {"billing"})


def _pyjwt_key(kind: str):  # type: ignore[no-untyped-def]
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks_of(private, kid: str, alg: str, use: str | None) -> str:  # type: ignore[no-untyped-def]
    algo = jwt.get_algorithm_by_name(alg)
    jwk = json.loads(algo.to_jwk(private.public_key()))
    jwk["kid"] = kid
    if use is not None:
        jwk["use"] = use
    return json.dumps({"keys": [jwk]})


@pytest.mark.parametrize("use", [None, "jwt-svid"])
@pytest.mark.parametrize("kind,alg", KINDS)
def test_meshtls_validates_pyjwt_tokens(kind: str, alg: str, use: str | None) -> None:
    private = _pyjwt_key(kind)
    jwks = _jwks_of(private, "k1", alg, use)
    claims = {"sub": SUB, "aud": "billing", "exp": _now() + 300, "iat": _now()}
    token = jwt.encode(claims, private, algorithm=alg, headers={"kid": "k1", "typ": "JWT"})
    svid = meshtls.validate_jwt_svid(token, {TD: jwks}, audience=["billing"])
    assert str(svid.spiffe_id) == SUB
    assert svid.kid == "k1"
    assert svid.algorithm == alg
    assert svid.claims["iat"] == claims["iat"]
    # The same token is refused for another audience, and with another trust domain's bundle.
    with pytest.raises(meshtls.JwtError, match="audience"):
        meshtls.validate_jwt_svid(token, {TD: jwks}, audience=["payments"])
    with pytest.raises(meshtls.JwtError, match="no jwt bundle for trust domain example.org"):
        meshtls.validate_jwt_svid(token, {"other.org": jwks}, audience=["billing"])


def test_pyjwt_attacks_are_refused() -> None:
    private = _pyjwt_key("ec-p256")
    jwks = _jwks_of(private, "k1", "ES256", None)
    claims = {"sub": SUB, "aud": "billing", "exp": _now() + 300}
    # alg none and HS256 (keyed with the JWKS text) are refused by the allow-list first.
    none_token = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(meshtls.JwtError, match='algorithm "none" is not allowed'):
        meshtls.validate_jwt_svid(none_token, {TD: jwks}, audience=["billing"])
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs = jwt.api_jws.PyJWS()
    hs_token = hs.encode(
        json.dumps(claims).encode(),
        key=b"x" * 32,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert pem  # the public key exists; HS256 never reaches any key
    with pytest.raises(meshtls.JwtError, match='algorithm "HS256" is not allowed'):
        meshtls.validate_jwt_svid(hs_token, {TD: jwks}, audience=["billing"])
    # Extra header (x5u) and crit are refused; without kid too, unless allowed.
    t = jwt.encode(claims, private, algorithm="ES256", headers={"kid": "k1", "x5u": "https://e"})
    with pytest.raises(meshtls.JwtError, match="x5u"):
        meshtls.validate_jwt_svid(t, {TD: jwks}, audience=["billing"])
    assert meshtls.validate_jwt_svid(
        t, {TD: jwks}, audience=["billing"], allow_extra_headers=True
    ).kid == "k1"
    t = jwt.encode(claims, private, algorithm="ES256")
    with pytest.raises(meshtls.JwtError, match="no kid"):
        meshtls.validate_jwt_svid(t, {TD: jwks}, audience=["billing"])
    assert meshtls.validate_jwt_svid(t, {TD: jwks}, audience=["billing"], require_kid=False)


def test_expiry_leeway_and_audience_modes() -> None:
    signer = meshtls.JwtSigner.generate(TD)
    token = signer.mint(SUB, ["a", "b"], ttl=dt.timedelta(seconds=60))
    bundles = {TD: signer.jwks()}
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=100)
    with pytest.raises(meshtls.JwtError, match="expired"):
        meshtls.validate_jwt_svid(token, bundles, audience=["a"], now=later)
    assert meshtls.validate_jwt_svid(
        token, bundles, audience=["a"], now=later, leeway=dt.timedelta(seconds=60)
    )
    assert meshtls.validate_jwt_svid(token, bundles, audience=["a", "b"], all_audiences=True)
    with pytest.raises(meshtls.JwtError, match="all of"):
        meshtls.validate_jwt_svid(token, bundles, audience=["a", "c"], all_audiences=True)
    with pytest.raises(meshtls.JwtError, match="at least one expected audience"):
        meshtls.validate_jwt_svid(token, bundles, audience=[])
    with pytest.raises(meshtls.JwtError):
        signer.mint(SUB, [])
    with pytest.raises(meshtls.JwtError, match="not in trust domain"):
        signer.mint("spiffe://other.org/x", ["a"])


def test_signer_round_trips_through_a_ca_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    signer = meshtls.JwtSigner.generate(TD, key="ec-p384")
    signer.save(tmp_path)
    assert (tmp_path / "jwt-key.pem").stat().st_mode & 0o777 == 0o600
    again = meshtls.JwtSigner.load(tmp_path, TD)
    assert again.kid == signer.kid and again.algorithm == "ES384"
    token = again.mint(SUB, ["a"])
    assert meshtls.validate_jwt_svid(token, {TD: signer.jwks()}, audience=["a"]).kid == signer.kid


# ---- go-spiffe (jwtsvid.ParseAndValidate, jwtbundle.Parse) and go-jose ----------------------

_GO_PEER = pathlib.Path(
    os.environ.get("MESHTLS_PEERS_CACHE", pathlib.Path.home() / ".cache" / "meshtls-peers")
) / "go-spiffe-jwt"


def _go_peer() -> str:
    if not os.access(_GO_PEER, os.X_OK):
        pytest.skip(f"{_GO_PEER} is missing: run scripts/build-spiffe-peers.sh (.ci/run does)")
    return str(_GO_PEER)


@pytest.mark.parametrize("shape", ["spiffe", "workload-api"])
@pytest.mark.parametrize("kind,alg", KINDS)
def test_go_spiffe_validates_meshtls_tokens(tmp_path, kind: str, alg: str, shape: str) -> None:  # type: ignore[no-untyped-def]
    peer = _go_peer()
    signer = meshtls.JwtSigner.generate(TD, key=kind)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(signer.jwks(shape=shape))
    token = signer.mint(SUB, ["billing", "audit"])
    out = subprocess.run(
        [peer, "validate", TD, str(jwks), "audit", token], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    got = json.loads(out.stdout)
    assert got == {"spiffe_id": SUB, "audience": ["billing", "audit"]}
    out = subprocess.run(
        [peer, "validate", TD, str(jwks), "payments", token], capture_output=True, text=True
    )
    assert out.returncode == 1 and "audience" in out.stdout, out.stdout


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256"])
def test_meshtls_validates_go_jose_tokens(alg: str) -> None:
    peer = _go_peer()
    out = subprocess.run([peer, "mint", alg, SUB, "billing"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    minted = json.loads(out.stdout)
    svid = meshtls.validate_jwt_svid(minted["token"], {TD: minted["jwks"]}, audience=["billing"])
    assert str(svid.spiffe_id) == SUB
    assert svid.algorithm == alg and svid.kid == "go-jose-key"
    with pytest.raises(meshtls.JwtError, match="audience"):
        meshtls.validate_jwt_svid(minted["token"], {TD: minted["jwks"]}, audience=["other"])
