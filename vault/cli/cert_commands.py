"""``gwvault cert ...`` and ``gwvault rewrap-value``: the gateway certificate's life.

show, export (public PEM, or the key pair as PKCS#12), rotate, import, retire;
rewrap-value moves an EncryptedCredential from a legacy certificate to the
current one.  Passwords come from a file or a prompt, never from argv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent_keys.errors import InvalidInputError
from agent_keys.key_types import KEY_TYPES
from agent_keys.secret import Secret
from vault.cli.flags import Commands
from vault.cli.input import (
    read_private_file,
    read_public_file,
    read_secret,
    write_private_output,
)
from vault.cli.output import EXIT_OK, print_fields, print_json
from vault.format.fingerprints import colon_hex_of_b64url

if TYPE_CHECKING:
    from agent_keys.gateway_identity import GatewayCertificate

_P12_PROMPT = "PKCS#12 password"
_PKCS12_SUFFIXES = (".p12", ".pfx")


def add_parsers(commands: Commands) -> None:
    cert = commands.add_parser("cert", help="the gateway certificate and its key pair versions")
    actions = cert.add_subparsers(dest="cert_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the current certificate and the held versions")
    show.add_argument("--json", action="store_true")
    export = actions.add_parser(
        "export", help="write the public certificate (--public) or the key pair (PKCS#12)"
    )
    export.add_argument("--public", action="store_true", help="the public certificate (PEM)")
    export.add_argument("--out", required=True, metavar="FILE.pem|FILE.p12")
    _add_password_file(export, "else prompted twice")
    rotate = actions.add_parser(
        "rotate", help="new key pair and certificate; the old one stays as legacy"
    )
    rotate.add_argument("--key-type", choices=KEY_TYPES, help="default: the current key's type")
    retire = actions.add_parser("retire", help="delete a legacy key pair version")
    retire.add_argument("version", type=int, metavar="VERSION")
    imported = actions.add_parser(
        "import", help="adopt a key pair (PKCS#12, or --cert/--key PEM) as the current version"
    )
    imported.add_argument("pkcs12", nargs="?", metavar="FILE.p12")
    _add_password_file(imported, "else prompted, or read from a pipe")
    imported.add_argument("--cert", metavar="PEM", help="certificate (with --key)")
    imported.add_argument("--key", metavar="PEM", help="unencrypted private key, mode 0600")
    rewrap = commands.add_parser(
        "rewrap-value",
        help="reseal an EncryptedCredential from a held (legacy) certificate to the current one",
    )
    rewrap.add_argument(
        "--in", dest="input", metavar="FILE", help="the value; else read from standard input"
    )


def _add_password_file(parser: argparse.ArgumentParser, otherwise: str) -> None:
    parser.add_argument(
        "--password-file",
        metavar="F",
        help=f"file (mode 0600) with the PKCS#12 password; {otherwise}",
    )


def cert_show(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.keys.certificates import CertificateService

    with open_for_cli(args) as gateway:
        cert = gateway.certificate()
        service = CertificateService(gateway)
        versions = service.versions()
        warning = service.expiry_warning()
    facts = _facts(cert)
    if args.json:
        versions = [
            {**held, "fingerprint_sha256": colon_hex_of_b64url(held["thumbprint"])}
            for held in versions
        ]
        print_json({**facts, "pem": cert.pem.decode("ascii"), "versions": versions})
    else:
        print_fields({("jwe_kid" if k == "thumbprint" else k): v for k, v in facts.items()})
        print("versions:")
        for held in versions:
            print(
                f"  {held['version']}  {held['state']:<7}  {held['key_type']}"
                f"  until {held['not_after']}"
            )
            print(f"     fingerprint_sha256  {colon_hex_of_b64url(held['thumbprint'])}")
            print(f"     jwe_kid             {held['thumbprint']}")
    if warning:
        sys.stderr.write(f"warning: {warning}\n")
    return EXIT_OK


def cert_export(args: argparse.Namespace) -> int:
    from agent_keys.recovery_key import check_passphrase_policy
    from vault.cli.opening import open_for_cli
    from vault.keys.certificates import CertificateService

    out = Path(args.out)
    if args.public:
        if args.password_file:
            raise InvalidInputError("a public certificate has no password; drop --password-file")
        return _export_public(args, out)
    if out.suffix.lower() not in _PKCS12_SUFFIXES:
        raise InvalidInputError(
            "without --public, export writes the private key as PKCS#12: name the file .p12"
            " (or add --public for the certificate alone)"
        )
    if out.exists() or out.is_symlink():
        raise InvalidInputError(f"{out} exists; refusing to overwrite it")
    password = read_secret(
        _P12_PROMPT,
        args.password_file,
        confirm=True,
        check=lambda value: check_passphrase_policy(value, _P12_PROMPT),
    )
    written: list[Path] = []
    try:
        with open_for_cli(args) as gateway:
            CertificateService(gateway).export_pkcs12(
                password, lambda data: written.append(write_private_output(out, data))
            )
    except BaseException:
        # The audit entry rolled back: leave no export it does not record.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    print(f"wrote the gateway key pair (PKCS#12, mode 0600) to {out}; keep it as safe as the key")
    return EXIT_OK


def cert_rotate(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.keys.certificates import CertificateService

    with open_for_cli(args) as gateway:
        cert = CertificateService(gateway).rotate(args.key_type)
    print(f"the current gateway certificate is now {_named(cert)} ({cert.key_type})")
    print("the previous key is kept as legacy; give sealers the new certificate:")
    print("  gwvault cert export --public --out FILE.pem")
    return EXIT_OK


def cert_import(args: argparse.Namespace) -> int:
    from agent_keys.pkcs12 import MAX_IMPORT_BYTES
    from vault.cli.opening import open_for_cli
    from vault.keys.certificates import CertificateService

    pem_form = args.cert is not None or args.key is not None
    if pem_form == (args.pkcs12 is not None) or (pem_form and not (args.cert and args.key)):
        raise InvalidInputError("give either FILE.p12, or both --cert PEM and --key PEM")
    if pem_form and args.password_file:
        raise InvalidInputError("--password-file is for a PKCS#12 file; the PEM key is unencrypted")
    if pem_form:
        cert_pem = read_public_file(Path(args.cert), "certificate", MAX_IMPORT_BYTES)
        key_pem = read_private_file(Path(args.key), "private key")
        with open_for_cli(args) as gateway:
            cert = CertificateService(gateway).import_pem(cert_pem, Secret(key_pem))
    else:
        data = read_public_file(Path(args.pkcs12), "PKCS#12", MAX_IMPORT_BYTES)
        password = read_secret(_P12_PROMPT, args.password_file)
        with open_for_cli(args) as gateway:
            cert = CertificateService(gateway).import_pkcs12(data, password)
    print(f"imported {_named(cert)} ({cert.key_type}) as the current gateway certificate")
    print("the previous key is kept as legacy")
    return EXIT_OK


def cert_retire(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.keys.certificates import CertificateService

    with open_for_cli(args) as gateway:
        CertificateService(gateway).retire(args.version)
    print(f"retired gateway key version {args.version}; values sealed to it no longer open")
    return EXIT_OK


def rewrap_value(args: argparse.Namespace) -> int:
    from vault.cli.opening import open_for_cli
    from vault.format.encrypted_credential import MAX_TOKEN_CHARS
    from vault.keys.certificates import CertificateService

    if args.input is not None:
        raw = read_public_file(Path(args.input), "EncryptedCredential", MAX_TOKEN_CHARS)
    elif sys.stdin.isatty():
        raise InvalidInputError("pipe the EncryptedCredential in, or give --in FILE")
    else:
        raw = sys.stdin.buffer.read(MAX_TOKEN_CHARS + 1)
    if len(raw) > MAX_TOKEN_CHARS:
        raise InvalidInputError(f"the EncryptedCredential is longer than {MAX_TOKEN_CHARS} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError as e:
        raise InvalidInputError("the EncryptedCredential is not ASCII text") from e
    with open_for_cli(args) as gateway:
        print(CertificateService(gateway).rewrap_value(token))
    return EXIT_OK


def _facts(cert: GatewayCertificate) -> dict[str, str]:
    return {
        "name": cert.name,
        "gateway_id": cert.gateway_id,
        "key_type": cert.key_type,
        "fingerprint_sha256": colon_hex_of_b64url(cert.thumbprint),
        "thumbprint": cert.thumbprint,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "serial": format(cert.certificate.serial_number, "x"),
    }


def _named(cert: GatewayCertificate) -> str:
    return f"SHA-256 {colon_hex_of_b64url(cert.thumbprint)} (JWE kid {cert.thumbprint})"


def _export_public(args: argparse.Namespace, out: Path) -> int:
    from vault.cli.opening import open_for_cli

    with open_for_cli(args) as gateway:
        pem = gateway.certificate().pem
    try:
        out.write_bytes(pem)
        out.chmod(0o644)  # a public certificate is meant to be shared
    except OSError as e:
        raise InvalidInputError(f"cannot write {out}: {e.strerror}") from e
    print(f"wrote the gateway certificate to {out}")
    return EXIT_OK
