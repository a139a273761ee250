"""web/static/seal.js seals in real Chromium; gwvault and jwcrypto open what it sealed."""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk
from playwright.sync_api import Page

from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
)
from agent_keys.randomness import system_random
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import SealedTarget, open_credential

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
GATEWAY_ID = "3f6c2a9e-8d41-4b7a-9e25-c0d1f7a86b13"
DS = "sales-db"
ALGS: dict[KeyType, str] = {"ec-p256": "ECDH-ES+A256KW", "rsa-3072": "RSA-OAEP-256"}
KEY_TYPES: list[KeyType] = ["ec-p256", "rsa-3072"]
PAYLOADS: list[dict[str, str | None]] = [
    {"type": "basic", "username": "alice", "secret": "pässwörd 🔑"},
    {"type": "key", "username": None, "secret": "api-key-0123"},
    {"type": "anonymous", "username": None, "secret": None},
]
BAD_PAYLOADS: list[dict[str, str | None]] = [
    {"type": "basic", "username": None, "secret": "s"},
    {"type": "key"},
    {"type": "anonymous", "username": "bob"},
    {"type": "oauth", "secret": "s"},
    {"type": "key", "secret": ""},
    {"type": "key", "secret": "\ud800"},  # a lone surrogate would turn into U+FFFD silently
]
# The page runs with no inline script and no eval allowed: seal.js must need neither.
PAGE = b"<!doctype html><meta http-equiv=Content-Security-Policy content=\"script-src 'self'\">"
SEAL = """async ([gateway, datasource, target, payload]) => {
  const { sealCredential } = await import("/seal.js");
  try { return { token: await sealCredential(gateway, datasource, target, payload) }; }
  catch (e) { return { error: e.message }; }
}"""
TARGET = DataSource("postgresql", "db.example:5432", "sales")
TARGET_JSON = {"type": "postgresql", "server": "db.example:5432", "database": "sales",
               "tls": "verify-full", "ca_pem": None}  # fmt: skip
# Each alg on the other key type's key, and names the profile leaves out
# ("toString": a prototype member of a lookup table is no alg either).
REFUSED_ALGS: dict[KeyType, list[str]] = {
    "ec-p256": ["RSA-OAEP-256", "ECDH-ES", "dir", "A256KW"],
    "rsa-3072": ["ECDH-ES+A256KW", "RSA1_5", "RSA-OAEP", "toString"],
}
_NOW = datetime.datetime.now(datetime.UTC)
IDENTITIES = {
    kt: generate_gateway_identity("gw", GATEWAY_ID, kt, _NOW, system_random) for kt in KEY_TYPES
}


class _StaticHandler(SimpleHTTPRequestHandler):
    """web/static as files, and at / an empty page to import them from."""

    def do_GET(self) -> None:
        if self.path != "/":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(PAGE)
        return None

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """ES modules need http(s), not file://; 127.0.0.1 is a secure context for WebCrypto."""
    handler = functools.partial(_StaticHandler, directory=str(STATIC))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="seal-js-static", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def seal_page(page: Page, static_url: str) -> Page:
    page.goto(static_url)
    return page


def gateway_facts(cert: GatewayCertificate) -> dict[str, Any]:
    """What the server hands the page about a gateway."""
    return {"pem": cert.pem.decode("ascii"), "thumbprint": cert.thumbprint,
            "gateway_id": cert.gateway_id, "key_type": cert.key_type,
            "alg": ALGS[cert.key_type], "jwk": cert.public_jwk()}  # fmt: skip


def seal(page: Page, gateway: dict[str, Any], payload: object = None, target: object = None) -> Any:
    return page.evaluate(SEAL, [gateway, DS, target or TARGET_JSON, payload or PAYLOADS[0]])


def token_of(page: Page, key_type: KeyType, payload: object = None) -> str:
    result = seal(page, gateway_facts(IDENTITIES[key_type][1]), payload)
    assert set(result) == {"token"}, result
    token: str = result["token"]
    return token


def b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwcrypto_private(key: GatewayPrivateKey) -> jwk.JWK:
    der = serialization.load_der_private_key(key.to_pkcs8().reveal(), password=None)
    pem = der.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    return jwk.JWK.from_pem(pem)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_thumbprint_is_the_one_python_computes(seal_page: Page, key_type: KeyType) -> None:
    cert = IDENTITIES[key_type][1]
    script = "async (pem) => (await import('/seal.js')).certificateThumbprint(pem)"
    assert seal_page.evaluate(script, cert.pem.decode()) == cert.thumbprint


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p["type"] for p in PAYLOADS])
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_gwvault_opens_each_auth_type(
    seal_page: Page, key_type: KeyType, payload: dict[str, Any]
) -> None:
    key, cert = IDENTITIES[key_type]
    token = token_of(seal_page, key_type, payload)
    opened = open_credential(
        token, {cert.thumbprint: key}, GATEWAY_ID, DS, SealedTarget.of(TARGET)
    ).payload
    secret = opened.secret.reveal_text() if opened.secret is not None else None
    assert (opened.auth, opened.username, secret) == tuple(payload.values())


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_jwcrypto_opens_it_and_the_header_is_the_profile(
    seal_page: Page, key_type: KeyType
) -> None:
    key, cert = IDENTITIES[key_type]
    before = int(time.time())
    token = token_of(seal_page, key_type)
    opened = jwe.JWE()
    opened.deserialize(token, key=jwcrypto_private(key))
    assert json.loads(opened.payload) == PAYLOADS[0]

    protected, encrypted_key, iv, _, tag = token.split(".")
    header = b64url_json(protected)
    profile = {"alg": ALGS[key_type], "enc": "A256GCM", "kid": cert.thumbprint,
               "gw": GATEWAY_ID, "ds": DS, "ver": 2,
               "tgt": SealedTarget.of(TARGET).to_json()}  # fmt: skip
    assert {k: header.pop(k) for k in profile} == profile
    assert before <= header.pop("iat") <= time.time()
    if key_type == "ec-p256":
        assert list(header.pop("epk")) == ["kty", "crv", "x", "y"]
    assert header == {}
    lengths = {"ec-p256": 54, "rsa-3072": 512}  # 40-byte AES-KW, 384-byte RSA-OAEP
    assert (len(encrypted_key), len(iv), len(tag)) == (lengths[key_type], 16, 22)


