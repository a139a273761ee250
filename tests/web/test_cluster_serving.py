"""A gateway cluster served for real: each member a ``gwvault serve`` process on one database.

- What one member stores, another member's agent opens and a third tests
  against a real PostgreSQL login.
- Writes through every member at once lose nothing: each credential's stored
  version is the number of its accepted puts, the trail verifies, and its
  newest entry for each credential names the stored version.
- A member disabled or removed while serving answers 503 (``member_stopped``)
  within seconds and its /readyz says unavailable (enabled again, it serves);
  with ``--rotate``, a copy of a removed member's data dir (key file and all)
  made before it left opens nothing.
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from agent_keys.errors import VaultError
from agent_keys.secret import Secret
from tests.cluster_vaults import Cluster, make_cluster
from tests.conftest import RECOVERY_KEY, make_context
from tests.postgres_servers import StoreLogin
from tests.sealing import seal
from tests.service_fixtures import ServiceLogin
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from tests.web.cluster_members import API, ServedMember, serving
from tests.web.served_process import probe, wait_for_status
from vault.agent import GatewayAgent
from vault.cluster.members import ClusterMembers
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from web.housekeeping import HEARTBEAT_SECONDS

pytestmark = pytest.mark.timeout(120)
STOP_SECONDS = 5.0  # "within a few seconds"
UNREACHABLE = DataSource("postgresql", "127.0.0.1:1", tls="disable")


@pytest.fixture
def cluster(tmp_path: Path, fresh_store_login: StoreLogin) -> Cluster:
    return make_cluster(tmp_path, fresh_store_login.conninfo, ["a", "b", "c"])


@pytest.fixture
def pair(tmp_path: Path, fresh_store_login: StoreLogin) -> Cluster:
    return make_cluster(tmp_path, fresh_store_login.conninfo, ["a", "b"])


def _sealed_body(
    cluster: Cluster, name: str, target: DataSource, user: str, secret: str
) -> dict[str, object]:
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        certificate = gateway.certificate()
    payload = CredentialPayload("basic", user, Secret.from_text(secret))
    return {
        "type": target.type, "server": target.server, "database": target.database,
        "tls": target.tls, "ca_pem": target.ca_pem,
        "encrypted_credential": seal(certificate, name, target, payload),
    }  # fmt: skip


def _put(member: ServedMember, cluster: Cluster, name: str, body: dict[str, object]) -> int:
    return member.call("PUT", f"{API}/credentials/{name}", cluster.admin_token, body).status


def test_stored_through_one_member_opened_by_another_tested_through_a_third(
    cluster: Cluster, private_postgres: ServiceLogin
) -> None:
    pg = private_postgres
    target = DataSource("postgresql", f"{pg.host}:{pg.port}", pg.database, tls="verify-full",
                        ca_pem=pg.ca_pem)  # fmt: skip
    with serving(cluster, ["a", "c"]) as served:
        body = _sealed_body(cluster, "sales-pg", target, pg.user, pg.password)
        assert _put(served["a"], cluster, "sales-pg", body) == 201
        # B's gateway agent, on B's own data dir and keystore, connects with it.
        with (
            GatewayAgent(cluster.data_dir("b")) as agent,
            agent.connect("sales-pg", job_id="job-b-1") as db,
        ):
            assert isinstance(db, psycopg.Connection)
            assert db.execute("SELECT current_user").fetchone() == (pg.user,)
        tested = served["c"].call("POST", f"{API}/credentials/sales-pg/test", cluster.admin_token)
        assert (tested.status, tested.body["ok"]) == (200, True), tested.body
    with Gateway.open(cluster.data_dir("c"), make_context()) as gateway:
        actions = [(e.action, e.channel) for e in gateway.store.audit_events()]
    assert ("credential.created", "api") in actions
    assert ("credential.used", "agent") in actions
    assert ("credential.tested", "api") in actions


WRITERS_PER_MEMBER = 2
PUTS_PER_WRITER = 6
SHARED = ("shared-0", "shared-1")


def test_writes_through_every_member_at_once_lose_nothing(cluster: Cluster) -> None:
    """Each writer stores its own credentials and updates the shared ones; no
    put may fail, and each shared credential's version counts every update."""
    bodies = {name: _sealed_body(cluster, name, UNREACHABLE, "u", f"pw-{name}")
              for name in SHARED}  # fmt: skip
    with serving(cluster, ["a", "b", "c"]) as served:
        for name, body in bodies.items():
            assert _put(served["a"], cluster, name, body) == 201

        def write(writer: tuple[str, int]) -> list[tuple[str, int]]:
            member, index = writer
            answers = []
            for i in range(PUTS_PER_WRITER):
                own = f"{member}-{index}-{i}"
                own_body = _sealed_body(cluster, own, UNREACHABLE, "u", f"pw-{own}")
                answers.append((own, _put(served[member], cluster, own, own_body)))
                shared = SHARED[i % len(SHARED)]
                answers.append((shared, _put(served[member], cluster, shared, bodies[shared])))
            return answers

        writers = [(m, i) for m in served for i in range(WRITERS_PER_MEMBER)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(writers)) as pool:
            answers = [a for batch in pool.map(write, writers) for a in batch]
    assert Counter(status for _name, status in answers) == Counter(
        {201: len(writers) * PUTS_PER_WRITER, 200: len(writers) * PUTS_PER_WRITER}
    )
    with Gateway.open(cluster.data_dir("b"), make_context()) as gateway:
        # Every served member's housekeeper beat while it served.
        seen = [m["last_seen_s_ago"] for m in ClusterMembers(gateway).list()]
        stored = {r.binding.name: r.binding.version for r in gateway.store.credentials()}
        newest: dict[str, int] = {}
        for entry in gateway.store.audit_events():  # the trail replayed, oldest first
            if entry.action in ("credential.created", "credential.updated") and entry.target:
                newest[entry.target] = json.loads(entry.details)["version"]
    updates = len(writers) * PUTS_PER_WRITER // len(SHARED)
    assert {name: stored[name] for name in SHARED} == dict.fromkeys(SHARED, 1 + updates)
    assert len(stored) == len(SHARED) + len(writers) * PUTS_PER_WRITER
    assert newest == stored
    assert all(s is not None and s < HEARTBEAT_SECONDS + STOP_SECONDS for s in seen), seen
    verify = GwvaultCli(cluster.data_dir("c"))("audit", "verify")
    assert verify.code == 0, verify.out + verify.err


