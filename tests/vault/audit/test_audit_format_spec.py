"""docs/audit-format.md, held to its word: its worked example recomputes, and a
verifier written from it alone (``independent_verifier``, no gwvault code)
reaches ``gwvault audit verify-export``'s verdict, at the same entry, on real
exports of both key types across a key rotation and a prune, and on every
forgery of the tamper matrix (T-AU-5, T-AU-13)."""

from __future__ import annotations

import ast
import datetime
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_keys.gateway_identity import GatewayCertificate, KeyType, b64url
from tests.conftest import fixed_clock
from tests.vault.audit import independent_verifier as independent
from tests.vault.audit.test_audit_chain import (
    KAT_DIGEST,
    KAT_DIGEST_NO_TARGET,
    KAT_FIELDS,
    KAT_GATEWAY,
    KAT_GENESIS,
)
from tests.vault.audit.test_audit_signer_trust import (
    ROTATION_CASES,
    resign_after_an_edit_with_the_old_key,
    strip_rotation,
)
from tests.vault.audit.test_audit_tamper import EXPORT_CASES
from tests.vault.audit.trails import (
    Lines,
    RotatedExport,
    build_trail,
    flipped_signature,
    forged_identity,
    line_index,
    read_lines,
    write_export,
    write_lines,
)
from vault.audit.export import verify_export
from vault.audit.log import AuditLog
from vault.audit.report import TrailReport
from vault.context import RequestContext
from vault.format.audit_chain import checkpoint_message, genesis, rotation_message
from vault.gateway import Gateway
from vault.keys.certificates import CertificateService

DOC = Path(__file__).resolve().parents[3] / "docs" / "audit-format.md"
START = datetime.datetime(2030, 1, 1, 9, 0, tzinfo=datetime.UTC)  # after the template vault
Edit = Callable[[Lines], None]


def agree(path: Path, certificate: GatewayCertificate) -> TrailReport:
    """gwvault's report on the export, after checking the independent verifier's matches."""
    _, report = verify_export(path, certificate)
    verdict = independent.verify(path.read_bytes(), certificate.pem)
    assert (verdict.ok, verdict.first_bad_seq) == (report.ok, report.first_bad_seq), (
        report.summary(),
        verdict.problem,
    )
    assert verdict.signed_through == report.signed_through
    if report.ok:
        shown = (report.first_seq, report.last_seq, report.signed_at, report.unvouched)
        assert (verdict.first_seq, verdict.last_seq, verdict.signed_at, verdict.unvouched) == shown
    return report


def edited(path: Path, edit: Edit) -> Path:
    lines = read_lines(path)
    edit(lines)
    write_lines(path, lines)
    return path


