"""gwvault's sealing and opening side by side with the raw primitives and with peers.

Groups (one ``interleaved_throughput`` call each, so drift hits every case alike):

* ``seal-p256`` / ``open-p256``: an EncryptedCredential for an EC P-256 gateway
  (ECDH-ES+A256KW / A256GCM) against the same primitives called directly
  (``floor``), jwcrypto's JWE, Tink hybrid encryption (ECIES P-256 and HPKE X25519)
  and the AWS Encryption SDK with a raw AES wrapping key.
* ``seal-rsa3072`` / ``open-rsa3072``: the same for an RSA-3072 gateway
  (RSA-OAEP-256 / A256GCM) against the floor, jwcrypto and the ESDK's raw RSA key.
* ``stored-open``: a stored credential opened through the agent API (audit entry
  included) against Tink's envelope AEAD under a local AES-256-GCM key.

The secret is 200 bytes throughout (ASCII, since a credential's secret is text).
Every case is checked once to give the 200 bytes back before it is timed.

The peers (jwcrypto, tink, aws-encryption-sdk) are benchmark-only: they are
imported when ``run`` is called, never by ``import bench.crypto``.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import importlib
import os
import secrets
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from bench.harness import Measurement, interleaved_throughput

SECRET_BYTES = 200
DATASOURCE = "sales-db"
RECOVERY_KEY = "orbit walnut trellis quasar lantern 42"
UNIT = "ops/s"

_PEERS = {
    "jwcrypto": "jwcrypto",
    "tink": "tink",
    "aws_encryption_sdk": "aws-encryption-sdk",
}
_INSTALL_HINT = ".venv/bin/pip install tink aws-encryption-sdk jwcrypto"

# JWA section 4.6.2 OtherInfo for ECDH-ES+A256KW without apu/apv: what the floor
# derives its key-wrapping key with, the same one SHA-256 round gwvault does.
_ECDH_OTHER_INFO = (
    struct.pack(">I", 14) + b"ECDH-ES+A256KW" + struct.pack(">I", 0) * 2 + struct.pack(">I", 256)
)
_OAEP_SHA256 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


@dataclass(frozen=True)
class _Case:
    """One contender: how it seals the secret and how it opens its own output."""

    name: str
    seal: Callable[[], Any]
    open: Callable[[Any], bytes]
    seal_note: str
    open_note: str


def run(quick: bool) -> list[Measurement]:
    """Every group; ``quick`` (3 rounds of 0.2 s bursts) finishes in well under a minute."""
    _require_peers()
    rounds, burst = (3, 0.2) if quick else (7, 0.5)
    secret = secrets.token_urlsafe(150).encode("ascii")  # 200 ASCII bytes
    if len(secret) != SECRET_BYTES:
        raise RuntimeError("the benchmark secret must be 200 bytes")
    results: list[Measurement] = []
    results += _seal_and_open(_p256_cases(secret), secret, "p256", rounds, burst)
    results += _seal_and_open(_rsa_cases(secret), secret, "rsa3072", rounds, burst)
    results += _stored_open(secret, rounds, burst)
    return results


# -- plumbing -------------------------------------------------------------------------


def _peer(module: str) -> Any:
    """Import a benchmark-only peer, or say clearly how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = _PEERS.get(module.split(".", maxsplit=1)[0], module)
        raise RuntimeError(
            f"bench.crypto needs the benchmark-only package {package!r}"
            f" (module {module!r}); install the peers: {_INSTALL_HINT}"
        ) from e


def _require_peers() -> None:
    for module in _PEERS:
        _peer(module)


def _check(name: str, got: object, secret: bytes) -> None:
    if got != secret:
        raise RuntimeError(f"{name} did not give the 200-byte secret back; not timing it")


def _noted(measurements: list[Measurement], notes: dict[str, str]) -> list[Measurement]:
    return [dataclasses.replace(m, unit=UNIT, note=notes[m.name]) for m in measurements]


