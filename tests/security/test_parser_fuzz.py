"""Property fuzzing of every parser of outside input: only the documented errors come out.

Each parser gets arbitrary bytes and mutations of a valid input (bit flips,
byte overwrites, truncation, insertions, deletions, splices with another valid
input).  The one assertion is the parser's error contract: it returns or it
raises the documented ``VaultError`` subclass - never a ``ValueError``,
``OverflowError``, ``KeyError`` or anything else a caller would not map to an
exit code or a status code.

Already fuzzed elsewhere, so not repeated here: single-character changes and
random payloads of EncryptedCredentials (tests/vault/format/test_encrypted_credential.py),
random JSON values in API bodies (tests/web/test_api_hostile.py), audit export
files (tests/vault/audit/test_audit_chain.py), key wraps (tests/agent_keys/test_keywrap.py)
and envelopes (tests/vault/format/test_envelope.py).

``max_examples`` is ``scaled(short, long)`` (tests/security/scale.py).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agent_keys.recovery_key as recovery_key_module
from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.gateway_identity import (
    GatewayCertificate,
    GatewayPrivateKey,
    KeyType,
    generate_gateway_identity,
)
from agent_keys.pkcs12 import load_pem_identity, load_pkcs12_identity
from agent_keys.randomness import system_random
from agent_keys.secret import Secret
from agent_keys.tls_identity import generate_tls_identity, parse_tls_import
from tests.security.fuzz_targets import build_bundle, fast_kek
from tests.security.scale import scaled
from vault.format.connection_string import parse_connection_string
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import (
    CredentialPayload,
    SealedTarget,
    open_credential,
    seal_credential,
)
from vault.format.recovery_bundle import (
    open_bundle,
    read_header,
)
from vault.proxy.settings import environment_route, parse_no_proxy, parse_proxy_url
from web.json_body import SEALED_MEMBERS, SEALED_REQUIRED, json_object, sealed_credential_body

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
IAT = int(NOW.timestamp())
GATEWAY_ID = "6d1f3c9e-2b4a-4f8e-9c1d-7a5b3e2f1d0c"
DS = "sales-db"
T = TypeVar("T")
Recorder = Callable[[str, object], None]
BUNDLE_KEY = Secret.from_text("orbit walnut trellis quasar lantern 42")

FUZZ = settings(
    max_examples=scaled(150, 5000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Parsers that run a cryptographic check per example (PKCS#12 MAC, RSA-OAEP).
FUZZ_SLOW = settings(FUZZ, max_examples=scaled(100, 5000))


# -- mutations -------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """One of ``seeds`` after 1-4 random edits (flip, overwrite, cut, insert, delete, splice)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x22, 0x2E, 0x7B]))
        elif kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:  # splice: our head, another seed's tail
            other = draw(st.sampled_from(seeds))
            data = data[:at] + other[draw(st.integers(0, max(len(other) - 1, 0))) :]
    return bytes(data)


def fuzz(
    record_property: Recorder,
    how: settings,
    strategy: st.SearchStrategy[T],
    check: Callable[[T], None],
) -> None:
    """Run ``check`` on the examples of ``strategy``; record how many ran as ``cases``."""
    count = 0

    @how
    @given(strategy)
    def run(value: T) -> None:
        nonlocal count
        count += 1
        check(value)

    run()
    record_property("cases", count)


def _as_text(data: bytes) -> str:
    return data.decode("latin-1")  # every byte a character: flips may leave ASCII


def _refused_only(expected: type[Exception], call: Callable[[], object]) -> None:
    """``call`` returns or raises ``expected``; any other exception fails the test."""
    with contextlib.suppress(expected):
        call()


# -- EncryptedCredential ---------------------------------------------------------

