"""Whose signatures count (T-AU-13): the certificate the verifier is given, and
those that rotation records, signed by the old and the new key, link to it;
never a certificate that is merely in the export's header or the signers table.

The trail: the tamper matrix's 250 entries (checkpoints at 100 and 200 by the
first key pair), a rotation to a key pair of the other type at 251, entries up
to 320 (a checkpoint at 300 by the new key) and the export at 321.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.gateway_identity import GatewayCertificate, b64url
from tests.vault.audit.trails import (
    ROTATED_AT,
    ROTATED_LAST,
    Lines,
    RotatedExport,
    flipped_signature,
    line_index,
    read_lines,
    rechain_export_from,
    verify_db,
    write_lines,
)
from vault.audit.export import verify_export
from vault.audit.verify import TrailReport
from vault.data_dir import DB_FILE
from vault.format.audit_chain import checkpoint_message

LAST = ROTATED_LAST


def _verify(path: Path, certificate: GatewayCertificate) -> TrailReport:
    return verify_export(path, certificate)[1]


def _edit(path: Path, edit: Callable[[Lines], object]) -> None:
    lines = read_lines(path)
    edit(lines)
    write_lines(path, lines)


def strip_rotation(lines: Lines) -> None:
    del lines[line_index(lines, "rotation", ROTATED_AT)]


def resign_after_an_edit_with_the_old_key(rotated: RotatedExport) -> Callable[[Lines], None]:
    """A leaked legacy key re-signs the checkpoint at 300 after a re-chained edit at 260."""

    def edit(lines: Lines) -> None:
        lines[line_index(lines, "entry", 260)]["target"] = "pg-evil"
        rechain_export_from(lines, 260)
        checkpoint = lines[line_index(lines, "checkpoint", 300)]
        checkpoint["head"] = lines[line_index(lines, "entry", 300)]["hash"]
        message = checkpoint_message(
            rotated.old.gateway_id, 300, bytes.fromhex(str(checkpoint["head"])),
            str(checkpoint["at"]), "interval",
        )  # fmt: skip
        checkpoint["thumbprint"] = rotated.old.thumbprint
        checkpoint["signature"] = b64url(rotated.old_key.sign(message))

    return edit


def flip_old_signature(lines: Lines) -> None:
    rotation = lines[line_index(lines, "rotation", ROTATED_AT)]
    rotation["from_signature"] = flipped_signature(rotation["from_signature"])


def flip_new_signature(lines: Lines) -> None:
    rotation = lines[line_index(lines, "rotation", ROTATED_AT)]
    rotation["to_signature"] = flipped_signature(rotation["to_signature"])


def drop_header_certificates_but_the_newest(lines: Lines) -> None:
    certificates = lines[0]["certificates"]
    assert isinstance(certificates, list)
    del certificates[:-1]


def repeat_the_rotation_record(lines: Lines) -> None:
    i = line_index(lines, "rotation", ROTATED_AT)
    lines.insert(i, dict(lines[i]))


ROTATION_CASES: list[tuple[Callable[[Lines], None], str]] = [
    (flip_old_signature, "is not signed by both keys it names"),
    (flip_new_signature, "is not signed by both keys it names"),
    (drop_header_certificates_but_the_newest, "names a certificate of this gateway that"),
    (repeat_the_rotation_record, "does not continue from the certificate"),
]


def test_a_rotation_record_carries_trust_forwards_and_back(
    rotated: RotatedExport,
) -> None:
    lines = read_lines(rotated.path)
    rotation = lines[line_index(lines, "rotation", ROTATED_AT)]
    assert (rotation["from"], rotation["to"]) == (rotated.old.thumbprint, rotated.new.thumbprint)
    assert lines[line_index(lines, "entry", ROTATED_AT)]["action"] == "cert.rotated"
    assert lines[0]["version"] == 2
    # The auditor's certificate may be the old one (given at deployment) or the new one.
    for certificate in (rotated.old, rotated.new):
        report = _verify(rotated.path, certificate)
        assert report.ok, report.summary()
        assert (report.checkpoints, report.rotations, report.unvouched) == (4, 1, 0)
        assert report.signed_through == LAST
    report = verify_db(rotated.data_dir)  # the vault itself, from its current certificate
    assert report.ok and (report.rotations, report.unvouched) == (1, 0), report.summary()


def test_without_its_rotation_record_the_other_certificate_verifies_nothing(
    rotated: RotatedExport,
) -> None:
    _edit(rotated.path, strip_rotation)
    report = _verify(rotated.path, rotated.new)
    assert report.ok, report.summary()  # the closing checkpoint still covers the whole chain
    assert (report.checkpoints, report.unvouched) == (2, 2)  # 100 and 200 are not counted
    report = _verify(rotated.path, rotated.old)
    assert (report.ok, report.first_bad_seq) == (False, 201)
    assert "not covered by a closing checkpoint" in (report.problem or "")


def test_a_key_rotated_away_from_signs_nothing_after_its_rotation(rotated: RotatedExport) -> None:
    _edit(rotated.path, resign_after_an_edit_with_the_old_key(rotated))
    for certificate in (rotated.old, rotated.new):
        report = _verify(rotated.path, certificate)
        # Reported from the entry after the rotation record, the last statement that held.
        assert (report.ok, report.first_bad_seq) == (False, ROTATED_AT + 1), report.summary()
        assert f"entries 252..{LAST} do not match the checkpoint" in (report.problem or "")


@pytest.mark.parametrize(
    ("edit", "problem"), ROTATION_CASES, ids=[c[0].__name__ for c in ROTATION_CASES]
)
def test_a_tampered_rotation_record_fails_at_its_entry(
    rotated: RotatedExport, edit: Callable[[Lines], None], problem: str
) -> None:
    _edit(rotated.path, edit)
    report = _verify(rotated.path, rotated.new)
    assert (report.ok, report.first_bad_seq) == (False, ROTATED_AT), report.summary()
    assert problem in (report.problem or ""), report.problem


def test_a_version_1_export_still_verifies(rotated: RotatedExport) -> None:
    # What gwvault wrote before rotation records: the same lines, version 1.
    _edit(rotated.path, lambda lines: lines[0].update(version=1))
    with pytest.raises(InvalidInputError, match="version 1, which has no rotation records"):
        verify_export(rotated.path, rotated.new)
    _edit(rotated.path, strip_rotation)
    report = _verify(rotated.path, rotated.new)
    assert report.ok and (report.checkpoints, report.unvouched) == (2, 2), report.summary()


def test_an_export_of_a_newer_version_is_refused_with_a_clear_message(
    rotated: RotatedExport,
) -> None:
    _edit(rotated.path, lambda lines: lines[0].update(version=3))
    with pytest.raises(InvalidInputError, match="a newer gwvault made it"):
        verify_export(rotated.path, rotated.new)


def test_rotation_records_are_append_only(rotated: RotatedExport) -> None:
    with sqlite3.connect(rotated.data_dir / DB_FILE) as db:
        assert db.execute("SELECT seq FROM audit_rotations").fetchall() == [(ROTATED_AT,)]
        for statement in ("DELETE FROM audit_rotations", "UPDATE audit_rotations SET at = ''"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
