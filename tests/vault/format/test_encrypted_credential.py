"""The EncryptedCredential JWE profile: round trips, strictness, one error."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
)
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.tls_certificates import make_ca
from tests.vault.format.jwe_reference import b64, ecdh_epk, seal_raw
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import (
    CredentialPayload,
    OutdatedProfileError,
    SealedTarget,
    open_credential,
    seal_credential,
)

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
IAT = int(NOW.timestamp())
GATEWAY_ID = "6d1f3c9e-2b4a-4f8e-9c1d-7a5b3e2f1d0c"
DS = "sales-db"
TARGET = DataSource("postgresql", "db.example:5432", "sales")
VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "hostile_headers.json").read_text()
)

_IDENTITIES = {
    key_type: generate_gateway_identity("gw", GATEWAY_ID, key_type, NOW, system_random)
    for key_type in ("ec-p256", "rsa-3072")
}


def identity(key_type: KeyType) -> tuple[GatewayPrivateKey, GatewayCertificate]:
    return _IDENTITIES[key_type]


def keys_of(key_type: KeyType) -> dict[str, GatewayPrivateKey]:
    key, cert = identity(key_type)
    return {cert.thumbprint: key}


def basic(secret: str = "s3cret") -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text(secret))


def seal(
    key_type: KeyType = "ec-p256",
    payload: CredentialPayload | None = None,
    target: DataSource = TARGET,
) -> str:
    return seal_credential(
        identity(key_type)[1],
        DS,
        SealedTarget.of(target),
        payload or basic(),
        issued_at=IAT,
        random=system_random,
    )


def open_for(
    token: str, key_type: KeyType = "ec-p256", target: DataSource = TARGET
) -> CredentialPayload:
    return open_credential(
        token, keys_of(key_type), GATEWAY_ID, DS, SealedTarget.of(target)
    ).payload


def open_ec(token: str) -> CredentialPayload:
    return open_for(token)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
@pytest.mark.parametrize(
    "payload",
    [
        CredentialPayload("basic", "alice", Secret.from_text("pw with spaces ∑")),
        CredentialPayload("key", None, Secret.from_text("api-key-123")),
        CredentialPayload("key", "svc", Secret.from_text("k")),
        CredentialPayload("anonymous", None, None),
    ],
)
def test_seal_then_open_gives_the_payload_back(
    key_type: KeyType, payload: CredentialPayload
) -> None:
    token = seal(key_type, payload)
    opened = open_credential(token, keys_of(key_type), GATEWAY_ID, DS, SealedTarget.of(TARGET))
    assert (opened.payload, opened.issued_at) == (payload, IAT)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == identity(key_type)[1].thumbprint
    assert (header["gw"], header["ds"], header["iat"], header["enc"], header["ver"]) == (
        GATEWAY_ID,
        DS,
        IAT,
        "A256GCM",
        2,
    )
    assert header["tgt"] == {
        "type": "postgresql",
        "server": "db.example:5432",
        "database": "sales",
        "tls": "verify-full",
        "ca": None,
    }


def test_a_token_for_a_legacy_certificate_still_opens() -> None:
    old_key, old_cert = generate_gateway_identity("gw", GATEWAY_ID, "ec-p256", NOW, system_random)
    target = SealedTarget.of(TARGET)
    token = seal_credential(old_cert, DS, target, basic(), issued_at=IAT, random=system_random)
    keys = {**keys_of("ec-p256"), old_cert.thumbprint: old_key}
    assert open_credential(token, keys, GATEWAY_ID, DS, target).payload.username == "alice"


def test_sealing_to_an_expired_certificate_is_refused() -> None:
    later = int((NOW + datetime.timedelta(days=800)).timestamp())
    with pytest.raises(InvalidInputError, match="not valid now"):
        seal_credential(
            identity("ec-p256")[1],
            DS,
            SealedTarget.of(TARGET),
            basic(),
            issued_at=later,
            random=system_random,
        )


def _valid_header() -> tuple[dict[str, Any], bytes]:
    cert = identity("ec-p256")[1]
    recipient = cert.public_key()
    assert isinstance(recipient, ec.EllipticCurvePublicKey)
    epk, kek = ecdh_epk(recipient)
    header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": cert.thumbprint,
              "gw": GATEWAY_ID, "ds": DS, "tgt": SealedTarget.of(TARGET).to_json(),
              "iat": IAT, "ver": 2, "epk": epk}  # fmt: skip
    return header, kek


PAYLOAD = {"type": "basic", "username": "alice", "secret": "s3cret"}


def test_the_reference_sealer_makes_tokens_we_open() -> None:
    header, kek = _valid_header()
    assert open_ec(seal_raw(header, kek, PAYLOAD)).username == "alice"


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_correctly_sealed_tokens_with_hostile_headers_are_refused(case: dict[str, Any]) -> None:
    header, kek = _valid_header()
    header.update(case.get("set", {}))
    if "tgt_set" in case:
        header["tgt"] = {**header["tgt"], **case["tgt_set"]}
    header["epk"] = {**header["epk"], **case.get("epk_set", {})} if "epk" in header else None
    for member in case.get("drop", []):
        header.pop(member, None)
    if header.get("epk") is None:
        header.pop("epk", None)
    with pytest.raises(IntegrityError) as refused:
        open_ec(seal_raw(header, kek, PAYLOAD))
    assert str(refused.value) == _one_message()


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "basic", "username": "alice", "secret": "x", "extra": 1},
        {"username": "alice", "secret": "x"},
        {"type": "oauth", "secret": "x"},
        {"type": "basic", "secret": "x"},
        {"type": "anonymous", "secret": "x"},
        {"type": "key", "secret": 12345},
        {"type": "key", "secret": ""},
        {"type": "basic", "username": "al\nice", "secret": "x"},
        {"type": "key", "secret": "x" * 9000},
        {"type": "key", "secret": "nul\u0000inside"},
    ],
)
def test_sealed_payloads_of_the_wrong_shape_are_refused(payload: dict[str, Any]) -> None:
    header, kek = _valid_header()
    with pytest.raises(IntegrityError):
        open_ec(seal_raw(header, kek, payload))


def _one_message() -> str:
    with pytest.raises(IntegrityError) as failure:
        open_ec("a.b.c.d.e")
    return str(failure.value)


def _replace_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "",
        lambda t: t + ".",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t + "=",
        lambda t: t.replace(".", "..", 1),
        lambda t: "é" + t,
        lambda t: t * 40,
        lambda t: _replace_segment(t, 2, b64(b"\0" * 16)),
        lambda t: _replace_segment(t, 4, b64(b"\0" * 12)),
        lambda t: _replace_segment(t, 1, b64(b"\0" * 600)),
        lambda t: _replace_segment(t, 3, ""),
        lambda t: _replace_segment(t, 0, b64(b"[1,2]")),
        lambda t: _replace_segment(t, 0, b64(b'{"alg":"x","alg":"y"}')),
        lambda t: _replace_segment(t, 0, b64(b"\xff\xfe")),
        lambda t: _replace_segment(t, 0, b64(b"[" * 5000)),
    ],
)
def test_malformed_tokens_fail_with_the_one_error(mangle: Any) -> None:
    with pytest.raises(IntegrityError) as failure:
        open_ec(mangle(seal()))
    assert str(failure.value) == _one_message()


def test_a_token_for_another_target_is_refused() -> None:
    token = seal()
    target = SealedTarget.of(TARGET)
    with pytest.raises(IntegrityError):
        open_credential(token, keys_of("ec-p256"), GATEWAY_ID, "hr-db", target)
    with pytest.raises(IntegrityError):
        open_credential(token, keys_of("ec-p256"), "0" * 8 + GATEWAY_ID[8:], DS, target)
    with pytest.raises(IntegrityError):
        open_credential(token, keys_of("rsa-3072"), GATEWAY_ID, DS, target)


@pytest.mark.parametrize(
    "elsewhere",
    [
        DataSource("http", "http://listener.attacker.example/"),
        DataSource("postgresql", "attacker.example:5432", "sales"),
        DataSource("postgresql", "db.example:5433", "sales"),
        DataSource("postgresql", "db.example:5432", "postgres"),
        DataSource("postgresql", "db.example:5432", None),
        DataSource("mysql", "db.example:5432", "sales"),
        DataSource("postgresql", "db.example:5432", "sales", tls="disable"),
        DataSource("postgresql", "db.example:5432", "sales", tls="require"),
    ],
    ids=[
        "http-listener",
        "server",
        "port",
        "database",
        "no-database",
        "type",
        "tls-off",
        "tls-require",
    ],
)
def test_a_token_opens_only_for_the_target_it_was_sealed_for(elsewhere: DataSource) -> None:
    # The review's attack: a blob sealed for a database, submitted to "test" with
    # another type or server, made the gateway send the secret there.
    token = seal()
    with pytest.raises(IntegrityError) as refused:
        open_for(token, target=elsewhere)
    assert str(refused.value) == _one_message()
    assert open_for(token).username == "alice"


def test_a_token_sealed_with_a_ca_opens_only_with_that_ca() -> None:
    mine, other = make_ca("db CA").pem, make_ca("attacker CA").pem
    with_ca = DataSource("postgresql", "db.example:5432", "sales", tls="verify-ca", ca_pem=mine)
    token = seal(target=with_ca)
    assert open_for(token, target=with_ca).username == "alice"
    for elsewhere in (
        DataSource("postgresql", "db.example:5432", "sales", tls="verify-ca", ca_pem=other),
        DataSource("postgresql", "db.example:5432", "sales", tls="verify-ca"),
    ):
        with pytest.raises(IntegrityError):
            open_for(token, target=elsewhere)


def test_a_profile_1_token_is_refused_with_a_message_that_says_to_seal_again() -> None:
    header, kek = _valid_header()
    del header["tgt"], header["ver"]
    with pytest.raises(OutdatedProfileError, match=r"profile 1.*seal it again"):
        open_ec(seal_raw(header, kek, PAYLOAD))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    username=st.text(
        st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=40
    ).filter(str.isprintable),
    secret=st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=1,
        max_size=300,
    ),
)
def test_property_open_of_seal_is_identity(username: str, secret: str) -> None:
    payload = CredentialPayload("basic", username, Secret.from_text(secret))
    assert open_ec(seal(payload=payload)) == payload


_TOKEN = seal()
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(_TOKEN) - 1),
    replacement=st.sampled_from(_ALPHABET),
)
def test_property_any_changed_character_fails_with_the_one_error(
    position: int, replacement: str
) -> None:
    if _TOKEN[position] == replacement:
        replacement = "A" if replacement != "A" else "B"
    changed = _TOKEN[:position] + replacement + _TOKEN[position + 1 :]
    with pytest.raises(IntegrityError):
        open_ec(changed)