_IDENTITIES: dict[KeyType, tuple[GatewayPrivateKey, GatewayCertificate]] = {
    key_type: generate_gateway_identity("gw", GATEWAY_ID, key_type, NOW, system_random)
    for key_type in ("ec-p256", "rsa-3072")
}
_KEYS = {cert.thumbprint: key for key, cert in _IDENTITIES.values()}
_TARGET = SealedTarget.of(DataSource("postgresql", "db.example:5432", "sales"))
_PAYLOADS = [
    CredentialPayload("basic", "alice", Secret.from_text("s3cret")),
    CredentialPayload("key", None, Secret.from_text("api-key-123")),
    CredentialPayload("anonymous", None, None),
]
_TOKENS = [
    seal_credential(cert, DS, _TARGET, payload, issued_at=IAT, random=system_random)
    for _key, cert in _IDENTITIES.values()
    for payload in _PAYLOADS
]
_TOKEN_BYTES = [token.encode("ascii") for token in _TOKENS]


def _open(token: str) -> None:
    _refused_only(IntegrityError, lambda: open_credential(token, _KEYS, GATEWAY_ID, DS, _TARGET))


def test_the_seed_tokens_open() -> None:
    for token in _TOKENS:
        open_credential(token, _KEYS, GATEWAY_ID, DS, _TARGET)
    with pytest.raises(IntegrityError):
        open_credential(_TOKENS[0][:-2], _KEYS, GATEWAY_ID, DS, _TARGET)


def test_arbitrary_text_is_not_an_encrypted_credential(record_property: Recorder) -> None:
    texts = st.text(max_size=600) | st.binary(max_size=600).map(_as_text)
    fuzz(record_property, FUZZ, texts, _open)


def test_a_mutated_encrypted_credential_opens_or_fails_with_the_one_error(
    record_property: Recorder,
) -> None:
    fuzz(record_property, FUZZ_SLOW, mutated(_TOKEN_BYTES).map(_as_text), _open)


def test_segments_spliced_across_tokens_fail_with_the_one_error(record_property: Recorder) -> None:
    """Segment i of the spliced token is segment ``picks[i][1]`` of token ``picks[i][0]``."""
    pick = st.tuples(st.integers(0, len(_TOKENS) - 1), st.integers(0, 4))
    fuzz(record_property, FUZZ_SLOW, st.lists(pick, min_size=5, max_size=5), _check_splice)


def _check_splice(picks: list[tuple[int, int]]) -> None:
    token = ".".join(_TOKENS[t].split(".")[s] for t, s in picks)
    sources = {t for t, _ in picks}
    positions = [s for _, s in picks]
    if len(sources) == 1 and positions == [0, 1, 2, 3, 4]:
        open_credential(token, _KEYS, GATEWAY_ID, DS, _TARGET)  # unchanged: it opens
    else:
        with pytest.raises(IntegrityError):
            open_credential(token, _KEYS, GATEWAY_ID, DS, _TARGET)


# -- recovery bundles ------------------------------------------------------------


_BUNDLES = [build_bundle(1, b"SQLite format 3\x00" + bytes(200)), build_bundle(3, b"x" * 40)]


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(recovery_key_module, "derive_recovery_kek", fast_kek)
    yield


def test_the_seed_bundles_open(fast_kdf: None) -> None:
    for bundle in _BUNDLES:
        assert open_bundle(bundle, BUNDLE_KEY).gateway_id == GATEWAY_ID
    with pytest.raises(InvalidInputError):
        open_bundle(_BUNDLES[0][:-1], BUNDLE_KEY)


def _read_header(data: bytes) -> None:
    _refused_only(InvalidInputError, lambda: read_header(data))


def test_arbitrary_bytes_are_not_a_bundle_header(record_property: Recorder) -> None:
    after_magic = st.binary(max_size=512).map(lambda b: _BUNDLES[0][:28] + b)
    fuzz(record_property, FUZZ, st.binary(max_size=2048) | after_magic, _read_header)


def test_a_mutated_bundle_header_reads_or_is_refused(record_property: Recorder) -> None:
    fuzz(record_property, FUZZ, mutated(_BUNDLES), _read_header)


