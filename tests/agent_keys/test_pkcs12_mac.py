"""The PKCS#12 MAC at the key encryption's cost: the KDF against published vectors,
against cryptography's own MAC, and the files it makes against OpenSSL's reader."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from agent_keys.errors import IntegrityError
from agent_keys.gateway_identity import generate_gateway_identity, new_gateway_id
from agent_keys.pkcs12 import PKCS12_KDF_ROUNDS, export_private_key_pkcs12
from agent_keys.pkcs12_mac import (
    PKCS12_MAC_ITERATIONS,
    _mac_key,
    mac_iterations,
    strengthen_mac,
)
from agent_keys.randomness import system_random
from agent_keys.secret import Secret

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "pkcs12_mac_kdf.json").read_text()
)["vectors"]
PASSWORD = "an export passphrase, with 😀 outside the BMP"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['iterations']}-iterations")
def test_the_mac_key_matches_the_published_vectors(vector: dict[str, Any]) -> None:
    key = _mac_key(
        Secret.from_text(vector["password"]), bytes.fromhex(vector["salt"]), vector["iterations"]
    )
    assert key.hex() == vector["key"]


def _library_pfx(password: str) -> bytes:
    """What cryptography writes with the export's settings, before the MAC is redone."""
    gateway_id = new_gateway_id(system_random)
    now = datetime.datetime.now(datetime.UTC)
    key, cert = generate_gateway_identity("gw", gateway_id, "ec-p256", now, system_random)
    loaded = serialization.load_der_private_key(key.to_pkcs8().reveal(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(1000)  # cheap: only the MAC is under test here
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(b"gw", loaded, cert.certificate, None, encryption)


def test_cryptography_still_fixes_the_mac_at_2048_iterations() -> None:
    # Why pkcs12_mac exists; if this fails, a cryptography release may set the
    # MAC's cost itself and the module can go (see its docstring).
    assert mac_iterations(_library_pfx(PASSWORD)) == 2048


def test_a_strengthened_file_opens_in_openssl_with_the_password_and_only_with_it() -> None:
    stronger = strengthen_mac(_library_pfx(PASSWORD), Secret.from_text(PASSWORD), system_random)
    assert mac_iterations(stronger) == PKCS12_MAC_ITERATIONS == 2 * PKCS12_KDF_ROUNDS
    key, cert, _ = pkcs12.load_key_and_certificates(stronger, PASSWORD.encode())
    assert key is not None and cert is not None
    with pytest.raises(ValueError, match="Invalid password or PKCS12 data"):
        pkcs12.load_key_and_certificates(stronger, b"an export passphrase, with a typo")


def test_a_password_other_than_the_files_is_refused_before_anything_is_made() -> None:
    # The KDF must reproduce the library's MAC first: a mismatch (here: another
    # password) is an error, never a file whose MAC nothing can check.
    with pytest.raises(IntegrityError, match="nothing was written"):
        strengthen_mac(_library_pfx(PASSWORD), Secret.from_text(PASSWORD + "!"), system_random)


def test_the_export_carries_the_strong_mac_and_a_fresh_salt_each_time() -> None:
    gateway_id = new_gateway_id(system_random)
    now = datetime.datetime.now(datetime.UTC)
    key, cert = generate_gateway_identity("gw", gateway_id, "ec-p256", now, system_random)
    password = Secret.from_text(PASSWORD)
    salts = set()
    for _ in range(2):
        mac_data = asn1_pkcs12.Pfx.load(
            export_private_key_pkcs12(key, cert, password, system_random)
        )["mac_data"]
        assert mac_data["iterations"].native == PKCS12_MAC_ITERATIONS
        salts.add(mac_data["mac_salt"].native)
    assert len(salts) == 2
