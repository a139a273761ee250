"""``gwvault audit ...`` through the installed command, and the issue's fault
test: when the audit entry cannot be written, the change does not happen."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent_keys.errors import StorageError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, Run, private_file
from vault.audit.export import MAX_LINE_BYTES
from vault.credentials import CredentialService
from vault.data_dir import DB_FILE
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

FAIL_AUDIT = (
    "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events"
    " BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
)


@pytest.fixture(scope="module")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> GwvaultCli:
    work = tmp_path_factory.mktemp("audit-cli")
    key_file = private_file(work / "recovery.key", RECOVERY_KEY + "\n")
    template = GwvaultCli(work / "data")
    assert template("init", "--name", "gw-audit", "--recovery-key-file", key_file).code == 0
    assert template.put_login("sales").code == 0
    return template


@pytest.fixture
def cli(cli_template: GwvaultCli, tmp_path: Path) -> GwvaultCli:
    shutil.copytree(cli_template.data_dir, tmp_path / "data")
    return GwvaultCli(tmp_path / "data")


def listed(cli: GwvaultCli, *flags: str) -> list[dict[str, object]]:
    run = cli("audit", "list", "--json", *flags)
    assert run.code == 0, run.err
    entries: list[dict[str, object]] = run.json()
    return entries


def details_of(entry: dict[str, object]) -> dict[str, object]:
    details = entry["details"]
    assert isinstance(details, dict), details
    return details


def db_dump(data_dir: Path) -> list[str]:
    with closing(sqlite3.connect(data_dir / DB_FILE)) as db:
        return list(db.iterdump())


def sql(data_dir: Path, *statements: str) -> None:
    with closing(sqlite3.connect(data_dir / DB_FILE)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()


def drop_audit_triggers(data_dir: Path) -> None:
    sql(data_dir, "DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete")


# -- list and verify -----------------------------------------------------------------


def test_list_filters_by_credential_action_and_time(cli: GwvaultCli) -> None:
    everything = listed(cli)
    seqs = [int(str(e["seq"])) for e in everything]
    assert seqs == sorted(seqs, reverse=True)
    assert {"seq", "at", "actor", "action", "target", "outcome", "details", "keyed"} <= set(
        everything[0]
    )
    sales = listed(cli, "--credential", "sales")
    assert [(e["action"], e["target"]) for e in sales] == [("credential.created", "sales")]
    prefixed = listed(cli, "--action", "credential.*")
    assert prefixed and all(str(e["action"]).startswith("credential.") for e in prefixed)
    assert len(listed(cli, "--action", "gateway.initialized")) == 1
    assert len(listed(cli, "--since", "2000-01-01")) == len(everything)
    assert listed(cli, "--since", "2999-01-01") == []
    assert len(listed(cli, "--limit", "2")) == 2
    text = cli("audit", "list", "--credential", "sales")
    assert text.code == 0 and "credential.created  sales  ok" in text.out
    assert cli("audit", "list", "--since", "2999-01-01").out == "no matching events\n"


@pytest.mark.parametrize(
    "flags",
    [
        ["--action", "credential.%"],
        ["--since", "yesterday"],
        ["--limit", "0"],
        ["--credential", "../etc"],
    ],
)
def test_list_refuses_a_bad_filter(cli: GwvaultCli, flags: list[str]) -> None:
    run = cli("audit", "list", *flags)
    assert run.code == 2 and run.out == ""


def test_verify_passes_then_names_an_edited_entry(cli: GwvaultCli) -> None:
    ok = cli("audit", "verify")
    assert ok.code == 0 and ok.out.startswith("OK: ") and ok.err == ""
    drop_audit_triggers(cli.data_dir)
    sql(cli.data_dir, "UPDATE audit_events SET actor = 'os:mallory' WHERE seq = 2")
    failed = cli("audit", "verify")
    assert failed.code == 1 and failed.out == ""
    assert "FAILED at entry 2: its content does not match its digest" in failed.err
    as_json = cli("audit", "verify", "--json")
    assert as_json.code == 1 and as_json.json()["first_bad_seq"] == 2


def test_the_actor_is_the_effective_user_whatever_the_environment_claims(
    cli: GwvaultCli,
) -> None:
    # $LOGNAME and $USER are the caller's to set: the signed trail must not take
    # its actor from them (T-AU-14).  sudo's SUDO_USER is recorded, as a claim.
    me = f"os:{pwd.getpwuid(os.geteuid()).pw_name}"
    lied = {"LOGNAME": "mallory", "USER": "mallory", "LNAME": "mallory", "USERNAME": "mallory"}
    assert cli.put_login("hr", env={**lied, "SUDO_USER": ""}).code == 0
    assert cli.put_login("ops", env={**lied, "SUDO_USER": "alice"}).code == 0
    assert cli.put_login("crm", env={**lied, "SUDO_USER": "al\nice\x1b[2J" * 20}).code == 0
    entries = {e["target"]: e for e in listed(cli, "--action", "credential.created")}
    assert {entries[name]["actor"] for name in ("hr", "ops", "crm")} == {me}
    claims = {name: details_of(entries[name]) for name in ("hr", "ops", "crm")}
    assert "sudo_user_claimed" not in claims["hr"]
    assert claims["ops"]["sudo_user_claimed"] == "alice"
    # A claim is shown as text people can read: no control characters, bounded.
    assert claims["crm"]["sudo_user_claimed"] == "(not a user name)"
    assert "mallory" not in json.dumps(listed(cli))


def test_verify_shows_the_last_maced_entry_and_the_signed_time_to_compare_between_runs(
    cli: GwvaultCli,
) -> None:
    # T-AU-12: a rolled-back vault file shows as either going back.
    last = listed(cli)[0]
    run = cli("audit", "verify")
    assert run.code == 0, run.err
    assert run.out.splitlines()[0].endswith(f"; last MACed entry {last['seq']} at {last['at']}")
    report = cli("audit", "verify", "--json").json()
    assert (report["head_seq"], report["head_at"]) == (last["seq"], last["at"])
    assert {"signed_through", "signed_at", "rotations", "unvouched"} <= report.keys()


# -- export, and verifying it elsewhere -----------------------------------------------


def export_with_cert(cli: GwvaultCli, work: Path) -> tuple[Path, Path]:
    work.mkdir()
    export, cert = work / "audit.jsonl", work / "gateway.pem"
    run = cli("audit", "export", "--out", export)
    assert run.code == 0, run.err
    assert f"verify-export {export}" in run.out
    assert cli("cert", "export", "--public", "--out", cert).code == 0
    return export, cert


@pytest.fixture
def auditor(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory on a machine with no vault, no HOME files, no gwvault env."""
    (tmp_path / "auditor" / "cwd").mkdir(parents=True)
    (tmp_path / "auditor" / "home").mkdir()
    yield tmp_path / "auditor" / "cwd"
    assert list((tmp_path / "auditor" / "home").iterdir()) == []


