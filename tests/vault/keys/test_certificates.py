"""The gateway certificate's life through the installed ``gwvault``: rotate, rewrap,
retire, PKCS#12 export (read by the real openssl) and import (made by it)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from agent_keys.gateway_identity import GATEWAY_URI_PREFIX, KeyType, PrivateKey
from agent_keys.pkcs12 import PKCS12_KDF_ROUNDS
from agent_keys.pkcs12_mac import PKCS12_MAC_ITERATIONS
from tests.conftest import CANARY, make_context
from tests.service_fixtures import require_service
from tests.vault.cli.gwvault_process import GwvaultCli, Run, private_file
from vault.gateway import Gateway

OPENSSL = Path("/usr/bin/openssl")
PASSWORD = "quiet Harbor 7 lantern orbit"
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def cli(any_data_dir: Path) -> GwvaultCli:
    return GwvaultCli(any_data_dir)


@pytest.fixture
def ec_cli(data_dir: Path) -> GwvaultCli:
    return GwvaultCli(data_dir)


@pytest.fixture
def openssl() -> Path:
    if not OPENSSL.exists():
        require_service(f"{OPENSSL} is not installed")
    return OPENSSL


# -- helpers ---------------------------------------------------------------------


def shown(cli: GwvaultCli) -> dict[str, Any]:
    run = cli("cert", "show", "--json")
    assert run.code == 0, run.err
    facts: dict[str, Any] = run.json()
    return facts


def export_public(cli: GwvaultCli, out: Path) -> Path:
    assert cli("cert", "export", "--public", "--out", out).code == 0
    return out


MYSQL_DB = ("--type", "mysql", "--server", "db")  # the one target these values are sealed for


def seal(cli: GwvaultCli, cert: Path, datasource: str, secret: str = CANARY) -> str:
    run = cli("encrypt-value", "--cert", cert, "--datasource", datasource, *MYSQL_DB,
              "--username", "u", stdin=secret)  # fmt: skip
    assert run.code == 0, run.err
    return run.out.strip()


def put(cli: GwvaultCli, datasource: str, token: str) -> Run:
    return cli("credentials", "put", datasource, *MYSQL_DB, "--encrypted-credential", token)


def header(token: str) -> dict[str, Any]:
    protected = token.split(".", maxsplit=1)[0]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(protected + "=" * 3))
    return value


def audit_actions(data_dir: Path) -> list[tuple[str, str | None, str]]:
    with Gateway.open(data_dir, make_context()) as gateway:
        return [(e.action, e.target, e.outcome) for e in gateway.store.audit_events()]


def new_key(kind: str) -> PrivateKey:
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(65537, int(kind.removeprefix("rsa-")))


def gateway_cert(
    key: PrivateKey,
    gateway_id: str | None,
    *,
    days: tuple[int, int] = (-1, 365),
    key_usage: bool | None = True,
    issuer: tuple[PrivateKey, x509.Name] | None = None,
) -> x509.Certificate:
    """A certificate as an enterprise CA (``issuer``) or a self-signer would make it.

    ``gateway_id`` None leaves out our SAN URI; ``key_usage`` None leaves out
    KeyUsage, False makes it digitalSignature only.
    """
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported gateway")])
    signer, issuer_name = issuer or (key, subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
    )
    if gateway_id is not None:
        uri = x509.UniformResourceIdentifier(GATEWAY_URI_PREFIX + gateway_id)
        builder = builder.add_extension(x509.SubjectAlternativeName([uri]), critical=False)
    if key_usage is not None:
        is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=key_usage and not is_ec, data_encipherment=False,
                key_agreement=key_usage and is_ec, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    return builder.sign(signer, hashes.SHA256())


def write_pem_pair(
    tmp_path: Path, key: PrivateKey, cert: x509.Certificate, stem: str = "in"
) -> tuple[Path, Path]:
    cert_path = tmp_path / f"{stem}.crt.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_path, private_file(tmp_path / f"{stem}.key.pem", key_pem.decode("ascii"))


def openssl_pkcs12(
    openssl: Path, tmp_path: Path, key: PrivateKey, cert: x509.Certificate, password: Path
) -> Path:
    """A PKCS#12 file made by ``openssl pkcs12 -export``, as an admin would."""
    cert_path, key_path = write_pem_pair(tmp_path, key, cert, "openssl")
    out = tmp_path / "from-openssl.p12"
    subprocess.run(
        [openssl, "pkcs12", "-export", "-inkey", key_path, "-in", cert_path, "-out", out,
         "-passout", f"file:{password}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out


def gateway_id_of(cli: GwvaultCli) -> str:
    value: str = cli("status", "--json").json()["gateway_id"]
    return value


# -- rotate, rewrap, retire ------------------------------------------------------


def test_rotation_keeps_old_values_working_until_the_old_key_is_retired(
    cli: GwvaultCli, any_data_dir: Path, key_type: KeyType, tmp_path: Path
) -> None:
    before = shown(cli)
    old_token = seal(cli, export_public(cli, tmp_path / "old.pem"), "sales")
    assert cli.put_login("stored", CANARY).code == 0  # under a data key, not the gateway key

    rotated = cli("cert", "rotate")
    assert rotated.code == 0, rotated.err
    after = shown(cli)
    assert after["thumbprint"] != before["thumbprint"]
    assert (after["key_type"], after["gateway_id"], after["name"]) == (
        key_type, before["gateway_id"], before["name"],
    )  # fmt: skip
    assert [(v["version"], v["state"]) for v in after["versions"]] == [
        (2, "current"), (1, "legacy"),
    ]  # fmt: skip
    assert after["versions"][1]["thumbprint"] == before["thumbprint"]
    assert put(cli, "sales", old_token).code == 0  # the legacy key still opens it

    rewrapped = cli("rewrap-value", stdin=old_token + "\n")
    assert rewrapped.code == 0, rewrapped.err
    new_token = rewrapped.out.strip()
    assert header(new_token)["kid"] == after["thumbprint"]
    assert header(new_token)["ds"] == "sales"
    from_file = private_file(tmp_path / "old.jwe", old_token)
    assert header(cli("rewrap-value", "--in", from_file).out.strip())["kid"] == after["thumbprint"]

    assert cli("cert", "retire", "1").code == 0
    assert [v["version"] for v in shown(cli)["versions"]] == [2]
    assert put(cli, "sales", old_token).code == 2
    assert put(cli, "sales", new_token).code == 0
    assert cli("rewrap-value", stdin=old_token).code == 2
    assert cli("credentials", "verify").code == 0  # stored credentials were never touched

    actions = audit_actions(any_data_dir)
    assert ("cert.rotated", before["gateway_id"], "ok") in actions
    assert ("credential.value-rewrapped", "sales", "ok") in actions
    assert ("cert.retired", before["gateway_id"], "ok") in actions
    assert not any(CANARY in output for output in cli.outputs)


def test_rotate_can_change_the_key_type_and_show_lists_versions(ec_cli: GwvaultCli) -> None:
    assert ec_cli("cert", "rotate", "--key-type", "rsa-3072").code == 0
    assert shown(ec_cli)["key_type"] == "rsa-3072"
    text = ec_cli("cert", "show")
    assert "versions:" in text.out and "legacy" in text.out and "current" in text.out
    assert "warning" not in text.err


def test_retire_refuses_the_current_version_and_unknown_ones(ec_cli: GwvaultCli) -> None:
    before = shown(ec_cli)
    current = ec_cli("cert", "retire", "1")
    assert current.code == 2 and "current" in current.err
    assert ec_cli("cert", "retire", "7").code == 1  # not found
    assert shown(ec_cli) == before


def test_rewrap_refuses_a_value_for_another_gateway(
    ec_cli: GwvaultCli, vault_templates: dict[KeyType, Path], tmp_path: Path
) -> None:
    other = GwvaultCli(tmp_path / "other")
    shutil.copytree(vault_templates["rsa-3072"], other.data_dir)
    foreign = seal(other, export_public(other, tmp_path / "other.pem"), "sales")
    before = shown(ec_cli)
    refused = ec_cli("rewrap-value", stdin=foreign)
    assert refused.code == 2 and "does not open for this gateway" in refused.err
    assert ec_cli("rewrap-value", stdin="not.a.jwe.at.all").code == 2
    assert shown(ec_cli) == before
    assert ("credential.value-rewrapped", None, "refused") in audit_actions(ec_cli.data_dir)


# -- PKCS#12 export --------------------------------------------------------------


def test_pkcs12_export_is_private_and_openssl_reads_it(
    cli: GwvaultCli, any_data_dir: Path, openssl: Path, tmp_path: Path
) -> None:
    password = private_file(tmp_path / "p12.pass", PASSWORD + "\n")
    out = tmp_path / "gateway.p12"
    run = cli("cert", "export", "--out", out, "--password-file", password)
    assert run.code == 0, run.err
    assert out.stat().st_mode & 0o777 == 0o600
    info: list[str | Path] = [openssl, "pkcs12", "-info", "-in", out, "-noout"]
    good = subprocess.run([*info, "-passin", f"file:{password}"], capture_output=True, timeout=60,
                          check=False)  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert b"AES-256-CBC" in good.stderr and b"600000" in good.stderr
    wrong = private_file(tmp_path / "wrong.pass", "not the password at all\n")
    bad = subprocess.run([*info, "-passin", f"file:{wrong}"], capture_output=True, timeout=60,
                         check=False)  # fmt: skip
    assert bad.returncode != 0

    key, cert, _ = pkcs12.load_key_and_certificates(out.read_bytes(), PASSWORD.encode())
    assert cert is not None and key is not None
    assert cert.public_bytes(serialization.Encoding.PEM).decode() == shown(cli)["pem"]
    exported = [a for a in audit_actions(any_data_dir) if a[0] == "cert.exported"]
    assert exported == [("cert.exported", gateway_id_of(cli), "ok")]

    # Re-importing the same key pair is refused: it is already held.
    again = cli("cert", "import", out, "--password-file", password)
    assert again.code == 2 and "already held" in again.err


def _seconds(load: Callable[[], object]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(ValueError):  # a wrong password: timed all the same
        load()
    return time.perf_counter() - started


def test_the_pkcs12_mac_costs_a_guess_what_the_key_encryption_does(
    ec_cli: GwvaultCli, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    # OpenSSL checks the MAC first, with the same password: at cryptography's
    # fixed 2,048 iterations a wrong password was out in ~0.1 ms, not the
    # 600,000 PBKDF2 rounds the README promised (T-CE-2).
    password = private_file(tmp_path / "p12.pass", PASSWORD + "\n")
    out = tmp_path / "gateway.p12"
    assert ec_cli("cert", "export", "--out", out, "--password-file", password).code == 0
    data = out.read_bytes()
    mac_data = asn1_pkcs12.Pfx.load(data)["mac_data"]
    assert mac_data["mac"]["digest_algorithm"]["algorithm"].native == "sha256"
    assert mac_data["iterations"].native == PKCS12_MAC_ITERATIONS == 2 * PKCS12_KDF_ROUNDS
    assert len(mac_data["mac_salt"].native) >= 16
    right = _seconds(lambda: pkcs12.load_key_and_certificates(data, PASSWORD.encode()))
    wrong = _seconds(lambda: pkcs12.load_key_and_certificates(data, b"not the password at all"))
    record_property("right_password_import_ms", round(right * 1000, 1))
    record_property("wrong_password_import_ms", round(wrong * 1000, 1))
    # The right password pays the MAC and two PBKDF2 runs; a wrong one the MAC
    # alone, which must cost about one PBKDF2 run (it cost a thousandth).
    assert wrong >= right / 10, (wrong, right)


def test_pkcs12_export_refusals_write_nothing(ec_cli: GwvaultCli, tmp_path: Path) -> None:
    password = private_file(tmp_path / "p12.pass", PASSWORD)
    existing = tmp_path / "existing.p12"
    existing.write_bytes(b"keep me")
    weak = private_file(tmp_path / "weak.pass", "password123")
    cases: list[tuple[list[str | Path], str]] = [
        (["--out", existing, "--password-file", password], "refusing to overwrite"),
        (["--out", tmp_path / "weak.p12", "--password-file", weak], "PKCS#12 password"),
        (["--out", tmp_path / "key.pem", "--password-file", password], ".p12"),
        (["--public", "--out", tmp_path / "c.pem", "--password-file", password], "no password"),
    ]
    for flags, message in cases:
        run = ec_cli("cert", "export", *flags)
        assert run.code == 2 and message in run.err, run.err
    assert existing.read_bytes() == b"keep me"
    assert not [name for name in ("weak.p12", "key.pem", "c.pem") if (tmp_path / name).exists()]
    assert not [a for a in audit_actions(ec_cli.data_dir) if a[0] == "cert.exported"]


# -- import ----------------------------------------------------------------------


def test_an_openssl_pkcs12_imports_and_becomes_current(
    cli: GwvaultCli, any_data_dir: Path, key_type: KeyType, openssl: Path, tmp_path: Path
) -> None:
    gateway_id = gateway_id_of(cli)
    before = shown(cli)
    old_token = seal(cli, export_public(cli, tmp_path / "old.pem"), "hr")
    # An enterprise CA that includes our SAN URI in the certificate it issues.
    ca_key = new_key("ec-p256")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp Issuing CA")])
    key = new_key(key_type)
    cert = gateway_cert(key, gateway_id, issuer=(ca_key, ca_name))
    password = private_file(tmp_path / "p12.pass", PASSWORD)
    p12 = openssl_pkcs12(openssl, tmp_path, key, cert, password)

    run = cli("cert", "import", p12, "--password-file", password)
    assert run.code == 0, run.err
    after = shown(cli)
    new_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert after["pem"] == new_pem
    assert [(v["version"], v["state"]) for v in after["versions"]] == [
        (2, "current"), (1, "legacy"),
    ]  # fmt: skip
    assert after["versions"][1]["thumbprint"] == before["thumbprint"]
    new_cert = tmp_path / "new.pem"
    new_cert.write_text(new_pem)
    assert put(cli, "sales", seal(cli, new_cert, "sales")).code == 0
    assert put(cli, "hr", old_token).code == 0
    assert ("cert.imported", gateway_id, "ok") in audit_actions(any_data_dir)


def test_a_pem_key_pair_imports_and_a_near_expiry_warns(ec_cli: GwvaultCli, tmp_path: Path) -> None:
    key = new_key("ec-p256")
    cert = gateway_cert(key, gateway_id_of(ec_cli), days=(-1, 10), key_usage=None)
    cert_path, key_path = write_pem_pair(tmp_path, key, cert)
    assert ec_cli("cert", "import", "--cert", cert_path, "--key", key_path).code == 0
    run = ec_cli("cert", "show")
    assert run.code == 0
    assert run.err.startswith("warning: ") and "expires in" in run.err
    assert "cert rotate" in run.err
    status = ec_cli("status")  # the same warning where admins look every day
    assert status.code == 0 and status.err.startswith("warning: ") and "expires in" in status.err


def _refusal_material(case: str, gateway_id: str) -> tuple[PrivateKey, x509.Certificate]:
    key = new_key("ec-p256")
    if case == "key does not match":
        return new_key("ec-p256"), gateway_cert(key, gateway_id)
    if case == "expired":
        return key, gateway_cert(key, gateway_id, days=(-30, -1))
    if case in ("rsa-1024", "ec-p384"):
        weak = new_key(case)
        return weak, gateway_cert(weak, gateway_id)
    if case == "another gateway":
        return key, gateway_cert(key, "0b5e1f6a-3c8d-4e0f-9a1b-2c3d4e5f6a7b")
    if case == "no gateway uri":
        return key, gateway_cert(key, None)
    assert case == "key usage"
    return key, gateway_cert(key, gateway_id, key_usage=False)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("key does not match", "does not belong to the certificate"),
        ("expired", "not valid now"),
        ("rsa-1024", "RSA-1024"),
        ("ec-p384", "secp384r1 is not supported"),
        ("another gateway", "is for gateway 0b5e1f6a"),
        ("no gateway uri", "subjectAltName URI urn:gwvault:gateway:"),
        ("key usage", "keyAgreement"),
    ],
)
def test_import_refusals_change_nothing(
    ec_cli: GwvaultCli, tmp_path: Path, case: str, message: str
) -> None:
    before = shown(ec_cli)
    key, cert = _refusal_material(case, gateway_id_of(ec_cli))
    cert_path, key_path = write_pem_pair(tmp_path, key, cert)
    run = ec_cli("cert", "import", "--cert", cert_path, "--key", key_path)
    assert run.code == 2 and message in run.err, run.err
    assert shown(ec_cli) == before
    # The same pair as PKCS#12 is refused for the same reason (no tool writes a
    # PKCS#12 file whose key does not match its certificate).
    if case != "key does not match":
        password = private_file(tmp_path / "p12.pass", PASSWORD)
        p12 = tmp_path / "in.p12"
        encryption = serialization.BestAvailableEncryption(PASSWORD.encode())
        p12.write_bytes(pkcs12.serialize_key_and_certificates(b"x", key, cert, None, encryption))
        run = ec_cli("cert", "import", p12, "--password-file", password)
        assert run.code == 2 and message in run.err, run.err
        assert shown(ec_cli) == before
    assert not [a for a in audit_actions(ec_cli.data_dir) if a[0] == "cert.imported"]


def test_a_wrong_password_or_a_garbage_file_changes_nothing(
    ec_cli: GwvaultCli, tmp_path: Path
) -> None:
    before = shown(ec_cli)
    key = new_key("ec-p256")
    p12 = tmp_path / "in.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"x", key, gateway_cert(key, gateway_id_of(ec_cli)), None,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )  # fmt: skip
    wrong = private_file(tmp_path / "wrong.pass", "another long passphrase 42")
    garbage = tmp_path / "garbage.p12"
    garbage.write_bytes(b"\x30\x82 this is not PKCS#12")
    for path in (p12, garbage):
        run = ec_cli("cert", "import", path, "--password-file", wrong)
        assert run.code == 2 and "password is wrong" in run.err, run.err
    usage = ec_cli("cert", "import", p12, "--cert", p12)
    assert usage.code == 2 and "either FILE.p12" in usage.err
    assert shown(ec_cli) == before
    assert not [a for a in audit_actions(ec_cli.data_dir) if a[0] == "cert.imported"]