def _header_edits() -> st.SearchStrategy[tuple[list[str | int], object]]:
    """A path into the header (member, list index, member) and a hostile JSON value."""
    hostile: st.SearchStrategy[object] = st.sampled_from(
        [None, True, 0, -1, 1.5, 2**64, "1e999", "-1e999", "", "AA==", "!!", [], {}, [{}], "x" * 99]
    )
    top = st.sampled_from(
        ["gateway_id", "name", "epoch", "created_at", "current_gmk_version", "recovery",
         "wrapped_bundle_key"]
    )  # fmt: skip
    member = st.sampled_from(["version", "salt", "opslimit", "memlimit", "wrapped"])
    path = top.map(lambda m: [m]) | member.map(lambda m: ["recovery", 0, m])
    return st.tuples(path, hostile)


def _edit_header(bundle: bytes, path: list[str | int], value: object) -> bytes:
    header, encoded, body = read_header(bundle)
    target: Any = header
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    fresh = json.dumps(header, separators=(",", ":")).encode()
    # JSON numbers too large for a float parse as infinity; json.dumps cannot write one.
    fresh = fresh.replace(b'"1e999"', b"1e999").replace(b'"-1e999"', b"-1e999")
    magic_len = len(bundle) - len(body) - len(encoded) - 4
    return bundle[:magic_len] + struct.pack(">I", len(fresh)) + fresh + body


def test_a_mutated_bundle_opens_or_is_refused_with_the_one_error(
    fast_kdf: None, record_property: Recorder
) -> None:
    """Everything ``open_bundle`` parses and checks, with the KDF swapped for SHA-256."""
    edited = st.tuples(st.sampled_from(_BUNDLES), _header_edits()).map(
        lambda pick: _edit_header(pick[0], *pick[1])
    )

    def check(data: bytes) -> None:
        _refused_only(InvalidInputError, lambda: open_bundle(data, BUNDLE_KEY))

    fuzz(record_property, FUZZ, mutated(_BUNDLES) | edited, check)


# -- PKCS#12 and PEM key pairs -----------------------------------------------------

_EC_KEY, _EC_CERT = _IDENTITIES["ec-p256"]
_PASSWORD = b"quiet Harbor 7 lantern orbit"


def _crypto_key(key: GatewayPrivateKey) -> Any:
    return serialization.load_der_private_key(key.to_pkcs8().reveal(), password=None)


def _p12(key: GatewayPrivateKey, cert: GatewayCertificate, encrypted: bool) -> bytes:
    # Few KDF rounds: the production 600 000 would make each example 0.3 s; the
    # structure a mutation hits is the same.
    encryption: serialization.KeySerializationEncryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(1000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(_PASSWORD)
        if encrypted
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"gw", _crypto_key(key), cert.certificate, None, encryption
    )


_P12S = [
    _p12(key, cert, encrypted) for key, cert in _IDENTITIES.values() for encrypted in (True, False)
]
_PEM_CERTS = [cert.pem for _key, cert in _IDENTITIES.values()]
_PEM_KEYS = [
    _crypto_key(key).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for key, _cert in _IDENTITIES.values()
]


def _load_p12(data: bytes, password: bytes) -> None:
    _refused_only(
        InvalidInputError, lambda: load_pkcs12_identity(data, Secret(password), GATEWAY_ID, NOW)
    )


def test_the_seed_key_pairs_import() -> None:
    for data in _P12S[::2]:  # the encrypted ones; the others have no password
        load_pkcs12_identity(data, Secret(_PASSWORD), GATEWAY_ID, NOW)
    for cert_pem, key_pem in zip(_PEM_CERTS, _PEM_KEYS, strict=True):
        load_pem_identity(cert_pem, Secret(key_pem), GATEWAY_ID, NOW)


def test_a_mutated_or_arbitrary_pkcs12_imports_or_is_refused(record_property: Recorder) -> None:
    files = st.binary(max_size=2048) | mutated(_P12S)
    passwords = st.sampled_from([_PASSWORD, b""])
    fuzz(record_property, FUZZ_SLOW, st.tuples(files, passwords), lambda p: _load_p12(*p))


