"""A cluster member through a PostgreSQL failover: it fails cleanly, then finds the new primary.

The member's cluster.json names both servers with
``target_session_attrs=read-write``.  The primary replicates synchronously
(``synchronous_standby_names``), so a put answered 201 is on the standby
before the answer: what failover may lose is then only what no client was
told was stored.  (With asynchronous replication, the database
administrator's choice, the last commits before a crash may be lost; that is
PostgreSQL's promise, not gwvault's.)

While the primary is dead and the standby not yet promoted, every request
answers 503 (never a 500, never a wrong answer) and /readyz says
unavailable: the standby takes no writes.  Once it is promoted the member
reconnects by itself, each kept connection at its next use.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.cluster_vaults import Cluster, make_cluster
from tests.conftest import make_context
from tests.postgres_replication import ReplicatedPair, start_primary_with_replica
from tests.sealing import seal
from tests.tls_certificates import CertificateAuthority
from tests.vault.cli.gwvault_process import GwvaultCli
from tests.web.cluster_members import API, ServedMember, serving
from tests.web.served_process import probe, wait_for_status
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

pytestmark = pytest.mark.timeout(180)
TARGET = DataSource("postgresql", "127.0.0.1:1", tls="disable")
BEFORE_THE_KILL = 4
STAYS_UNREADY_SECONDS = 1.0
RECONNECT_SECONDS = 20.0
AFTER_CLIENTS = 8  # more than a worker's app threads (web.server.limits: 6)


@pytest.fixture
def replicated(trusted_ca: CertificateAuthority) -> Iterator[ReplicatedPair]:
    """A primary that commits only once its standby has the commit."""
    with start_primary_with_replica(trusted_ca) as pair:
        with pair.primary.admin() as db:
            db.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            db.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 10
            while db.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ).fetchone() != (1,):
                assert time.monotonic() < deadline, "the standby never became synchronous"
                time.sleep(0.05)
        yield pair


class Writer:
    """A client that keeps storing new credentials and reading the first one,
    recording every answer, until stopped."""

    def __init__(self, member: ServedMember, cluster: Cluster, bodies: BodyMaker) -> None:
        self.member, self.cluster, self.bodies = member, cluster, bodies
        self.answers: list[tuple[str, str, int, object]] = []  # (method, name, status, body)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            name = f"during-{i:03d}"
            put = self.member.call(
                "PUT", f"{API}/credentials/{name}", self.cluster.admin_token, self.bodies(name)
            )
            self.answers.append(("PUT", name, put.status, put.body))
            got = self.member.call("GET", f"{API}/credentials/before-0", self.cluster.admin_token)
            self.answers.append(("GET", "before-0", got.status, got.body))
            i += 1
            time.sleep(0.05)


class BodyMaker:
    """PUT bodies sealed to the cluster's certificate (read once, before the kill)."""

    def __init__(self, cluster: Cluster) -> None:
        with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
            self._certificate = gateway.certificate()

    def __call__(self, name: str) -> dict[str, object]:
        payload = CredentialPayload("basic", "u", Secret.from_text(f"pw-{name}"))
        token = seal(self._certificate, name, TARGET, payload)
        return {"type": "postgresql", "server": TARGET.server, "tls": "disable",
                "encrypted_credential": token}  # fmt: skip