def _stopped_within(member: ServedMember, cluster: Cluster, seconds: float) -> float | None:
    """Seconds until ``member`` answers the API 503 member_stopped, or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        answer = member.call("GET", f"{API}/credentials", cluster.admin_token)
        if answer.status == 503:
            assert answer.body["error"]["code"] == "member_stopped", answer.body
            return time.monotonic() - started
        assert answer.status == 200, answer.body
        time.sleep(0.1)
    return None


def test_a_disabled_or_removed_member_stops_and_its_copied_keys_open_nothing_after_a_rotation(
    pair: Cluster, tmp_path: Path
) -> None:
    cluster = pair
    copy = tmp_path / "copy-of-b"
    shutil.copytree(cluster.data_dir("b"), copy)  # before it leaves: key file, cluster.json
    body = _sealed_body(cluster, "hr-db", UNREACHABLE, "u", "hr secret")
    key_file = private_file(tmp_path / "recovery-key", RECOVERY_KEY)
    admin = GwvaultCli(cluster.data_dir("a"))
    with serving(cluster, ["a", "b"]) as served:
        assert _put(served["b"], cluster, "hr-db", body) == 201
        assert admin("cluster", "disable", "b").code == 0
        assert _stopped_within(served["b"], cluster, STOP_SECONDS) is not None
        unready = served["b"].call("GET", "/readyz")
        assert (unready.status, unready.body) == (503, {"status": "unavailable"})  # no reason
        assert admin("cluster", "enable", "b").code == 0
        assert wait_for_status(served["b"].port, "/readyz", 200, STOP_SECONDS)
        removed = admin("cluster", "remove", "b", "--rotate", "--recovery-key-file", key_file)
        assert removed.code == 0, removed.err
        assert _stopped_within(served["b"], cluster, STOP_SECONDS) is not None
        assert wait_for_status(served["b"].port, "/readyz", 503, STOP_SECONDS)
        assert probe(served["b"].port, "/healthz") == 200  # alive, not to be restarted
        assert probe(served["a"].port, "/readyz") == 200
        assert (
            served["a"].call("GET", f"{API}/credentials/hr-db", cluster.admin_token).status == 200
        )
        assert "not ready: this member was removed" in served["b"].log.read_text()
    # A fresh process with the copy: nothing unlocks, nothing opens.
    copied = GwvaultCli(copy)
    for command in (["credentials", "verify"], ["credentials", "test", "hr-db"]):
        refused = copied(*command)
        assert refused.code != 0 and "removed" in refused.err, refused.err
    with pytest.raises(VaultError), GatewayAgent(copy) as agent:
        agent.use_credential("hr-db", "job-from-the-copy")
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        assert gateway.status()["credentials_by_key_version"] == {"2": 1}