def test_a_mutated_or_arbitrary_pem_pair_imports_or_is_refused(record_property: Recorder) -> None:
    certs = st.binary(max_size=1024) | mutated(_PEM_CERTS) | st.sampled_from(_PEM_CERTS)
    keys = st.binary(max_size=1024) | mutated(_PEM_KEYS) | st.sampled_from(_PEM_KEYS)

    def check(pair: tuple[bytes, bytes]) -> None:
        _refused_only(
            InvalidInputError,
            lambda: load_pem_identity(pair[0], Secret(pair[1]), GATEWAY_ID, NOW),
        )

    fuzz(record_property, FUZZ_SLOW, st.tuples(certs, keys), check)


def test_a_mutated_or_arbitrary_gateway_certificate_parses_or_is_refused(
    record_property: Recorder,
) -> None:
    """``GatewayCertificate.from_pem``: ``encrypt-value --cert``, the certificate download."""

    def check(pem: bytes) -> None:
        def parse() -> None:
            cert = GatewayCertificate.from_pem(pem)
            _ = (cert.thumbprint, cert.key_type, cert.gateway_id, cert.not_after)
            _ = cert.public_key()

        _refused_only(InvalidInputError, parse)

    fuzz(record_property, FUZZ, st.binary(max_size=1024) | mutated(_PEM_CERTS), check)


_TLS = generate_tls_identity(["gw.example.internal"], NOW, system_random)
_TLS_CHAINS = [_TLS.chain_pem, _TLS.chain_pem + _PEM_CERTS[0]]
_TLS_KEYS = [_TLS.private_key_pem().reveal()]


def test_a_mutated_tls_import_is_adopted_or_refused(record_property: Recorder) -> None:
    """``gwvault tls import --cert --key``."""
    chains = st.binary(max_size=1024) | mutated(_TLS_CHAINS) | st.sampled_from(_TLS_CHAINS)
    keys = mutated(_TLS_KEYS) | st.sampled_from(_TLS_KEYS)

    def check(pair: tuple[bytes, bytes]) -> None:
        _refused_only(InvalidInputError, lambda: parse_tls_import(pair[0], Secret(pair[1]), NOW))

    fuzz(record_property, FUZZ_SLOW, st.tuples(chains, keys), check)


# -- API JSON bodies -------------------------------------------------------------

_APP = Flask(__name__)
_BODIES = [
    json.dumps(
        {"type": "postgresql", "server": "db:5432", "database": "sales", "encrypted_credential": t}
    ).encode()
    for t in _TOKENS[:2]
] + [b'{"type":"mysql","server":"db","encrypted_credential":"a.b.c.d.e"}']


def test_a_mutated_or_arbitrary_json_body_parses_or_is_refused(record_property: Recorder) -> None:
    """``web.json_body``: raw bytes (not just JSON values) up to the typed result."""
    bodies = st.binary(max_size=512) | mutated(_BODIES)
    types = st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", ""]
    )
    fuzz(record_property, FUZZ, st.tuples(bodies, types), lambda p: _parse_body(*p))


def _parse_body(body: bytes, content_type: str) -> None:
    with _APP.test_request_context("/", method="PUT", data=body, content_type=content_type):
        _refused_only(InvalidInputError, lambda: json_object(SEALED_MEMBERS, SEALED_REQUIRED))
    with _APP.test_request_context("/", method="PUT", data=body, content_type=content_type):
        _refused_only(InvalidInputError, sealed_credential_body)


# -- what the fuzzing found (kept as fixed inputs: a short run may not hit them) ----


def _cert_der_with(change: Callable[[bytes], bytes]) -> bytes:
    der = _EC_CERT.certificate.public_bytes(serialization.Encoding.DER)
    changed = change(der)
    assert changed != der
    return changed


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def _x509_version_10(der: bytes) -> bytes:
    return der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x0a", 1)  # v3 -> "v11"


