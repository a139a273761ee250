import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
    new_gateway_id,
)
from agent_keys.randomness import system_random
from tests.deterministic import counter_random

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-3072"])
def test_certificate_names_the_gateway_for_two_years(key_type: KeyType) -> None:
    gateway_id = new_gateway_id(system_random)
    key, cert = generate_gateway_identity("gw-sales", gateway_id, key_type, NOW, system_random)
    parsed = GatewayCertificate.from_pem(cert.pem)
    assert parsed.name == "gw-sales"
    assert parsed.gateway_id == gateway_id
    assert parsed.key_type == key_type
    assert parsed.thumbprint == cert.thumbprint and len(parsed.thumbprint) == 43
    assert parsed.not_after - NOW == datetime.timedelta(days=730)
    basic = parsed.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = parsed.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement == (key_type == "ec-p256")
    assert usage.key_encipherment == (key_type == "rsa-3072")
    assert "redacted" in repr(key)


def test_private_key_round_trips_through_pkcs8() -> None:
    key, _ = generate_gateway_identity(
        "gw", new_gateway_id(system_random), "ec-p256", NOW, system_random
    )
    again = GatewayPrivateKey.from_pkcs8(key.to_pkcs8(), "ec-p256")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert again.agree(peer) == key.agree(peer)


def test_ec_key_comes_from_the_handed_randomness() -> None:
    gateway_id = "3f1c2b7e-8d4a-4c2f-9a1b-0e5d6c7b8a90"
    first, _ = generate_gateway_identity("gw", gateway_id, "ec-p256", NOW, counter_random())
    second, _ = generate_gateway_identity("gw", gateway_id, "ec-p256", NOW, counter_random())
    assert first.to_pkcs8() == second.to_pkcs8()


def test_a_certificate_without_a_gateway_id_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-a-gateway")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    with pytest.raises(InvalidInputError, match="not a gwvault gateway certificate"):
        GatewayCertificate.from_pem(cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(
    "pem", [b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"x" * 20000]
)
def test_garbage_is_not_a_certificate(pem: bytes) -> None:
    with pytest.raises(InvalidInputError):
        GatewayCertificate.from_pem(pem)