def _seal_and_open(
    cases: list[_Case], secret: bytes, suffix: str, rounds: int, burst: float
) -> list[Measurement]:
    """``seal-<suffix>`` then ``open-<suffix>``; each opens one prepared ciphertext."""
    prepared: dict[str, Any] = {}
    for case in cases:
        token = case.seal()
        _check(case.name, case.open(token), secret)
        prepared[case.name] = token
    sealed = interleaved_throughput(
        {case.name: case.seal for case in cases},
        rounds=rounds,
        seconds_per_burst=burst,
        group=f"seal-{suffix}",
    )
    opened = interleaved_throughput(
        {case.name: functools.partial(case.open, prepared[case.name]) for case in cases},
        rounds=rounds,
        seconds_per_burst=burst,
        group=f"open-{suffix}",
    )
    return _noted(sealed, {c.name: c.seal_note for c in cases}) + _noted(
        opened, {c.name: c.open_note for c in cases}
    )


def _gateway_identity(key_type: str) -> tuple[Any, Any, Any]:
    """(GatewayCertificate, {thumbprint: GatewayPrivateKey}, the private key as pyca)."""
    from agent_keys.gateway_identity import generate_gateway_identity, new_gateway_id
    from agent_keys.randomness import system_random

    now = datetime.datetime.now(datetime.UTC)
    gateway_id = new_gateway_id(system_random)
    private, certificate = generate_gateway_identity(
        "bench", gateway_id, "ec-p256" if key_type == "ec-p256" else "rsa-3072", now, system_random
    )
    pyca = serialization.load_der_private_key(private.to_pkcs8().reveal(), password=None)
    return certificate, {certificate.thumbprint: private}, pyca


def _gwvault_case(certificate: Any, keys: Any, secret: bytes, alg: str) -> _Case:
    from agent_keys.randomness import system_random
    from agent_keys.secret import Secret
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import (
        CredentialPayload,
        SealedTarget,
        open_credential,
        seal_credential,
    )

    payload = CredentialPayload("basic", "alice", Secret(secret))
    issued_at = int(time.time())
    target = SealedTarget.of(DataSource("postgresql", "db.example:5432", "sales"))

    def seal() -> str:
        return seal_credential(
            certificate, DATASOURCE, target, payload, issued_at=issued_at, random=system_random
        )

    def open_(token: str) -> bytes:
        opened = open_credential(token, keys, certificate.gateway_id, DATASOURCE, target).payload
        return opened.secret.reveal() if opened.secret is not None else b""

    return _Case(
        "gwvault",
        seal,
        open_,
        f"vault.format.encrypted_credential.seal_credential: compact JWE {alg}/A256GCM, protected"
        " header alg enc kid gw ds iat (+epk), payload JSON {type,username,secret}",
        f"vault.format.encrypted_credential.open_credential: strict parse, header checks ({alg}),"
        " A256GCM decrypt, payload JSON parse into CredentialPayload",
    )


def _jwcrypto_case(public: Any, private: Any, secret: bytes, alg: str) -> _Case:
    jwe_mod, jwk_mod = _peer("jwcrypto.jwe"), _peer("jwcrypto.jwk")
    public_jwk, private_jwk = jwk_mod.JWK.from_pyca(public), jwk_mod.JWK.from_pyca(private)
    protected = f'{{"alg":"{alg}","enc":"A256GCM"}}'

    def seal() -> str:
        token = jwe_mod.JWE(secret, protected=protected)
        token.add_recipient(public_jwk)
        return str(token.serialize(compact=True))

    def open_(token: str) -> bytes:
        jwe = jwe_mod.JWE()
        jwe.deserialize(token, key=private_jwk)
        return bytes(jwe.payload)

    return _Case(
        "jwcrypto",
        seal,
        open_,
        f"jwcrypto JWE compact {alg}/A256GCM to the same gateway public key, raw 200-byte payload",
        f"jwcrypto JWE().deserialize(token, key=private JWK), {alg}/A256GCM",
    )


def _esdk_client() -> Any:
    esdk = _peer("aws_encryption_sdk")
    # Default commitment policy (REQUIRE_ENCRYPT_REQUIRE_DECRYPT) and default suite.
    return esdk.EncryptionSDKClient()