def _point_off_the_curve(der: bytes) -> bytes:
    point = _EC_CERT.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return der.replace(point, point[:-1] + bytes([point[-1] ^ 1]), 1)


# -- connection strings --------------------------------------------------------

_CONNECTION_STRINGS = [
    text.encode()
    for text in (
        'Data Source=sql.example.com,1433;Initial Catalog=\'sa;les\';User ID="a""b";'
        "Password='p''w';Encrypt=yes;TrustServerCertificate=no;EncryptedCredential=a.b.c.d.e",
        "Server=tcp:[fd00::5],1433;Database=x;UID=u;Provider=MSOLEDBSQL;Application Name=r;",
        "postgresql://al%40ice:p%3Aw@db.example.com:5432/sales?sslmode=verify-ca"
        "&encrypted_credential=a.b.c.d.e&application_name=r",
        "mysql://bob:pw@[::1]:3306/db?ssl-mode=VERIFY_IDENTITY",
    )
]


def test_a_mutated_connection_string_parses_or_is_refused(record_property: Recorder) -> None:
    def check(data: bytes) -> None:
        text = _as_text(data)
        _refused_only(InvalidInputError, lambda: parse_connection_string(text))
        _refused_only(InvalidInputError, lambda: parse_connection_string(text, allow_password=True))

    fuzz(record_property, FUZZ, mutated(_CONNECTION_STRINGS) | st.binary(max_size=200), check)


_PROXY_SETTINGS = [
    s.encode()
    for s in (
        "http://proxy.example.org:3128",
        "HTTPS_PROXY=http://10.0.0.1:8080;NO_PROXY=.internal,10.0.0.0/8,192.0.2.7,*",
    )
]


def test_a_mutated_proxy_url_or_environment_parses_or_is_refused(
    record_property: Recorder,
) -> None:
    # --url, a stored proxy and the service's HTTPS_PROXY/NO_PROXY (vault.proxy.settings).
    def check(data: bytes) -> None:
        text = _as_text(data)
        proxy, _, no_proxy = text.removeprefix("HTTPS_PROXY=").partition(";NO_PROXY=")
        _refused_only(InvalidInputError, lambda: parse_proxy_url(proxy))
        _refused_only(InvalidInputError, lambda: parse_no_proxy(no_proxy))
        env = {"HTTPS_PROXY": proxy, "NO_PROXY": no_proxy}
        _refused_only(InvalidInputError, lambda: environment_route(env))

    fuzz(record_property, FUZZ, mutated(_PROXY_SETTINGS) | st.binary(max_size=200), check)


_FOUND_CERTS = {
    "x509 version 10 (cryptography InvalidVersion)": _pem(_cert_der_with(_x509_version_10)),
    "EC point not on P-256 (ValueError: Invalid key)": _pem(_cert_der_with(_point_off_the_curve)),
}


@pytest.mark.parametrize("pem", _FOUND_CERTS.values(), ids=_FOUND_CERTS.keys())
def test_found_certificates_are_refused_with_invalid_input(pem: bytes) -> None:
    ec_key_pem = _PEM_KEYS[0]
    with pytest.raises(InvalidInputError):
        load_pem_identity(pem, Secret(ec_key_pem), GATEWAY_ID, NOW)
    with pytest.raises(InvalidInputError):
        parse_tls_import(pem, Secret(ec_key_pem), NOW)
    with pytest.raises(InvalidInputError):
        GatewayCertificate.from_pem(pem).public_key()


@pytest.mark.parametrize("member", ["opslimit", "memlimit", "version"])
@pytest.mark.parametrize("value", ["1e999", "-1e999"])
def test_found_bundle_numbers_beyond_a_float_are_refused(
    fast_kdf: None, member: str, value: str
) -> None:
    """``"opslimit": 1e999`` parses as infinity; ``int()`` of it is an OverflowError."""
    with pytest.raises(InvalidInputError):
        open_bundle(_edit_header(_BUNDLES[0], ["recovery", 0, member], value), BUNDLE_KEY)