def test_the_independent_verifier_uses_nothing_of_gwvault() -> None:
    tree = ast.parse(Path(independent.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in imported}
    allowed = {"__future__", "base64", "dataclasses", "hashlib", "json", "re", "typing", "uuid"}
    assert roots <= allowed | {"cryptography"}, roots


def test_the_worked_example_holds() -> None:
    text = DOC.read_text()
    prev = genesis(KAT_GATEWAY)
    assert prev.hex() == KAT_GENESIS == independent.genesis(KAT_GATEWAY).hex()
    line = {"seq": KAT_FIELDS.seq, **{k: getattr(KAT_FIELDS, k) for k in independent.ENTRY_FIELDS}}
    assert independent.entry_hash(prev, line).hex() == KAT_DIGEST
    assert independent.entry_hash(prev, {**line, "target": None}).hex() == KAT_DIGEST_NO_TARGET
    digest = bytes.fromhex(KAT_DIGEST)
    checkpoint = checkpoint_message(KAT_GATEWAY, 150, digest, KAT_FIELDS.at, "interval")
    rotation = rotation_message(
        KAT_GATEWAY, 150, digest, KAT_FIELDS.at, from_thumbprint="AAAA", to_thumbprint="BBBB"
    )
    statement = {"seq": 150, "head": KAT_DIGEST, "at": KAT_FIELDS.at}
    assert checkpoint == independent.checkpoint_message(
        KAT_GATEWAY, {**statement, "reason": "interval"}
    )
    assert rotation == independent.rotation_message(
        KAT_GATEWAY, {**statement, "from": "AAAA", "to": "BBBB"}
    )
    for value in (KAT_GATEWAY, KAT_GENESIS, KAT_DIGEST, KAT_DIGEST_NO_TARGET):
        assert value in text
    assert f"    {checkpoint.decode()}\n" in text and f"    {rotation.decode()}\n" in text


# -- a gateway's life: a rotation to the other key type, then a prune --------------


@dataclass(frozen=True)
class Lifetime:
    before_prune: Path  # the rotation record between two interval checkpoints
    after_prune: Path  # starts after the rotation, behind a prune checkpoint
    first: GatewayCertificate
    second: GatewayCertificate


def _on(day: int) -> RequestContext:
    return RequestContext("test:alice", "cli", clock=fixed_clock(START.replace(day=day)))


@pytest.fixture(scope="session")
def _lifetimes(
    vault_templates: dict[KeyType, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[KeyType, Lifetime]:
    made = {}
    for key_type, template in vault_templates.items():
        work = tmp_path_factory.mktemp(f"lifetime-{key_type}")
        shutil.copytree(template, work / "data")
        made[key_type] = _live(work, "rsa-3072" if key_type == "ec-p256" else "ec-p256")
    return made


def _live(work: Path, other: KeyType) -> Lifetime:
    data = work / "data"
    with Gateway.open(data, _on(2)) as gateway:
        build_trail(gateway, 130)
        first = gateway.certificate()
    with Gateway.open(data, _on(3)) as gateway:
        second = CertificateService(gateway).rotate(other)  # entry 131
        build_trail(gateway, 151)
    with Gateway.open(data, _on(5)) as gateway:
        build_trail(gateway, 260)
        write_export(gateway, work / "before.jsonl")
    with Gateway.open(data, _on(12)) as gateway:
        assert AuditLog(gateway).prune(START.replace(day=4)).through_seq == 151
        write_export(gateway, work / "after.jsonl")
    return Lifetime(work / "before.jsonl", work / "after.jsonl", first, second)


@pytest.fixture
def lifetime(_lifetimes: dict[KeyType, Lifetime], key_type: KeyType, tmp_path: Path) -> Lifetime:
    """This test's own copies of the two exports of the key type's gateway."""
    made = _lifetimes[key_type]
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    shutil.copy(made.before_prune, before)
    shutil.copy(made.after_prune, after)
    return Lifetime(before, after, made.first, made.second)


def test_both_verifiers_accept_real_exports_across_a_rotation_and_a_prune(
    lifetime: Lifetime,
) -> None:
    assert lifetime.first.key_type != lifetime.second.key_type
    for certificate in (lifetime.first, lifetime.second):
        before = agree(lifetime.before_prune, certificate)
        assert before.ok and (before.first_seq, before.rotations) == (1, 1), before.summary()
        assert before.checkpoints == 3 and before.unvouched == 0  # 100, 200, the export's
        after = agree(lifetime.after_prune, certificate)
        assert after.ok and after.first_seq == 152 and after.unvouched == 0, after.summary()
    lines = read_lines(lifetime.after_prune)
    assert [line["type"] for line in lines[1:3]] == ["rotation", "checkpoint"]  # both before 152


def drop_the_prune_checkpoint(lines: Lines) -> None:
    [i] = [i for i, line in enumerate(lines) if line.get("reason") == "prune"]
    del lines[i]


def flip_the_prune_signature(lines: Lines) -> None:
    [prune] = [line for line in lines if line.get("reason") == "prune"]
    prune["signature"] = flipped_signature(prune["signature"])


def prune_further_behind_a_checkpoint_of_ones_own(lines: Lines) -> None:
    """Entries 152..160 removed too, behind a forged prune checkpoint at 160."""
    gateway_id = str(lines[0]["gateway_id"])
    key, cert = forged_identity(gateway_id)
    certificates = lines[0]["certificates"]
    assert isinstance(certificates, list)
    certificates.append(cert.pem.decode())
    head = bytes.fromhex(str(lines[line_index(lines, "entry", 160)]["hash"]))
    signature = b64url(key.sign(checkpoint_message(gateway_id, 160, head, "2030-01-12", "prune")))
    prune = {"type": "checkpoint", "seq": 160, "head": head.hex(), "at": "2030-01-12",
             "reason": "prune", "thumbprint": cert.thumbprint, "signature": signature}  # fmt: skip
    first, last = line_index(lines, "entry", 152), line_index(lines, "entry", 160)
    lines[first : last + 1] = [prune]


PRUNE_CASES: list[tuple[Edit, int]] = [
    (drop_the_prune_checkpoint, 1),
    (flip_the_prune_signature, 152),
    (prune_further_behind_a_checkpoint_of_ones_own, 160),
]


@pytest.mark.parametrize(
    ("edit", "first_bad"), PRUNE_CASES, ids=[c[0].__name__ for c in PRUNE_CASES]
)
def test_both_verifiers_refuse_a_pruned_export_tampered_with(
    lifetime: Lifetime, edit: Edit, first_bad: int
) -> None:
    report = agree(edited(lifetime.after_prune, edit), lifetime.second)
    assert (report.ok, report.first_bad_seq) == (False, first_bad), report.summary()


@pytest.mark.parametrize("case", EXPORT_CASES, ids=[c[0].__name__ for c in EXPORT_CASES])
def test_both_verifiers_catch_each_forgery_of_the_tamper_matrix_at_the_same_entry(
    exported: tuple[Path, GatewayCertificate], case: tuple[Edit, int, str]
) -> None:
    path, certificate = exported
    edit, first_bad, _ = case
    report = agree(edited(path, edit), certificate)
    assert (report.ok, report.first_bad_seq) == (False, first_bad)


def test_both_verifiers_catch_rotation_forgeries_at_the_same_entry(
    rotated: RotatedExport,
) -> None:
    original = rotated.path.read_bytes()
    edits = [edit for edit, _ in ROTATION_CASES]
    edits += [strip_rotation, resign_after_an_edit_with_the_old_key(rotated)]
    for edit in edits:
        rotated.path.write_bytes(original)
        edited(rotated.path, edit)
        for certificate in (rotated.old, rotated.new):
            agree(rotated.path, certificate)