def _esdk_case(name: str, encrypt_key: Any, decrypt_key: Any, secret: bytes, what: str) -> _Case:
    client = _esdk_client()
    context = {"datasource": DATASOURCE}

    def seal() -> bytes:
        ciphertext, _header = client.encrypt(
            source=secret, key_provider=encrypt_key, encryption_context=context
        )
        return bytes(ciphertext)

    def open_(ciphertext: bytes) -> bytes:
        plaintext, _header = client.decrypt(source=ciphertext, key_provider=decrypt_key)
        return bytes(plaintext)

    config = (
        f"aws-encryption-sdk EncryptionSDKClient() defaults (commitment policy"
        f" REQUIRE_ENCRYPT_REQUIRE_DECRYPT, suite AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384:"
        f" a P-384 signature per message), {what} (legacy RawMasterKey: the Python ESDK's raw"
        f" keyring without the MPL package), encryption context {{datasource}}"
    )
    return _Case(name, seal, open_, "encrypt: " + config, "decrypt: " + config)


def _esdk_raw_key(key_id: bytes, algorithm: str, key: bytes, key_type: str) -> Any:
    raw = _peer("aws_encryption_sdk.key_providers.raw")
    ids = _peer("aws_encryption_sdk.identifiers")
    wrapping = _peer("aws_encryption_sdk.internal.crypto.wrapping_keys")
    return raw.RawMasterKey(
        provider_id="gwvault-bench",
        key_id=key_id,
        wrapping_key=wrapping.WrappingKey(
            wrapping_algorithm=getattr(ids.WrappingAlgorithm, algorithm),
            wrapping_key=key,
            wrapping_key_type=getattr(ids.EncryptionKeyType, key_type),
        ),
    )


def _tink_hybrid_case(name: str, template_name: str, secret: bytes) -> _Case:
    tink, hybrid = _peer("tink"), _peer("tink.hybrid")
    hybrid.register()
    template = getattr(hybrid.hybrid_key_templates, template_name)
    private_handle = tink.new_keyset_handle(template)
    encrypt = private_handle.public_keyset_handle().primitive(hybrid.HybridEncrypt)
    decrypt = private_handle.primitive(hybrid.HybridDecrypt)
    context_info = DATASOURCE.encode("ascii")

    def seal() -> bytes:
        return bytes(encrypt.encrypt(secret, context_info))

    def open_(ciphertext: bytes) -> bytes:
        return bytes(decrypt.decrypt(ciphertext, context_info))

    return _Case(
        name,
        seal,
        open_,
        f"tink HybridEncrypt, template {template_name} (Tink-prefixed keyset),"
        f" context_info = data source name",
        f"tink HybridDecrypt, template {template_name}",
    )


# -- P-256 ------------------------------------------------------------------------------


def _p256_cases(secret: bytes) -> list[_Case]:
    certificate, keys, private = _gateway_identity("ec-p256")
    public = private.public_key()
    aes_key = _esdk_raw_key(
        b"aes-256", "AES_256_GCM_IV12_TAG16_NO_PADDING", os.urandom(32), "SYMMETRIC"
    )
    return [
        _gwvault_case(certificate, keys, secret, "ECDH-ES+A256KW"),
        _p256_floor_case(public, private, secret),
        _jwcrypto_case(public, private, secret, "ECDH-ES+A256KW"),
        _tink_hybrid_case("tink-ecies-p256", "ECIES_P256_HKDF_HMAC_SHA256_AES128_GCM", secret),
        _tink_hybrid_case(
            "tink-hpke-x25519", "DHKEM_X25519_HKDF_SHA256_HKDF_SHA256_AES_256_GCM", secret
        ),
        _esdk_case(
            "aws-esdk-raw-aes",
            aes_key,
            aes_key,
            secret,
            "raw AES wrapping key, 256-bit, AES_256_GCM_IV12_TAG16_NO_PADDING",
        ),
    ]


