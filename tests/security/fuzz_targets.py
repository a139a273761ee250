"""Coverage-guided (atheris/libFuzzer) targets for the parsers of untrusted blobs.

    python -m tests.security.fuzz_targets seed DIR
    python -m tests.security.fuzz_targets credential DIR [libFuzzer flags]
    python -m tests.security.fuzz_targets bundle DIR [libFuzzer flags]
    python -m tests.security.fuzz_targets syslog DIR [libFuzzer flags]

``seed`` writes a gateway identity (``DIR/identity``) and a seed corpus of
valid inputs (``DIR/credential``, ``DIR/bundle``, ``DIR/syslog``).  A target fuzzes with that
corpus; any exception but the documented one escapes ``TestOneInput``, which
libFuzzer reports as a crash (non-zero exit, a ``crash-*`` artifact).

* ``credential``: ``open_credential`` (EncryptedCredential parse and open) with
  the seeded EC and RSA keys; documented error ``IntegrityError``.
* ``bundle``: ``read_header`` and ``open_bundle`` of recovery bundles;
  documented error ``InvalidInputError``.  Argon2id at its floor (256 MiB,
  about 0.7 s) would allow one run a second, so the KDF is swapped for SHA-256
  here: everything ``open_bundle`` parses and checks around it is fuzzed, the
  KDF itself is not (tests/security/test_brute_force.py checks its cost).
* ``syslog``: ``gwvault_records``, the reader of a syslog collector's file
  (``audit verify --against``); documented error ``InvalidInputError``, and a
  record it returns must make a message again.

tests/security/test_atheris.py runs each target in a subprocess.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.deterministic import counter_random

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
GATEWAY_ID = "6d1f3c9e-2b4a-4f8e-9c1d-7a5b3e2f1d0c"
DATASOURCE = "sales-db"
BUNDLE_KEY_TEXT = "orbit walnut trellis quasar lantern 42"
TARGETS = ("credential", "bundle", "syslog")

# Everything below imports the vault lazily: under ``main`` the imports happen
# inside ``atheris.instrument_imports`` so libFuzzer sees their branches.


def fast_kek(recovery_key: Any, params: Any) -> Any:
    """SHA-256 stand-in for ``derive_recovery_kek`` (Argon2id) when fuzzing bundles."""
    from agent_keys.secret import Secret

    return Secret(hashlib.sha256(params.salt + recovery_key.reveal()).digest())


def build_bundle(versions: int, database: bytes, seed: bytes = b"bundle") -> bytes:
    """A valid recovery bundle with ``versions`` GMK versions, wrapped via ``fast_kek``."""
    from agent_keys.keywrap import wrap_key
    from agent_keys.master_key import MasterKey, master_key_context
    from agent_keys.recovery_key import RecoveryKdfParams, RecoveryWrap
    from agent_keys.secret import Secret
    from vault.format.recovery_bundle import FORMAT_VERSION, seal_bundle, wrap_entry

    random = counter_random(seed + b"-%d" % versions)
    params = RecoveryKdfParams(random(16))
    kek = fast_kek(Secret.from_text(BUNDLE_KEY_TEXT), params)
    gmks = [MasterKey.generate(v, random) for v in range(1, versions + 1)]
    wraps = [
        RecoveryWrap(
            gmk.version,
            wrap_key(kek, gmk.key, master_key_context(GATEWAY_ID, gmk.version), random),
            params,
        )
        for gmk in gmks
    ]
    header: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "gateway_id": GATEWAY_ID,
        "name": "gw-test",
        "epoch": 3,
        "created_at": NOW.isoformat(),
        "current_gmk_version": versions,
        "recovery": [wrap_entry(wrap) for wrap in wraps],
    }
    return seal_bundle(header, gmks[-1], database, random)


def write_seeds(directory: Path) -> dict[str, Path]:
    """The identity and a seed corpus per target under ``directory``; the corpus dirs."""
    from agent_keys.gateway_identity import generate_gateway_identity
    from agent_keys.randomness import system_random
    from agent_keys.secret import Secret
    from vault.format.encrypted_credential import CredentialPayload, seal_credential

    identity = directory / "identity"
    identity.mkdir(parents=True, exist_ok=True)
    corpora = {target: directory / target for target in TARGETS}
    for corpus in corpora.values():
        corpus.mkdir(exist_ok=True)
    payloads = [
        CredentialPayload("basic", "alice", Secret.from_text("s3cret")),
        CredentialPayload("key", None, Secret.from_text("api-key-123")),
        CredentialPayload("anonymous", None, None),
    ]
    for key_type in ("ec-p256", "rsa-3072"):
        key, cert = generate_gateway_identity("gw", GATEWAY_ID, key_type, NOW, system_random)
        (identity / f"{key_type}.key").write_bytes(key.to_pkcs8().reveal())
        (identity / f"{key_type}.pem").write_bytes(cert.pem)
        for i, payload in enumerate(payloads):
            token = seal_credential(
                cert,
                DATASOURCE,
                _fuzz_target(),
                payload,
                issued_at=int(NOW.timestamp()),
                random=system_random,
            )
            (corpora["credential"] / f"{key_type}-{i}").write_bytes(token.encode("ascii"))
    bundles = [build_bundle(1, b"SQLite format 3\x00" + bytes(64)), build_bundle(3, b"x" * 40)]
    for i, bundle in enumerate(bundles):
        (corpora["bundle"] / f"bundle-{i}").write_bytes(bundle)
    for i, line in enumerate(_syslog_seeds()):
        (corpora["syslog"] / f"line-{i}").write_bytes(line)
    return corpora


def _syslog_seeds() -> list[bytes]:
    from vault.audit.sinks.syslog_message import rfc5424_message
    from vault.format.audit_chain import canonical_json

    entry = {
        "type": "entry", "gateway_id": GATEWAY_ID, "seq": 7, "at": NOW.isoformat(),
        "target": None, "details": '{"version":1}', "prev": "ab" * 32, "hash": "cd" * 32,
    }  # fmt: skip
    checkpoint = {"type": "checkpoint", "gateway_id": GATEWAY_ID, "seq": 7, "head": "cd" * 32}
    escaped = entry | {"gateway_id": 'a "quoted" \\ [gateway]'}
    lines = [rfc5424_message(r, hostname="gw", procid="1") for r in (entry, checkpoint, escaped)]
    return [*lines, canonical_json(entry).encode(), b"<13>1 - host sshd 22 - - Accepted"]


def credential_target(identity: Path) -> Callable[[bytes], None]:
    from cryptography.hazmat.primitives import serialization

    from agent_keys.errors import IntegrityError
    from agent_keys.gateway_identity import GatewayCertificate, GatewayPrivateKey
    from vault.format.encrypted_credential import open_credential

    keys: dict[str, GatewayPrivateKey] = {}
    for key_type in ("ec-p256", "rsa-3072"):
        cert = GatewayCertificate.from_pem((identity / f"{key_type}.pem").read_bytes())
        private = serialization.load_der_private_key(
            (identity / f"{key_type}.key").read_bytes(), password=None
        )
        keys[cert.thumbprint] = GatewayPrivateKey(private, cert.key_type)  # type: ignore[arg-type]

    target = _fuzz_target()

    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(IntegrityError):
            open_credential(data.decode("latin-1"), keys, GATEWAY_ID, DATASOURCE, target)

    return test_one_input


def bundle_target() -> Callable[[bytes], None]:
    import agent_keys.recovery_key
    from agent_keys.errors import InvalidInputError
    from agent_keys.secret import Secret
    from vault.format.recovery_bundle import open_bundle, read_header

    agent_keys.recovery_key.derive_recovery_kek = fast_kek  # see the module docstring
    recovery_key = Secret.from_text(BUNDLE_KEY_TEXT)

    def test_one_input(data: bytes) -> None:
        try:
            read_header(data)
        except InvalidInputError:
            return  # open_bundle would refuse it the same way
        with contextlib.suppress(InvalidInputError):
            open_bundle(data, recovery_key)

    return test_one_input


def _fuzz_target() -> Any:
    """The target the seed tokens are sealed for (imported late, for atheris)."""
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import SealedTarget

    return SealedTarget.of(DataSource("postgresql", "db.example:5432", "sales"))


def syslog_target() -> Callable[[bytes], None]:
    from agent_keys.errors import InvalidInputError
    from vault.audit.sinks.syslog_message import gwvault_records, rfc5424_message

    def test_one_input(data: bytes) -> None:
        try:
            record = gwvault_records(data)
        except InvalidInputError:
            return
        if record is not None:
            rfc5424_message(record, hostname="gw", procid="1")  # raises nothing

    return test_one_input


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[1] == "seed":
        write_seeds(Path(argv[2]))
        return
    if len(argv) < 3 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} seed DIR | {{{','.join(TARGETS)}}} DIR [libFuzzer flags]")
    import atheris  # type: ignore[import-untyped]

    target, directory = argv[1], Path(argv[2])
    with atheris.instrument_imports(include=["vault", "agent_keys"]):
        if target == "credential":
            test_one_input = credential_target(directory / "identity")
        else:
            test_one_input = bundle_target() if target == "bundle" else syslog_target()
    corpus = directory / target
    atheris.Setup([argv[0], *argv[3:], str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
