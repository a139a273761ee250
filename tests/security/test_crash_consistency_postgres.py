"""SIGKILL a real ``gwvault`` process writing a cluster's PostgreSQL store; the vault stays whole.

The SQLite twin is test_crash_consistency.py.  Here the vault is a one-member
cluster on a fresh database of the shared PostgreSQL server, and two writers
are killed:

- a process running many ``credentials put`` one after another
  (``tests.security.put_loop``), killed at a random instant once its first puts
  are in: every put it reported is stored, at most the one in flight besides,
  and the loop run again finishes;
- ``keys rotate`` of a vault with a few thousand credentials in small batches,
  killed as soon as its first batch is committed (in long mode, also at random
  instants of a whole run): both key versions are held, every credential opens,
  and ``keys rotate`` again resumes the rotation to its end.

After every kill the vault opens, every credential opens, the audit trail
verifies and replays to the stored state (each credential's newest audited
version is its stored one).  Long mode: ``GWVAULT_SECURITY_LONG=1``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.cluster_vaults import make_cluster
from tests.conftest import RECOVERY_KEY, make_context
from tests.postgres_servers import StoreLogin
from tests.security.scale import scaled
from tests.vault.cli.gwvault_process import GWVAULT, GwvaultCli, private_file
from tests.vault.keys.rotation_helpers import insert_credentials
from vault.audit.log import AuditLog
from vault.credentials import CredentialService
from vault.gateway import Gateway

SEED = int(os.environ.get("GWVAULT_CRASH_SEED", "20250107"))
ROOT = Path(__file__).resolve().parents[2]
PUT_KILLS = scaled(2, 20)
PUTS_BEFORE_A_KILL = 3  # the loop is writing (past start-up) when the kill may come
ROTATE_CREDENTIALS = scaled(2000, 5000)
ROTATE_BATCH = 50
RANDOM_ROTATE_KILLS = scaled(0, 10)
RecordProperty = Callable[[str, object], None]
pytestmark = pytest.mark.timeout(scaled(120, 1800))


def _whole(data_dir: Path, where: str, *, replayed: bool = True) -> dict[str, int]:
    """The vault opens, every credential opens, the trail verifies and (when the
    credentials were ``replayed``: stored through the service, not inserted by
    ``insert_credentials``) names each one's stored version last; returns the
    stored versions by name."""
    with Gateway.open(data_dir, make_context()) as gateway:
        service = CredentialService(gateway)
        report = service.verify()
        assert report.failed == [], f"{where}: credentials that do not open: {report.failed}"
        stored = {r.binding.name: r.binding.version for r in service.list()}
        trail, _head = AuditLog(gateway).check()
        assert trail.ok, f"{where}: the audit trail does not verify: {trail.summary()}"
        newest: dict[str, int] = {}
        for entry in gateway.store.audit_events():
            if entry.action in ("credential.created", "credential.updated") and entry.target:
                newest[entry.target] = json.loads(entry.details)["version"]
    assert newest == stored or not replayed, f"{where}: the trail and the store disagree"
    return stored


def _put_loop(data_dir: Path, prefix: str, count: int, secret_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.security.put_loop", str(data_dir), prefix, str(count),
         str(secret_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def member(tmp_path: Path, fresh_store_login: StoreLogin) -> Path:
    return make_cluster(tmp_path, fresh_store_login.conninfo, ["a"]).data_dir("a")


def test_many_puts_killed_mid_write(
    member: Path, tmp_path: Path, record_property: RecordProperty
) -> None:
    rng = random.Random(SEED)
    secret_file = private_file(tmp_path / "secret", "a put-loop secret\n")
    expected: set[str] = set()
    crashes = 0
    for case in range(PUT_KILLS):
        prefix = f"case{case:02d}"
        process = _put_loop(member, prefix, 10_000, secret_file)
        assert process.stdout is not None
        reported = [process.stdout.readline().strip() for _ in range(PUTS_BEFORE_A_KILL)]
        delay = rng.uniform(0.0, 0.5)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        reported += process.stdout.read().split()
        crashes += process.wait() == -signal.SIGKILL
        where = f"seed {SEED}, put case {case}, kill {delay:.3f} s after {PUTS_BEFORE_A_KILL} puts"
        stored = _whole(member, where)
        in_flight = set(stored) - expected - set(reported)
        assert set(reported) <= set(stored), f"{where}: lost {set(reported) - set(stored)}"
        assert len(in_flight) <= 1 and all(n.startswith(prefix) for n in in_flight), where
        expected = set(stored)
    again = _put_loop(member, "case00", 2 * PUTS_BEFORE_A_KILL, secret_file)
    again.communicate(timeout=60)
    assert again.returncode == 0
    stored = _whole(member, "after the loop ran again")
    assert {n for n in stored if n.startswith("case00")} >= {
        f"case00-{i:05d}" for i in range(2 * PUTS_BEFORE_A_KILL)
    }
    record_property("kills", crashes)
    assert crashes == PUT_KILLS, "a put loop ended before its kill"


def _key_state(data_dir: Path) -> tuple[dict[int, str], dict[int, int]]:
    """(GMK versions and their states, credentials per GMK version)."""
    with Gateway.open(data_dir, make_context()) as gateway:
        rows = gateway.store.rows
        versions = {
            r["version"]: r["state"] for r in rows("SELECT version, state FROM master_keys", [])
        }
        counts = {
            r["gmk_version"]: r["n"]
            for r in rows(
                "SELECT gmk_version, count(*) AS n FROM credentials GROUP BY gmk_version", []
            )
        }
    return versions, counts


def _moved_to(conninfo: str, version: int) -> int:
    with psycopg.connect(conninfo, connect_timeout=10) as db:
        row = db.execute(
            "SELECT count(*) FROM credentials WHERE gmk_version = %s", [version]
        ).fetchone()
    return int(row[0]) if row else 0


def _kill_after_first_batch(command: list[str], conninfo: str, to_version: int) -> int:
    """Start ``command`` and SIGKILL it once a data key is on ``to_version``;
    returns how many were moved when it died."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with psycopg.connect(conninfo, connect_timeout=10, autocommit=True) as db:
        query = "SELECT count(*) FROM credentials WHERE gmk_version = %s"
        while process.poll() is None:
            row = db.execute(query, [to_version]).fetchone()
            if row and row[0]:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    assert process.wait() == -signal.SIGKILL, "the rotation ended before its first batch was seen"
    return _moved_to(conninfo, to_version)