def test_the_sealed_target_and_its_ca_digest_are_the_ones_python_computes(
    seal_page: Page,
) -> None:
    key, cert = IDENTITIES["ec-p256"]
    ca_pem = cert.pem.decode("ascii") + "\n" + IDENTITIES["rsa-3072"][1].pem.decode("ascii")
    target = DataSource("mysql", "db.example:3306", None, tls="verify-ca", ca_pem=ca_pem)
    as_json = {"type": "mysql", "server": "db.example:3306", "database": None,
               "tls": "verify-ca", "ca_pem": ca_pem}  # fmt: skip
    result = seal(seal_page, gateway_facts(cert), target=as_json)
    header = b64url_json(result["token"].split(".")[0])
    assert header["tgt"] == SealedTarget.of(target).to_json()
    assert header["tgt"]["ca"] == target.ca_digest() is not None
    opened = open_credential(
        result["token"], {cert.thumbprint: key}, GATEWAY_ID, DS, SealedTarget.of(target)
    )
    assert opened.payload.username == "alice"


@pytest.mark.parametrize(
    "target",
    [{**TARGET_JSON, "type": "oracle"}, {**TARGET_JSON, "server": ""},
     {**TARGET_JSON, "tls": "prefer"}, {**TARGET_JSON, "ca_pem": "not a certificate"}],
    ids=["type", "server", "tls", "ca"],
)  # fmt: skip
def test_a_target_the_gateway_would_refuse_seals_nothing(
    seal_page: Page, target: dict[str, Any]
) -> None:
    assert set(seal(seal_page, gateway_facts(IDENTITIES["ec-p256"][1]), target=target)) == {"error"}


def test_every_seal_has_a_fresh_key_and_iv(seal_page: Page) -> None:
    first, second = (token_of(seal_page, "ec-p256").split(".") for _ in range(2))
    assert b64url_json(first[0])["epk"] != b64url_json(second[0])["epk"]
    assert first[1] != second[1] and first[2] != second[2]


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_a_certificate_that_does_not_match_its_thumbprint_seals_nothing(
    seal_page: Page, key_type: KeyType
) -> None:
    facts = gateway_facts(IDENTITIES[key_type][1])
    other_pem = gateway_facts(IDENTITIES[KEY_TYPES[key_type == "ec-p256"]][1])["pem"]
    flipped = ("B" if facts["thumbprint"][0] == "A" else "A") + facts["thumbprint"][1:]
    for tampered in ({"thumbprint": flipped}, {"pem": other_pem}):
        refused = {"error": "the gateway certificate does not match its thumbprint"}
        assert seal(seal_page, facts | tampered) == refused, tampered


def test_any_other_alg_is_refused(seal_page: Page) -> None:
    for key_type, algs in REFUSED_ALGS.items():
        for alg in algs:
            facts = gateway_facts(IDENTITIES[key_type][1]) | {"alg": alg}
            assert seal(seal_page, facts)["error"].startswith(f"refusing alg {alg}")
    # Facts that agree with each other but not with the certificate's key.
    lying = gateway_facts(IDENTITIES["rsa-3072"][1])
    lying.update(key_type="ec-p256", alg="ECDH-ES+A256KW")
    assert seal(seal_page, lying)["error"].endswith("key does not fit ECDH-ES+A256KW")


def test_a_jwk_that_is_not_the_certificates_key_is_refused(seal_page: Page) -> None:
    now = datetime.datetime.now(datetime.UTC)
    other = generate_gateway_identity("gw", GATEWAY_ID, "ec-p256", now, system_random)[1]
    facts = gateway_facts(IDENTITIES["ec-p256"][1]) | {"jwk": other.public_jwk()}
    assert seal(seal_page, facts) == {"error": "the gateway's JWK is not its certificate's key"}


def test_an_expired_certificate_is_refused(seal_page: Page) -> None:
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=800)
    cert = generate_gateway_identity("gw", GATEWAY_ID, "ec-p256", long_ago, system_random)[1]
    assert "not valid now" in seal(seal_page, gateway_facts(cert))["error"]


def test_a_payload_of_the_wrong_shape_is_refused(seal_page: Page) -> None:
    facts = gateway_facts(IDENTITIES["ec-p256"][1])
    for payload in BAD_PAYLOADS:
        error = seal(seal_page, facts, payload).get("error", "")
        assert re.match(r"the credential needs|auth \w+ has the wrong", error), payload