def _p256_floor_case(
    public: ec.EllipticCurvePublicKey, private: ec.EllipticCurvePrivateKey, secret: bytes
) -> _Case:
    curve = ec.SECP256R1()
    x962 = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def kek(shared: bytes) -> bytes:
        return hashlib.sha256(b"\x00\x00\x00\x01" + shared + _ECDH_OTHER_INFO).digest()

    def seal() -> tuple[bytes, bytes, bytes, bytes]:
        ephemeral = ec.generate_private_key(curve)
        epk = ephemeral.public_key().public_bytes(*x962)
        cek, iv = os.urandom(32), os.urandom(12)
        wrapped = aes_key_wrap(kek(ephemeral.exchange(ec.ECDH(), public)), cek)
        return epk, wrapped, iv, AESGCM(cek).encrypt(iv, secret, None)

    def open_(sealed: tuple[bytes, bytes, bytes, bytes]) -> bytes:
        epk, wrapped, iv, ciphertext = sealed
        peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, epk)
        cek = aes_key_unwrap(kek(private.exchange(ec.ECDH(), peer)), wrapped)
        return AESGCM(cek).decrypt(iv, ciphertext, None)

    return _Case(
        "floor",
        seal,
        open_,
        "cryptography direct, no framing: ephemeral P-256 keygen + ECDH + Concat KDF (1 SHA-256)"
        " + AES-256 key wrap of a random CEK + AES-256-GCM of the raw 200 bytes, no AAD",
        "cryptography direct: load ephemeral point (on-curve check) + ECDH + Concat KDF"
        " + AES key unwrap + AES-256-GCM decrypt",
    )


# -- RSA-3072 ---------------------------------------------------------------------------


def _rsa_cases(secret: bytes) -> list[_Case]:
    certificate, keys, private = _gateway_identity("rsa-3072")
    public = private.public_key()
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    algorithm = "RSA_OAEP_SHA256_MGF1"
    return [
        _gwvault_case(certificate, keys, secret, "RSA-OAEP-256"),
        _rsa_floor_case(public, private, secret),
        _jwcrypto_case(public, private, secret, "RSA-OAEP-256"),
        _esdk_case(
            "aws-esdk-raw-rsa",
            _esdk_raw_key(b"rsa-3072", algorithm, spki, "PUBLIC"),
            _esdk_raw_key(b"rsa-3072", algorithm, pkcs8, "PRIVATE"),
            secret,
            "raw RSA wrapping key, 3072-bit (the gateway key), RSA_OAEP_SHA256_MGF1;"
            " encrypt with the public key, decrypt with the private key",
        ),
    ]


def _rsa_floor_case(public: rsa.RSAPublicKey, private: rsa.RSAPrivateKey, secret: bytes) -> _Case:
    def seal() -> tuple[bytes, bytes, bytes]:
        cek, iv = os.urandom(32), os.urandom(12)
        return public.encrypt(cek, _OAEP_SHA256), iv, AESGCM(cek).encrypt(iv, secret, None)

    def open_(sealed: tuple[bytes, bytes, bytes]) -> bytes:
        wrapped, iv, ciphertext = sealed
        return AESGCM(private.decrypt(wrapped, _OAEP_SHA256)).decrypt(iv, ciphertext, None)

    return _Case(
        "floor",
        seal,
        open_,
        "cryptography direct, no framing: RSA-OAEP (SHA-256, MGF1-SHA-256) of a random 32-byte"
        " CEK + AES-256-GCM of the raw 200 bytes, no AAD",
        "cryptography direct: RSA-OAEP-SHA256 decrypt of the CEK + AES-256-GCM decrypt",
    )


# -- stored-open ------------------------------------------------------------------------


