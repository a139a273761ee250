"""An independent JOSE implementation (jwcrypto) opens what we seal, and we open what it seals."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk

from agent_keys.errors import IntegrityError
from agent_keys.gateway_identity import KeyType
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from tests.vault.format.test_encrypted_credential import (
    DS,
    GATEWAY_ID,
    IAT,
    TARGET,
    identity,
    keys_of,
)
from vault.format.encrypted_credential import (
    CredentialPayload,
    SealedTarget,
    open_credential,
    seal_credential,
)

ALGS: dict[KeyType, str] = {"ec-p256": "ECDH-ES+A256KW", "rsa-3072": "RSA-OAEP-256"}


def _jwcrypto_private(key_type: KeyType) -> jwk.JWK:
    der = identity(key_type)[0].to_pkcs8().reveal()
    key = serialization.load_der_private_key(der, password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwk.JWK.from_pem(pem)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_jwcrypto_opens_what_we_seal(key_type: KeyType) -> None:
    payload = CredentialPayload("basic", "alice", Secret.from_text("pässwörd"))
    token = seal_credential(
        identity(key_type)[1],
        DS,
        SealedTarget.of(TARGET),
        payload,
        issued_at=IAT,
        random=system_random,
    )
    opened = jwe.JWE()
    opened.deserialize(token, key=_jwcrypto_private(key_type))
    assert json.loads(opened.payload) == {
        "type": "basic",
        "username": "alice",
        "secret": "pässwörd",
    }
    assert opened.jose_header["alg"] == ALGS[key_type]
    assert opened.jose_header["ds"] == DS
    assert opened.jose_header["tgt"]["server"] == TARGET.server


def _jwcrypto_seal(key_type: KeyType, target: Mapping[str, object]) -> str:
    """What a sealer in another language does, from the README and the certificate alone."""
    cert = identity(key_type)[1]
    header = {"alg": ALGS[key_type], "enc": "A256GCM", "kid": cert.thumbprint,
              "gw": GATEWAY_ID, "ds": DS, "tgt": target, "iat": IAT, "ver": 2}  # fmt: skip
    plaintext = json.dumps({"type": "key", "secret": "from-jwcrypto"}).encode()
    sealed = jwe.JWE(plaintext, protected=json.dumps(header))
    sealed.add_recipient(jwk.JWK.from_pem(cert.pem))
    token: str = sealed.serialize(compact=True)
    return token


README_TARGET = {"type": "postgresql", "server": "db.example:5432", "database": "sales",
                 "tls": "verify-full", "ca": None}  # fmt: skip


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_we_open_what_jwcrypto_seals_from_the_certificate_alone(key_type: KeyType) -> None:
    token = _jwcrypto_seal(key_type, README_TARGET)
    target = SealedTarget.of(TARGET)
    payload = open_credential(token, keys_of(key_type), GATEWAY_ID, DS, target).payload
    assert payload.auth == "key"
    assert payload.secret == Secret.from_text("from-jwcrypto")


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
@pytest.mark.parametrize(
    "change",
    [{"server": "attacker.example:5432"}, {"type": "mysql"}, {"database": "postgres"},
     {"tls": "disable"}],
    ids=["server", "type", "database", "tls"],
)  # fmt: skip
def test_what_jwcrypto_seals_for_another_target_does_not_open(
    key_type: KeyType, change: dict[str, str]
) -> None:
    token = _jwcrypto_seal(key_type, {**README_TARGET, **change})
    with pytest.raises(IntegrityError):
        open_credential(token, keys_of(key_type), GATEWAY_ID, DS, SealedTarget.of(TARGET))
