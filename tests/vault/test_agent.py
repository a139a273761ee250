from __future__ import annotations

from pathlib import Path

import pytest

from agent_keys.errors import NotFoundError
from agent_keys.secret import Secret
from tests.conftest import make_context
from vault.agent import GatewayAgent
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
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
