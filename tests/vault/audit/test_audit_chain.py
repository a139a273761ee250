"""The audit format against its specification (docs/audit-format.md), recomputed
here from the byte layout with hashlib and hmac alone, and the export reader
under fuzzing, beside a verifier written from that document alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import GatewayCertificate, KeyType
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.vault.audit import independent_verifier as independent
from vault.audit.export import verify_export
from vault.audit.log import AuditLog
from vault.audit.verify import TrailReport
from vault.format.audit_chain import (
    AuditFields,
    checkpoint_message,
    entry_digest,
    entry_mac,
    genesis,
)
from vault.gateway import Gateway

# -- the specification, written out independently of vault.format.audit_chain ----------


def spec_genesis(gateway_id: str) -> bytes:
    return hashlib.sha256(b"gwvault-audit-genesis/v1|" + gateway_id.encode("utf-8")).digest()


def spec_field(value: str | None) -> bytes:
    """0x00 if absent, else 0x01 || u32be(UTF-8 length) || UTF-8 bytes."""
    if value is None:
        return b"\x00"
    raw = value.encode("utf-8")
    return b"\x01" + len(raw).to_bytes(4, "big") + raw


def spec_entry_digest(prev: bytes, fields: AuditFields) -> bytes:
    text = (fields.at, fields.actor, fields.channel, fields.action, fields.target,
            fields.outcome, fields.request_id, fields.details)  # fmt: skip
    message = b"gwvault-audit-entry/v1\x00" + prev + fields.seq.to_bytes(8, "big")
    return hashlib.sha256(message + b"".join(spec_field(v) for v in text)).digest()


def spec_entry_mac(key: bytes, digest: bytes) -> bytes:
    return hmac.new(key, b"gwvault-audit-mac/v1\x00" + digest, hashlib.sha256).digest()


def spec_checkpoint_message(gateway_id: str, seq: int, head: bytes, at: str, reason: str) -> bytes:
    # Sorted keys, no whitespace; every value here is plain ASCII, so no escaping.
    return (
        f'{{"at":"{at}","gateway_id":"{gateway_id}","head":"{head.hex()}","reason":"{reason}",'
        f'"seq":{seq},"type":"gwvault-audit-checkpoint/v1"}}'
    ).encode("ascii")


# -- known answers, computed once with the functions above ----------------------

KAT_GATEWAY = "5b0c2f7e-3d1a-4c8e-9f60-2a7b1c9d4e83"
KAT_FIELDS = AuditFields(
    seq=150,
    at="2026-03-01T09:30:00+00:00",
    actor="os:alice",
    channel="cli",
    action="credential.updated",
    target="pg-main",
    outcome="ok",
    request_id="0123456789abcdef0123456789abcdef",
    details='{"version":2}',
)
KAT_KEY = bytes(range(32))
KAT_GENESIS = "9178f2c4b62b4e700dc1043e667e193aecd848da32c7532ebb769639dc8b46e9"
KAT_DIGEST = "0526de260560c0a677868df2e95d0a43d2e9600a5133465165310b22b81600a3"
KAT_DIGEST_NO_TARGET = "e51fde9f6e3e106abdb8b1c582765f731485ffa57b47b21f8d20f9d006000dfc"
KAT_MAC = "d94f5334b3a56f713e68cdd2938cda804fa2aa1c42c28d8e8a3b5ab2403baaa2"
KAT_CHECKPOINT = (
    b'{"at":"2026-03-01T09:30:00+00:00","gateway_id":"5b0c2f7e-3d1a-4c8e-9f60-2a7b1c9d4e83",'
    b'"head":"HEAD","reason":"interval","seq":150,"type":"gwvault-audit-checkpoint/v1"}'
)


def test_the_known_answers_follow_from_the_spec() -> None:
    prev = spec_genesis(KAT_GATEWAY)
    assert prev.hex() == KAT_GENESIS
    digest = spec_entry_digest(prev, KAT_FIELDS)
    assert digest.hex() == KAT_DIGEST
    no_target = AuditFields(**{**vars(KAT_FIELDS), "target": None})
    assert spec_entry_digest(prev, no_target).hex() == KAT_DIGEST_NO_TARGET
    assert spec_entry_mac(KAT_KEY, digest).hex() == KAT_MAC
    message = spec_checkpoint_message(KAT_GATEWAY, 150, digest, KAT_FIELDS.at, "interval")
    assert message == KAT_CHECKPOINT.replace(b"HEAD", KAT_DIGEST.encode())


def test_the_module_gives_the_known_answers() -> None:
    prev = genesis(KAT_GATEWAY)
    assert prev.hex() == KAT_GENESIS
    digest = entry_digest(prev, KAT_FIELDS)
    assert digest.hex() == KAT_DIGEST
    no_target = AuditFields(**{**vars(KAT_FIELDS), "target": None})
    assert entry_digest(prev, no_target).hex() == KAT_DIGEST_NO_TARGET
    assert entry_mac(Secret(KAT_KEY), digest).hex() == KAT_MAC
    message = checkpoint_message(KAT_GATEWAY, 150, digest, KAT_FIELDS.at, "interval")
    assert message == KAT_CHECKPOINT.replace(b"HEAD", KAT_DIGEST.encode())


# A lone surrogate is not text (it has no UTF-8 form); everything else is.
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_fields = st.builds(
    AuditFields,
    seq=st.integers(1, 2**63 - 1),
    at=_text,
    actor=_text,
    channel=_text,
    action=_text,
    target=st.none() | _text,
    outcome=_text,
    request_id=_text,
    details=_text,
)


@given(
    prev=st.binary(min_size=32, max_size=32),
    fields=_fields,
    key=st.binary(min_size=32, max_size=32),
)
def test_the_module_agrees_with_the_spec_on_any_entry(
    prev: bytes, fields: AuditFields, key: bytes
) -> None:
    digest = entry_digest(prev, fields)
    assert digest == spec_entry_digest(prev, fields)
    assert entry_mac(Secret(key), digest) == spec_entry_mac(key, digest)


def test_an_absent_target_differs_from_an_empty_one() -> None:
    empty = AuditFields(**{**vars(KAT_FIELDS), "target": ""})
    no_target = AuditFields(**{**vars(KAT_FIELDS), "target": None})
    prev = bytes(32)
    assert entry_digest(prev, empty) != entry_digest(prev, no_target)


# -- a real stored trail, recomputed from the spec ------------------------------


@pytest.fixture
def stored_trail(gateway: Gateway) -> Gateway:
    gateway.audit.record("credential.tested", None, "failed", reason="unreachable")
    gateway.audit.record("credential.created", "pg-naïve-日本", note="ünïcødé ✓", version=1)
    gateway.audit.record("vault.unlock-failed", None, "failed")
    gateway.audit.record_unkeyed("vault.unlock-failed", None, "failed", attempt=2)
    with gateway.store.write():
        for n in range(100):
            gateway.audit.record("credential.used", "pg-main", job=f"job-{n}")
    return gateway


def test_a_stored_trail_recomputes_from_the_spec(stored_trail: Gateway) -> None:
    gateway = stored_trail
    key = gateway.audit.mac_key().key.reveal()
    entries = gateway.store.audit_events()
    assert {e.target for e in entries} >= {None, "pg-naïve-日本"}
    assert any("\\u" in e.details for e in entries)  # canonical JSON escapes non-ASCII
    prev = spec_genesis(gateway.gateway_id)
    hashes: dict[int, bytes] = {}
    for entry in entries:
        assert entry.prev_hash == prev, entry.seq
        assert entry.hash == spec_entry_digest(prev, entry), entry.seq
        if entry.action == "vault.unlock-failed" and entry.mac is None:
            assert entry.details == '{"attempt":2}'
        else:
            assert entry.mac == spec_entry_mac(key, entry.hash), entry.seq
        hashes[entry.seq] = prev = entry.hash
    checkpoints = gateway.store.audit_checkpoints()
    assert [c.seq for c in checkpoints] == [100]
    certificate = gateway.certificate()
    for checkpoint in checkpoints:
        assert checkpoint.head == hashes[checkpoint.seq]
        assert checkpoint.thumbprint == certificate.thumbprint
        message = spec_checkpoint_message(
            gateway.gateway_id, checkpoint.seq, checkpoint.head, checkpoint.at, checkpoint.reason
        )
        assert certificate.verifies(message, checkpoint.signature)
        assert not certificate.verifies(
            message.replace(b'"seq":', b'"seq":1'), checkpoint.signature
        )


def test_an_exported_trail_recomputes_from_the_spec(stored_trail: Gateway, tmp_path: Path) -> None:
    gateway = stored_trail
    path = tmp_path / "audit.jsonl"
    AuditLog(gateway).export(lambda lines: path.write_bytes(b"".join(lines)))
    header, *lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert header["gateway_id"] == gateway.gateway_id
    certificate = GatewayCertificate.from_pem(header["certificates"][0].encode("ascii"))
    prev, heads = spec_genesis(header["gateway_id"]), {}
    for line in lines:
        if line["type"] == "entry":
            fields = AuditFields(**{k: line[k] for k in vars(KAT_FIELDS)})
            assert bytes.fromhex(line["prev"]) == prev
            prev = bytes.fromhex(line["hash"])
            assert prev == spec_entry_digest(bytes.fromhex(line["prev"]), fields)
            heads[line["seq"]] = prev
        else:
            assert bytes.fromhex(line["head"]) == heads[line["seq"]]
            signature = _b64url_decode(line["signature"])
            message = spec_checkpoint_message(
                header["gateway_id"], line["seq"], prev, line["at"], line["reason"]
            )
            assert certificate.verifies(message, signature)
    assert lines[-1]["type"] == "checkpoint" and lines[-1]["reason"] == "export"
    assert lines[-2]["action"] == "audit.exported"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the export reader under fuzzing ----------------------------------------------


@pytest.fixture(scope="module")
def valid_export(
    vault_templates: dict[KeyType, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[bytes, GatewayCertificate]]:
    work = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(vault_templates["ec-p256"], work / "data")
    path = work / "audit.jsonl"
    with Gateway.open(work / "data", make_context()) as gateway:
        for n in range(6):
            gateway.audit.record("credential.used", "pg-main" if n % 2 else None, job=n)
        AuditLog(gateway).export(lambda lines: path.write_bytes(b"".join(lines)))
        yield path.read_bytes(), gateway.certificate()


def _verdict(data: bytes, certificate: GatewayCertificate, path: Path) -> TrailReport | None:
    """The report on ``data``, or None when the reader refused it as malformed."""
    path.write_bytes(data)
    try:
        return verify_export(path, certificate)[1]
    except InvalidInputError:
        return None


def _meaning(data: bytes) -> tuple[list[object], set[str]]:
    """What the lines after the header say: the entries, and the set of
    checkpoints (a signature by its bytes, not its text)."""
    lines = [json.loads(line) for line in data.split(b"\n")[1:-1]]
    checkpoints = set()
    for line in lines:
        if line["type"] == "checkpoint":
            line["signature"] = _b64url_decode(line["signature"]).hex()
            checkpoints.add(json.dumps(line, sort_keys=True))
    return [line for line in lines if line["type"] == "entry"], checkpoints


_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@_FUZZ
@given(
    data=st.binary(max_size=4096)
    | st.lists(_json, max_size=5).map(
        lambda values: b"".join(json.dumps(v).encode() + b"\n" for v in values)
    )
)
def test_arbitrary_bytes_are_refused_or_fail(
    valid_export: tuple[bytes, GatewayCertificate], tmp_path: Path, data: bytes
) -> None:
    report = _verdict(data, valid_export[1], tmp_path / "fuzz.jsonl")
    assert report is None or report.ok is False


@st.composite
def _mutated(draw: st.DrawFn, original: bytes) -> bytes:
    lines = original.split(b"\n")[:-1]
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["flip", "cut", "insert", "drop", "repeat", "swap", "value"]))
    data = bytearray(original)
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        data[at] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "cut":
        return bytes(data[:at] + data[at + draw(st.integers(1, 64)) :])
    if kind == "insert":
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:])
    if kind == "drop":
        del lines[i]
    elif kind == "repeat":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        value = json.loads(lines[i])
        key = draw(st.sampled_from(sorted(value)) | st.text(max_size=8))
        if draw(st.booleans()) and key in value:
            del value[key]
        else:
            value[key] = draw(_json)
        lines[i] = json.dumps(value).encode()
    return b"".join(line + b"\n" for line in lines)


@_FUZZ
@given(seed=st.data())
def test_a_mutated_export_is_refused_or_fails_unless_it_says_the_same(
    valid_export: tuple[bytes, GatewayCertificate], tmp_path: Path, seed: st.DataObject
) -> None:
    original, certificate = valid_export
    data = seed.draw(_mutated(original))
    report = _verdict(data, certificate, tmp_path / "fuzz.jsonl")
    if report is not None and report.ok:
        # Only the unsigned header may change, the spelling of the same JSON, or
        # where the signed checkpoints stand, and which are repeated or left out
        # (the closing one excepted: the verdict rests on it).
        entries, checkpoints = _meaning(data)
        original_entries, original_checkpoints = _meaning(original)
        closing = max(original_checkpoints, key=lambda c: json.loads(c)["seq"])
        assert entries == original_entries
        assert closing in checkpoints
        assert checkpoints <= original_checkpoints
        assert report.last_seq == len(entries)


@_FUZZ
@given(seed=st.data())
def test_a_verifier_written_from_the_format_document_agrees_on_mutated_exports(
    valid_export: tuple[bytes, GatewayCertificate], tmp_path: Path, seed: st.DataObject
) -> None:
    """docs/audit-format.md decides refusals and verdicts as gwvault does."""
    original, certificate = valid_export
    data = seed.draw(_mutated(original))
    report = _verdict(data, certificate, tmp_path / "fuzz.jsonl")
    try:
        verdict = independent.verify(data, certificate.pem)
    except independent.Refused:
        assert report is None
    else:
        assert report is not None
        assert (verdict.ok, verdict.first_bad_seq) == (report.ok, report.first_bad_seq)


def test_the_valid_export_itself_verifies(
    valid_export: tuple[bytes, GatewayCertificate], tmp_path: Path
) -> None:
    report = _verdict(valid_export[0], valid_export[1], tmp_path / "fuzz.jsonl")
    assert report is not None and report.ok and report.entries == 9


def test_a_header_certificate_that_is_not_ascii_is_refused(
    valid_export: tuple[bytes, GatewayCertificate], tmp_path: Path
) -> None:
    header, rest = valid_export[0].split(b"\n", 1)
    value = json.loads(header)
    value["certificates"] = ["-----BEGIN CERTIFICATE-----\né\n-----END CERTIFICATE-----\n"]
    data = json.dumps(value).encode() + b"\n" + rest
    assert _verdict(data, valid_export[1], tmp_path / "fuzz.jsonl") is None