def test_keys_rotate_killed_after_its_first_batch_resumes_to_the_end(
    member: Path, tmp_path: Path, fresh_store_login: StoreLogin, record_property: RecordProperty
) -> None:
    insert_credentials(member, ROTATE_CREDENTIALS)
    key_file = private_file(tmp_path / "rk", RECOVERY_KEY)
    rotate = [str(GWVAULT), "--data-dir", str(member), "keys", "rotate",
              "--recovery-key-file", str(key_file), "--batch-size", str(ROTATE_BATCH)]  # fmt: skip
    moved = _kill_after_first_batch(rotate, fresh_store_login.conninfo, 2)
    assert 0 < moved < ROTATE_CREDENTIALS, moved
    assert _key_state(member) == (
        {1: "retiring", 2: "current"},
        {1: ROTATE_CREDENTIALS - moved, 2: moved},
    )
    assert len(_whole(member, "after the kill", replayed=False)) == ROTATE_CREDENTIALS
    resumed = GwvaultCli(member)(*rotate[3:])
    assert resumed.code == 0, resumed.err
    assert _key_state(member) == ({2: "current"}, {2: ROTATE_CREDENTIALS})
    assert len(_whole(member, "after the resumed rotation", replayed=False)) == ROTATE_CREDENTIALS
    record_property("moved_before_the_kill", moved)
    _killed_at_random_points(member, rotate, record_property)


def _killed_at_random_points(
    member: Path, rotate: list[str], record_property: RecordProperty
) -> None:
    """Long mode: whole rotations killed at random instants, each resumed."""
    rng = random.Random(SEED + 1)
    crashes = 0
    for case in range(RANDOM_ROTATE_KILLS):
        started = time.monotonic()
        process = subprocess.Popen(rotate, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.0, 8.0)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        crashes += process.wait() == -signal.SIGKILL
        where = (
            f"seed {SEED + 1}, rotate case {case}, kill after {time.monotonic() - started:.2f} s"
        )
        assert len(_whole(member, where, replayed=False)) == ROTATE_CREDENTIALS
        resumed = GwvaultCli(member)(*rotate[3:])
        assert resumed.code == 0, f"{where}: {resumed.err}"
        versions, counts = _key_state(member)
        assert list(versions.values()) == ["current"] and list(counts.values()) == [
            ROTATE_CREDENTIALS
        ]
    record_property("random_kills", crashes)