def _stored_open(secret: bytes, rounds: int, burst: float) -> list[Measurement]:
    from agent_keys.secret import Secret
    from vault.agent import GatewayAgent
    from vault.context import RequestContext
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import CredentialPayload
    from vault.format.envelope import open_at_rest
    from vault.gateway import Gateway

    with tempfile.TemporaryDirectory(prefix="gwvault-bench-") as tmp:
        path = Path(tmp) / "vault"
        setup = RequestContext(actor="bench", channel="cli")
        recovery = Secret.from_text(RECOVERY_KEY)
        with Gateway.initialize(path, "bench", "ec-p256", recovery, setup) as gateway:
            payload = CredentialPayload("basic", "alice", Secret(secret))
            CredentialService(gateway).put(DATASOURCE, DataSource("mysql", "db.internal"), payload)

        agent = GatewayAgent(path)

        def use() -> bytes:
            resolved = agent.use_credential(DATASOURCE, job_id="bench-job")
            return resolved.secret.reveal() if resolved.secret is not None else b""

        def agent_context() -> RequestContext:
            return RequestContext(actor="agent:bench", channel="agent", request_id="bench-job")

        def open_cold() -> bytes:
            # use_credential minus its audit entry: open the vault, read the row,
            # unwrap the data key under the GMK, decrypt.
            with Gateway.open(path, agent_context()) as opened:
                record = CredentialService(opened).get(DATASOURCE)
                gmk = opened.master_key_for(record.sealed.gmk_version)
                return open_at_rest(gmk, record.binding, record.sealed).reveal()

        warm = Gateway.open(path, agent_context())
        try:
            warm_service = CredentialService(warm)
            record = warm_service.get(DATASOURCE)
            gmk = warm.master_key_for(record.sealed.gmk_version)

            def open_warm() -> bytes:
                row = warm_service.get(DATASOURCE)
                key = warm.master_key_for(row.sealed.gmk_version)
                return open_at_rest(key, row.binding, row.sealed).reveal()

            def envelope_only() -> bytes:
                return open_at_rest(gmk, record.binding, record.sealed).reveal()

            tink_open, tink_note = _tink_envelope(secret)
            cases: dict[str, Callable[[], bytes]] = {
                "gwvault": use,
                "gwvault-open-only": open_cold,
                "gwvault-open-warm": open_warm,
                "gwvault-envelope-only": envelope_only,
                "tink-envelope-aead": tink_open,
            }
            for name, call in cases.items():
                _check(name, call(), secret)
            measured = interleaved_throughput(
                dict(cases), rounds=rounds, seconds_per_burst=burst, group="stored-open"
            )
        finally:
            warm.close()
    notes = {
        "gwvault": "vault.agent.GatewayAgent(path).use_credential(name, job_id): open the vault"
        " (file keystore unwraps the GMK), read the row, unwrap the DEK, AES-256-GCM decrypt,"
        " and write + commit one MACed audit entry (a signed checkpoint every 100 entries)",
        "gwvault-open-only": "use_credential minus the audit entry: Gateway.open per call +"
        " CredentialService.get + vault.format.envelope.open_at_rest (GMK unwrapped through the"
        " file keystore per call)",
        "gwvault-open-warm": "Gateway opened once (GMK cached, as `gwvault serve` does):"
        " CredentialService.get (SQLite read) + open_at_rest per call, no audit entry",
        "gwvault-envelope-only": "vault.format.envelope.open_at_rest on a prepared record: DEK"
        " unwrap (AES-256-GCM under the GMK) + AES-256-GCM decrypt, associated data = binding JSON",
        "tink-envelope-aead": tink_note,
    }
    return _noted(measured, notes)


def _tink_envelope(secret: bytes) -> tuple[Callable[[], bytes], str]:
    tink, aead = _peer("tink"), _peer("tink.aead")
    aead.register()
    templates = aead.aead_key_templates
    remote = tink.new_keyset_handle(templates.AES256_GCM).primitive(aead.Aead)
    envelope = aead.KmsEnvelopeAead(templates.AES256_GCM, remote)
    associated = DATASOURCE.encode("ascii")
    ciphertext = envelope.encrypt(secret, associated)

    def open_() -> bytes:
        return bytes(envelope.decrypt(ciphertext, associated))

    return open_, (
        "tink.aead.KmsEnvelopeAead(AES256_GCM DEK template, remote = a local AES256_GCM Aead"
        " primitive).decrypt of a prepared 200-byte ciphertext, associated data = name; no storage"
    )