def _all_unready(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe(port, "/readyz") != 503:
            return False
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def _served_cluster(
    replicated: ReplicatedPair, tmp_path: Path
) -> Iterator[tuple[Cluster, ServedMember, BodyMaker]]:
    """A one-member cluster on the pair (both hosts in its conninfo), served,
    with ``BEFORE_THE_KILL`` credentials stored."""
    login = replicated.primary.create_login(f"gwv_store_{os.urandom(4).hex()}")
    cluster = make_cluster(tmp_path, replicated.multi_host_conninfo(login), ["a"])
    bodies = BodyMaker(cluster)
    with serving(cluster, ["a"]) as served:
        member = served["a"]
        for i in range(BEFORE_THE_KILL):
            name = f"before-{i}"
            assert member.call("PUT", f"{API}/credentials/{name}", cluster.admin_token,
                               bodies(name)).status == 201  # fmt: skip
        yield cluster, member, bodies


def _switch(member: ServedMember, promote: Callable[[], None]) -> None:
    """Not ready while no server takes writes, then ready again by itself."""
    assert wait_for_status(member.port, "/readyz", 503, 10)
    assert _all_unready(member.port, STAYS_UNREADY_SECONDS)  # a standby takes no writes
    promote()
    assert wait_for_status(member.port, "/readyz", 200, RECONNECT_SECONDS)
    time.sleep(0.5)  # the writer goes on against the promoted server


def _every_thread_serves(member: ServedMember, cluster: Cluster, bodies: BodyMaker) -> None:
    """Once ready, the member serves every request: puts at once from more
    clients than it has threads, so each thread's kept connection is used
    (one left on the old server would refuse the puts, or not find them)."""

    def put(i: int) -> int:
        name = f"after-{i:03d}"
        return member.call("PUT", f"{API}/credentials/{name}", cluster.admin_token,
                           bodies(name)).status  # fmt: skip

    def get(i: int) -> int:
        name = f"after-{i % (2 * AFTER_CLIENTS):03d}"
        return member.call("GET", f"{API}/credentials/{name}", cluster.admin_token).status

    with concurrent.futures.ThreadPoolExecutor(max_workers=AFTER_CLIENTS) as pool:
        assert list(pool.map(put, range(2 * AFTER_CLIENTS))) == [201] * 2 * AFTER_CLIENTS
        # what the promoted server stored, read on every thread (a stale one: 404)
        assert list(pool.map(get, range(2 * AFTER_CLIENTS))) == [200] * 2 * AFTER_CLIENTS


def _assert_failed_cleanly_and_kept_everything(
    cluster: Cluster, member: ServedMember, writer: Writer
) -> None:
    answers = writer.answers
    statuses = {status for _method, _name, status, _body in answers}
    assert statuses <= {200, 201, 503}, [a for a in answers if a[2] not in (200, 201, 503)]
    assert 503 in statuses, "no request fell into the switch"
    for method, name, status, body in answers:
        if status == 503:
            assert body["error"]["code"] == "storage_unavailable", body  # type: ignore[index]
        elif method == "GET":
            assert body["name"] == name and body["version"] == 1, body  # type: ignore[index]
    assert any(status in (200, 201) for _m, _n, status, _b in answers[-6:]), "never served again"
    stored = {name for method, name, status, _b in answers if method == "PUT" and status == 201}
    cli = GwvaultCli(cluster.data_dir("a"))
    listed = {c["name"] for c in cli("credentials", "list", "--json").json()}
    assert {f"before-{i}" for i in range(BEFORE_THE_KILL)} | stored <= listed
    verified = cli("credentials", "verify")
    assert verified.code == 0, verified.out + verified.err
    audit = cli("audit", "verify")
    assert audit.code == 0, audit.out + audit.err
    assert "Traceback" not in member.log.read_text()


def test_a_member_fails_cleanly_through_a_crash_of_the_primary_and_reconnects_by_itself(
    replicated: ReplicatedPair, tmp_path: Path
) -> None:
    with _served_cluster(replicated, tmp_path) as (cluster, member, bodies):
        with Writer(member, cluster, bodies) as writer:
            time.sleep(0.3)  # the writer is under way
            replicated.primary.kill()
            _switch(member, replicated.standby.promote)
        _every_thread_serves(member, cluster, bodies)
    _assert_failed_cleanly_and_kept_everything(cluster, member, writer)


def test_a_member_leaves_a_fenced_primary_for_the_promoted_standby(
    replicated: ReplicatedPair, tmp_path: Path
) -> None:
    """A switchover that fences the old primary (read-only) and leaves it up:
    the member's open connections to it still work but take no writes; they
    must be dropped, so that libpq finds the writable server."""
    with _served_cluster(replicated, tmp_path) as (cluster, member, bodies):
        with Writer(member, cluster, bodies) as writer:
            time.sleep(0.3)  # the writer is under way
            with replicated.primary.admin() as db:
                db.execute("ALTER SYSTEM SET default_transaction_read_only = on")
                db.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
                db.execute("SELECT pg_reload_conf()")
            _switch(member, replicated.standby.promote)
        _every_thread_serves(member, cluster, bodies)
    _assert_failed_cleanly_and_kept_everything(cluster, member, writer)
