from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from agent_keys.errors import (
    DataSourceError,
    InvalidInputError,
    NotFoundError,
    VaultError,
)
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.postgres_servers import PostgresServer
from tests.service_fixtures import ServiceLogin
from tests.tls_certificates import CertificateAuthority
from vault.agent import GatewayAgent
from vault.audit.log import AuditLog
from vault.credentials import CredentialService
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import DataSource, TlsMode
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway


def test_the_agent_gets_a_secret_typed_login_and_every_use_is_recorded(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put(
            "sales",
            DataSource("postgresql", "db.internal:5432", "sales"),
            CredentialPayload("basic", "alice", Secret.from_text("agent-pw")),
        )
    agent = GatewayAgent(data_dir, "refresh-worker")
    for job in ("job-1", "job-2"):
        login = agent.use_credential("sales", job_id=job)
        assert isinstance(login.secret, Secret) and login.secret.reveal_text() == "agent-pw"
        assert "agent-pw" not in repr(login)
        assert (login.source.server, login.username) == ("db.internal:5432", "alice")
    with pytest.raises(NotFoundError):
        agent.use_credential("nope", job_id="job-3")
    with Gateway.open(data_dir, make_context()) as gateway:
        uses = [e for e in gateway.store.audit_events() if e.action == "credential.used"]
    assert [(e.actor, e.channel, e.request_id, e.outcome) for e in uses] == [
        ("agent:refresh-worker", "agent", "job-1", "ok"),
        ("agent:refresh-worker", "agent", "job-2", "ok"),
    ]


def _put_login(
    data_dir: Path, name: str, login: ServiceLogin, tls: TlsMode, ca: str | None
) -> None:
    source = DataSource("postgresql", f"localhost:{login.port}", login.database, tls=tls,
                        ca_pem=canonical_ca_pem(ca) if ca else None)  # fmt: skip
    payload = CredentialPayload("basic", login.user, Secret.from_text(login.password))
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put(name, source, payload)


@pytest.mark.services
def test_the_agent_connects_with_the_credentials_tls_policy(
    data_dir: Path, private_postgres: ServiceLogin
) -> None:
    _put_login(data_dir, "sales", private_postgres, "verify-full", private_postgres.ca_pem)
    with GatewayAgent(data_dir).connect("sales", job_id="job-9") as db:
        assert db.pgconn.ssl_in_use
        assert db.execute("SELECT current_user").fetchone() == (private_postgres.user,)


@pytest.mark.services
def test_the_agent_gives_an_impersonator_nothing_at_job_time(
    data_dir: Path,
    shared_postgres: PostgresServer,
    postgres_md5_user: ServiceLogin,
    untrusted_ca: CertificateAuthority,
) -> None:
    # The same policy as a test: a server the credential's CA did not sign gets no login.
    _put_login(data_dir, "hr", postgres_md5_user, "verify-full", untrusted_ca.pem)
    with pytest.raises(DataSourceError) as refused:
        GatewayAgent(data_dir).connect("hr", job_id="job-10")
    assert refused.value.reason == "tls_failed"
    assert postgres_md5_user.password not in str(refused.value)
    _put_login(data_dir, "hr", postgres_md5_user, "require", None)
    with pytest.raises(DataSourceError) as refused:
        GatewayAgent(data_dir).connect("hr", job_id="job-11")
    assert refused.value.reason == "refused_by_policy"  # SCRAM only: no MD5 response
    assert shared_postgres.connections_logged(postgres_md5_user.user) == []


def test_the_agent_opens_no_session_for_a_file_or_a_url(data_dir: Path, tmp_path: Path) -> None:
    database = tmp_path / "a.db"  # a put refuses a SQLite file that is not there
    sqlite3.connect(database).close()
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put(
            "files",
            DataSource("sqlite", str(database)),
            CredentialPayload("anonymous", None, None),
        )
    with pytest.raises(InvalidInputError, match="no session"):
        GatewayAgent(data_dir).connect("files", job_id="job-12")


def _put_sales(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put(
            "sales",
            DataSource("postgresql", "db.internal:5432", "sales"),
            CredentialPayload("basic", "alice", Secret.from_text("agent-pw")),
        )


def _committed_uses(data_dir: Path) -> list[str]:
    """Job ids of the use entries another connection sees (committed ones only)."""
    with sqlite3.connect(f"file:{data_dir / 'vault.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT request_id FROM audit_events WHERE action = 'credential.used'"
        ).fetchall()
    return [job for (job,) in rows]


def test_every_secret_handed_to_concurrent_jobs_has_its_committed_entry(data_dir: Path) -> None:
    _put_sales(data_dir)
    threads, uses = 12, 15
    handed: list[str] = []
    missing: list[str] = []
    with GatewayAgent(data_dir) as agent:

        def job_runner(worker: int) -> None:
            for n in range(uses):
                job = f"job-{worker}-{n}"
                login = agent.use_credential("sales", job_id=job)
                assert login.secret is not None and login.secret.reveal_text() == "agent-pw"
                # Committed before the secret came back: another connection sees it now.
                if job not in _committed_uses(data_dir):
                    missing.append(job)
                handed.append(job)

        runners = [threading.Thread(target=job_runner, args=(i,)) for i in range(threads)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    assert missing == []
    assert len(handed) == threads * uses
    assert sorted(_committed_uses(data_dir)) == sorted(handed)
    with Gateway.open(data_dir, make_context()) as gateway:
        assert AuditLog(gateway).verify().ok


def test_no_secret_is_handed_out_when_the_commit_of_its_entry_fails(data_dir: Path) -> None:
    _put_sales(data_dir)
    with sqlite3.connect(data_dir / "vault.db") as db:
        # Every use entry now breaks a deferred foreign key: its statements run,
        # and the COMMIT that would make the batch durable is refused.
        db.executescript(
            """
            CREATE TABLE commit_trap (
                seq INTEGER REFERENCES audit_events (seq) DEFERRABLE INITIALLY DEFERRED);
            CREATE TRIGGER use_trips_the_commit AFTER INSERT ON audit_events
                WHEN NEW.action = 'credential.used'
                BEGIN INSERT INTO commit_trap (seq) VALUES (-NEW.seq); END;
            """
        )
    handed: list[Secret | None] = []
    refused: list[BaseException] = []
    with GatewayAgent(data_dir) as agent:

        def job_runner(worker: int) -> None:
            for n in range(5):
                try:
                    handed.append(agent.use_credential("sales", f"job-{worker}-{n}").secret)
                except VaultError as e:  # the refused COMMIT: a ConflictError
                    refused.append(e)

        runners = [threading.Thread(target=job_runner, args=(i,)) for i in range(8)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        assert handed == [] and len(refused) == 40
        assert all("agent-pw" not in str(e) for e in refused)
        assert _committed_uses(data_dir) == []
        with sqlite3.connect(data_dir / "vault.db") as db:
            db.execute("DROP TRIGGER use_trips_the_commit")
        # The same agent (its connections kept) works again once the commit can.
        login = agent.use_credential("sales", "job-after")
    assert login.secret is not None and _committed_uses(data_dir) == ["job-after"]