def run_as_auditor(cwd: Path, *args: str) -> Run:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd.parent / "home")}
    done = subprocess.run(
        [str(GWVAULT), "audit", "verify-export", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    run = Run(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert "Traceback" not in run.err, run.err
    if run.code != 0:
        assert run.err.count("\n") == 1 and run.err.startswith("gwvault: error: "), run.err
    return run


def test_an_export_is_private_and_verifies_on_a_machine_without_the_vault(
    cli: GwvaultCli, tmp_path: Path, auditor: Path
) -> None:
    export, cert = export_with_cert(cli, tmp_path / "out")
    assert export.stat().st_mode & 0o777 == 0o600
    shutil.copy(export, auditor / "audit.jsonl")
    shutil.copy(cert, auditor / "gateway.pem")
    run = run_as_auditor(auditor, "audit.jsonl", "--cert", "gateway.pem")
    assert run.code == 0, run.err
    last = listed(cli)[0]
    assert last["action"] == "audit.exported"
    signed = f"OK: {last['seq']} entries (1..{last['seq']}), signed through entry {last['seq']} at"
    assert signed in run.out
    assert "export of gateway gw-audit" in run.out
    assert sorted(p.name for p in auditor.iterdir()) == ["audit.jsonl", "gateway.pem"]


def test_a_tampered_export_fails_naming_the_entry(
    cli: GwvaultCli, tmp_path: Path, auditor: Path
) -> None:
    export, cert = export_with_cert(cli, tmp_path / "out")
    lines = export.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"actor":"os:', b'"actor":"os:x')  # entry 2
    (auditor / "audit.jsonl").write_bytes(b"".join(lines))
    shutil.copy(cert, auditor / "gateway.pem")
    run = run_as_auditor(auditor, "audit.jsonl", "--cert", "gateway.pem")
    assert run.code == 1
    assert "FAILED at entry 2: its content does not match its digest" in run.err


def test_an_export_with_a_repeated_key_is_refused_not_read_one_way(
    exported_once: tuple[Path, Path], auditor: Path
) -> None:
    # json.loads keeps the last of two "actor" keys, other readers the first: a
    # decoy in front left the chain intact for us while another tool showed
    # mallory (T-AU-5).  Any repeated key refuses the file, naming the line.
    export, cert = exported_once
    lines = export.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'{"', b'{"actor":"os:mallory","', 1)
    (auditor / "audit.jsonl").write_bytes(b"".join(lines))
    shutil.copy(cert, auditor / "gateway.pem")
    run = run_as_auditor(auditor, "audit.jsonl", "--cert", "gateway.pem")
    assert run.code == 2, (run.out, run.err)
    assert "line 3 is not valid: a JSON object repeats a member name" in run.err


def test_export_refuses_to_overwrite_and_records_nothing(cli: GwvaultCli, tmp_path: Path) -> None:
    existing = tmp_path / "audit.jsonl"
    existing.write_text("keep me\n")
    before = listed(cli, "--action", "audit.exported")
    run = cli("audit", "export", "--out", existing)
    assert run.code == 2 and "exists" in run.err  # the output path given
    assert existing.read_text() == "keep me\n"
    assert listed(cli, "--action", "audit.exported") == before == []


def _hostile(auditor: Path, export: Path, cert: Path, case: str) -> list[str]:
    """Arguments of ``verify-export`` for one hostile input, made in ``auditor``."""
    good_export, good_cert = auditor / "good.jsonl", auditor / "good.pem"
    shutil.copy(export, good_export)
    shutil.copy(cert, good_cert)
    header = export.read_bytes().split(b"\n", 1)[0]
    contents = {
        "binary garbage": bytes(range(256)) * 64,
        "an overlong line": header + b'\n{"type":"entry","x":"' + b"a" * MAX_LINE_BYTES + b'"}\n',
        "an empty file": b"",
        "a cert that is not PEM": b"hello, I am not a certificate\n",
        "a damaged cert": _with_a_point_off_the_curve(cert.read_bytes()),
        "a huge cert": b"A" * 1_000_000,
    }
    bad = auditor / "bad"
    if case == "a directory":
        bad.mkdir()
    elif case in contents:
        bad.write_bytes(contents[case])
    # "missing ...": nothing is made
    if "cert" in case:
        return [good_export.name, "--cert", bad.name]
    return [bad.name, "--cert", good_cert.name]


def _with_a_point_off_the_curve(pem: bytes) -> bytes:
    """The certificate with one byte of its EC public key changed: it still
    decodes, but its key does not load."""
    certificate = x509.load_pem_x509_certificate(pem)
    der = certificate.public_bytes(serialization.Encoding.DER)
    point = certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    at = der.index(point) + len(point) - 1
    damaged = der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1 :]
    body = base64.encodebytes(damaged)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


HOSTILE = ["a missing file", "a directory", "binary garbage", "an overlong line", "an empty file",
           "a cert that is not PEM", "a damaged cert", "a missing cert", "a huge cert"]  # fmt: skip


@pytest.fixture(scope="module")
def exported_once(
    cli_template: GwvaultCli, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("exported")
    cli = GwvaultCli(work / "data")
    shutil.copytree(cli_template.data_dir, cli.data_dir)
    return export_with_cert(cli, work / "out")


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_input_to_verify_export_gives_one_clear_error(
    exported_once: tuple[Path, Path], auditor: Path, case: str
) -> None:
    run = run_as_auditor(auditor, *_hostile(auditor, *exported_once, case))
    assert run.code == 2, run.err  # the caller's input: the usage exit code
    assert "internal error" not in run.err
    assert run.out == ""


# -- prune -------------------------------------------------------------------------------


def test_prune_refuses_the_future_and_removes_nothing(cli: GwvaultCli) -> None:
    before = listed(cli)
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    run = cli("audit", "prune", "--before", tomorrow)
    assert run.code == 2 and "in the future" in run.err
    assert listed(cli) == before


def test_after_a_prune_the_trail_and_a_new_export_still_verify(
    cli: GwvaultCli, tmp_path: Path, auditor: Path
) -> None:
    old = listed(cli)
    # Entries are stamped to the second: wait for the next one, so the cut-off
    # falls between the template's entries and the ones written now.
    newest = datetime.datetime.fromisoformat(str(old[0]["at"]))
    while datetime.datetime.now(datetime.UTC) < newest + datetime.timedelta(seconds=1):
        time.sleep(0.05)
    cutoff = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    assert cli.put_login("hr").code == 0
    pruned = cli("audit", "prune", "--before", cutoff)
    assert pruned.code == 0, pruned.err
    assert f"removed {len(old)} entries up to {old[0]['seq']}" in pruned.out
    remaining = listed(cli)
    assert min(int(str(e["seq"])) for e in remaining) == int(str(old[0]["seq"])) + 1
    assert remaining[0]["action"] == "audit.pruned"
    verified = cli("audit", "verify")
    assert verified.code == 0 and verified.out.startswith(f"OK: {len(remaining)} entries"), (
        verified.out
    )
    export, cert = export_with_cert(cli, tmp_path / "out")
    shutil.copy(export, auditor / "audit.jsonl")
    shutil.copy(cert, auditor / "gateway.pem")
    run = run_as_auditor(auditor, "audit.jsonl", "--cert", "gateway.pem")
    assert run.code == 0 and "OK: " in run.out, run.err


# -- the fault test: an audit write that fails leaves everything unchanged ---------------


PG = DataSource("postgresql", "127.0.0.1:5432", "sales")


def _payload(secret: str) -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text(secret))


def test_when_the_audit_write_fails_the_service_changes_nothing(
    gateway: Gateway, data_dir: Path
) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, _payload("old"))
    sql(data_dir, FAIL_AUDIT)
    before = db_dump(data_dir)
    with pytest.raises(StorageError, match="database or disk is full"):
        service.put("sales", PG, _payload("new"))
    with pytest.raises(StorageError, match="database or disk is full"):
        service.put("hr", PG, _payload("new"))
    with pytest.raises(StorageError, match="database or disk is full"):
        service.delete("sales")
    assert db_dump(data_dir) == before
    sql(data_dir, "DROP TRIGGER fail_audit")
    assert service.use("sales", "job").secret == Secret.from_text("old")


@pytest.mark.parametrize(
    ("command", "stdin"),
    [
        ("credentials delete sales", ""),
        ("credentials put sales --type mysql --server db2 --username u", "new-pw"),
        ("cert rotate", ""),
        ("audit export --out {tmp}/audit.jsonl", ""),
    ],
    ids=["credentials-delete", "credentials-put", "cert-rotate", "audit-export"],
)
def test_when_the_audit_write_fails_the_command_exits_1_and_changes_nothing(
    cli: GwvaultCli, tmp_path: Path, command: str, stdin: str
) -> None:
    sql(cli.data_dir, FAIL_AUDIT)
    before = db_dump(cli.data_dir)
    run = cli(*command.replace("{tmp}", str(tmp_path)).split(), stdin=stdin)
    assert run.code == 1
    assert run.err.startswith("gwvault: error: the audit entry could not be written")
    assert "database or disk is full" in run.err and "nothing was changed" in run.err
    assert db_dump(cli.data_dir) == before
    assert not (tmp_path / "audit.jsonl").exists()
    sql(cli.data_dir, "DROP TRIGGER fail_audit")
    shown = cli("credentials", "show", "sales", "--json")
    assert shown.code == 0 and shown.json()["server"] == "db"
