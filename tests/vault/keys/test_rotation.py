"""GMK rotation: every data key rewrapped (never re-encrypted), resumable after a kill."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.store_engines import EngineVaults
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file
from tests.vault.keys.rotation_helpers import ciphertexts, insert_credentials, key_state, verify_all
from vault.credentials import CredentialService
from vault.data_dir import DataDir
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway, open_store
from vault.keys.keystore_binding import KeystoreSpec
from vault.keys.keystore_migration import migrate_keystore
from vault.keys.rotation import BATCH_ACTION, KeyRotation, _id_chunks
from vault.keys.tls import TlsService
from vault.notify.sink_config import webhook_config
from vault.notify.sinks import SinkService

pytestmark = pytest.mark.contract

NAMES = ["sales", "hr", "finance"]
KILL_SEED = 20240611


class _Killed(Exception):
    """Raised from the progress report: the process "dies" right after a batch commits."""


def _kill_after_first_batch(done: int, total: int) -> None:
    raise _Killed


def _put_three(path: Path) -> None:
    with Gateway.open(path, make_context()) as gateway:
        service = CredentialService(gateway)
        for name in NAMES:
            payload = CredentialPayload("basic", "u", Secret.from_text(f"pw-{name}"))
            service.put(name, DataSource("mysql", "db.internal"), payload)


def _interrupted_rotation(path: Path, batch_size: int) -> None:
    with Gateway.open(path, make_context()) as gateway, pytest.raises(_Killed):
        KeyRotation(gateway).rotate(
            Secret.from_text(RECOVERY_KEY), batch_size, _kill_after_first_batch
        )


def test_rotation_rewraps_every_key_and_destroys_the_old_master_key(
    data_dir: Path, recovery_key: Secret, vaults: EngineVaults
) -> None:
    _put_three(data_dir)
    before = ciphertexts(data_dir)
    with Gateway.open(data_dir, make_context()) as gateway:
        hook = webhook_config("https://hooks.example.org/in")
        sink_key = SinkService(gateway).add("hook", hook, None).generated_secret
        old_gmk = gateway.master_key.key
        result = KeyRotation(gateway).rotate(recovery_key)
        # The same Gateway object goes on working under the new version.
        CredentialService(gateway).put(
            "later", DataSource("mysql", "db"), CredentialPayload("basic", "u", Secret(b"pw"))
        )
    assert (result.to_version, result.destroyed_versions, result.rewrapped) == (2, (1,), 3)
    assert result.complete and not result.resumed
    assert key_state(data_dir) == {"master_keys": {2: "current"}, "credentials": {2: 4}}
    assert verify_all(data_dir) == (4, [])
    after = ciphertexts(data_dir)
    assert {key: after[key] for key in before} == before  # never re-encrypted
    with Gateway.open(data_dir, make_context()) as gateway:
        assert {k.gmk_version for k in gateway.store.gateway_keys()} == {2}
        assert len(gateway.private_keys) == 1  # the gateway private key unwraps under v2
        assert TlsService(gateway).server_identity().private_key.reveal()  # and the TLS key
        sinks = SinkService(gateway)
        assert sinks.secret_of(sinks.sink("hook")) == sink_key  # and a sink's
        sink_rows = gateway.store.rows("SELECT gmk_version FROM notify_sinks", [])
        via_recovery = gateway.master_key_from_recovery_key(recovery_key)
        assert via_recovery.version == 2 and via_recovery.key == gateway.master_key.key
        assert gateway.master_key.key != old_gmk
        actions = [e.action for e in gateway.store.audit_events()]
        tls_version = gateway.store.rows("SELECT gmk_version FROM tls_identity", [])[0]
    assert tls_version == {"gmk_version": 2} and sink_rows == [{"gmk_version": 2}]
    assert actions.count("keys.rotation-started") == 1 and actions.count("keys.rotated") == 1
    with vaults.sql(data_dir) as db:
        assert not db.holds(old_gmk.reveal())


def test_a_wrong_recovery_key_changes_nothing(data_dir: Path) -> None:
    _put_three(data_dir)
    store = open_store(DataDir(data_dir))
    snapshot = (
        "SELECT * FROM master_keys ORDER BY version",
        "SELECT id, name, gmk_version, wrapped_dek, ciphertext FROM credentials ORDER BY id",
    )
    before = [store.rows(query, []) for query in snapshot]
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(InvalidInputError):
        KeyRotation(gateway).rotate(Secret.from_text("not the recovery key at all"))
    assert [store.rows(query, []) for query in snapshot] == before
    store.close()
    cli = GwvaultCli(data_dir)
    wrong = cli("keys", "rotate", stdin="also not the recovery key")
    assert wrong.code == 2 and "does not open" in wrong.err
    assert key_state(data_dir)["master_keys"] == {1: "current"}


def test_an_interrupted_rotation_resumes_and_status_counts_each_version(
    data_dir: Path, tmp_path: Path
) -> None:
    insert_credentials(data_dir, 25)
    _interrupted_rotation(data_dir, batch_size=10)
    assert key_state(data_dir) == {
        "master_keys": {1: "retiring", 2: "current"},
        "credentials": {1: 15, 2: 10},
    }
    assert verify_all(data_dir) == (25, [])  # mid-rotation, both versions open
    cli = GwvaultCli(data_dir)
    assert cli("status", "--json").json()["credentials_by_key_version"] == {"1": 15, "2": 10}

    assert cli("keys", "rotate", "--batch-size", "0").code == 2
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    resumed = cli("keys", "rotate", "--recovery-key-file", key_file, "--batch-size", "7")
    assert resumed.code == 0, resumed.err
    assert "resumed and finished the rotation to master key version 2" in resumed.out
    assert (
        "15 data keys rewrapped" in resumed.out and "destroyed master key version 1" in resumed.out
    )
    assert resumed.err == ""  # no progress bar into a pipe
    assert cli("status", "--json").json()["credentials_by_key_version"] == {"2": 25}
    assert key_state(data_dir)["master_keys"] == {2: "current"}
    assert cli("credentials", "verify").out.startswith("25 of 25 credentials open")


def test_each_batch_is_one_audit_entry_naming_its_credentials(data_dir: Path) -> None:
    insert_credentials(data_dir, 25)
    _interrupted_rotation(data_dir, batch_size=10)  # the first batch commits with its entry
    with Gateway.open(data_dir, make_context()) as gateway:
        first = [e for e in gateway.store.audit_events() if e.action == BATCH_ACTION]
        KeyRotation(gateway).rotate(Secret.from_text(RECOVERY_KEY), 7)
        batches = [e for e in gateway.store.audit_events() if e.action == BATCH_ACTION]
        ids = [row["id"] for row in gateway.store.rows("SELECT id FROM credentials", [])]
    assert len(first) == 1 and len(batches) == 1 + 3  # 10, then 7 + 7 + 1
    details = [json.loads(entry.details) for entry in batches]
    assert [d["count"] for d in details] == [10, 7, 7, 1]
    assert {(d["from_versions"], d["to_version"]) for d in details} == {("1", 2)}
    listed = [i for d in details for i in d["credential_ids"].split(",")]
    assert sorted(listed) == sorted(ids)  # every credential named once


def test_a_batch_too_large_for_one_export_line_is_split_across_entries() -> None:
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(2000)]
    chunks = _id_chunks(ids)
    assert [i for chunk in chunks for i in chunk] == ids and len(chunks) == 3
    assert all(len(",".join(chunk)) <= 32_000 for chunk in chunks)
    assert _id_chunks([]) == []  # an empty pass writes no entry


def test_keystore_migration_mid_rotation_with_the_recovery_key_rebinds_both_versions(
    data_dir: Path, recovery_key: Secret
) -> None:
    insert_credentials(data_dir, 12)
    _interrupted_rotation(data_dir, batch_size=5)
    (data_dir / "keystore.key").unlink()  # the machine's key is lost mid-rotation
    with Gateway.open(data_dir, make_context()) as gateway:
        migrate_keystore(gateway, KeystoreSpec("file"), lambda: Secret(b""), recovery_key)
    assert verify_all(data_dir) == (12, [])
    with Gateway.open(data_dir, make_context()) as gateway:
        assert KeyRotation(gateway).rotate(recovery_key).resumed
    assert verify_all(data_dir) == (12, [])
    assert key_state(data_dir) == {"master_keys": {2: "current"}, "credentials": {2: 12}}


def test_keystore_migration_after_a_rotation_opens_everything(
    data_dir: Path, recovery_key: Secret, softhsm: SoftHsm
) -> None:
    _put_three(data_dir)
    with Gateway.open(data_dir, make_context()) as gateway:
        KeyRotation(gateway).rotate(recovery_key)
        to_hsm = KeystoreSpec("pkcs11", pkcs11_module=softhsm.module, token_label=MAIN_TOKEN)
        migrate_keystore(gateway, to_hsm, softhsm.pin_source)
    with Gateway.open(data_dir, make_context(), softhsm.pin_source) as gateway:
        report = CredentialService(gateway).verify()
        assert (sorted(report.opened), report.failed) == (sorted(NAMES), [])
        assert gateway.status()["credentials_by_key_version"] == {"2": 3}
        # Back to a file mid-rotation: both held versions move to the new keystore.
        with pytest.raises(_Killed):
            KeyRotation(gateway).rotate(recovery_key, 1, _kill_after_first_batch)
        migrate_keystore(gateway, KeystoreSpec("file"), softhsm.pin_source)
    assert verify_all(data_dir) == (3, [])
    assert key_state(data_dir)["master_keys"] == {2: "retiring", 3: "current"}


def _rewrap_seq(vaults: EngineVaults, data_dir: Path) -> int:
    """The newest audit entry a rotation step wrote (read beside the running process)."""
    with vaults.sql(data_dir) as db:
        (seq,) = db.one(
            "SELECT max(seq) FROM audit_events WHERE action IN"
            " ('keys.rotation-started', 'credentials.rewrapped')"
        )
    return int(seq or 0)


def _run_and_kill(
    vaults: EngineVaults, data_dir: Path, key_file: Path, rng: random.Random, after_progress: bool
) -> str:
    """Start ``keys rotate`` and SIGKILL it: after a random 0.3-3 s, or a random
    0-0.25 s after this run has committed its first rotation step."""
    seen = _rewrap_seq(vaults, data_dir)
    rotate: list[str | Path] = [GWVAULT, "--data-dir", data_dir, "keys", "rotate",
                                "--recovery-key-file", key_file, "--batch-size", "50"]  # fmt: skip
    process = subprocess.Popen(
        rotate, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = time.monotonic()
    if after_progress:
        while process.poll() is None and _rewrap_seq(vaults, data_dir) == seen:
            if time.monotonic() - started > 60:
                break
            time.sleep(0.005)
        delay = rng.uniform(0, 0.25)
    else:
        delay = rng.uniform(0.3, 3.0)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return f"after {'progress + ' if after_progress else ''}{delay:.2f}s -> {process.returncode}"


def test_rotation_killed_at_random_points_finishes_with_every_credential_opening(
    data_dir: Path, tmp_path: Path, vaults: EngineVaults
) -> None:
    total = 10_000
    insert_credentials(data_dir, total)
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    rng = random.Random(KILL_SEED)
    runs: list[str] = []
    interrupted = 0
    for run in range(4):
        outcome = _run_and_kill(vaults, data_dir, key_file, rng, after_progress=run % 2 == 1)
        state = key_state(data_dir)
        runs.append(f"{outcome}: {state}")
        interrupted += "retiring" in state["master_keys"].values()
        opened, failed = verify_all(data_dir)  # every credential opens at every kill point
        assert (opened, failed) == (total, []), f"seed {KILL_SEED}, runs {runs}"
    print(f"kill seed {KILL_SEED}:", *runs, sep="\n  ")  # shown with -s or on failure
    assert interrupted >= 1, f"no kill landed mid-rotation; seed {KILL_SEED}, runs {runs}"

    cli = GwvaultCli(data_dir)
    final = cli("keys", "rotate", "--recovery-key-file", key_file)
    assert final.code == 0, f"{final.err}; seed {KILL_SEED}, runs {runs}"
    verify = cli("credentials", "verify")
    assert verify.code == 0 and verify.out.startswith(f"{total} of {total} credentials open")
    state = key_state(data_dir)
    assert list(state["master_keys"].values()) == ["current"], f"seed {KILL_SEED}, runs {runs}"
    assert state["credentials"] == {next(iter(state["master_keys"])): total}
