"""The gateway agent's API: use a stored credential at job time.

    from vault.agent import GatewayAgent

    agent = GatewayAgent(Path("/var/lib/gwvault"))
    with agent.connect("sales-db", job_id="refresh-4711") as db:  # psycopg or PyMySQL
        ...

``connect`` opens the database with the credential's TLS policy, exactly as a
connection test does (threat T-CN-1); ``use_credential`` hands out the login
and its data source (``source.tls``, ``source.ca_pem``) for a job that connects
by itself and must then apply that policy itself.

Every use is recorded (``credential.used``, channel ``agent``, the job id as
request id) before the secret is returned; when the record cannot be written,
no secret is returned.

A ``GatewayAgent`` is meant to live as long as the agent: each thread that
calls it keeps its own opened vault (``vault.kept_gateways``), and the use
entries of threads calling at once are committed together, each caller
getting its secret once the commit holding its entry is durable
(``vault.audit.group_commit``).  ``close`` closes the kept connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vault.audit.group_commit import GroupCommit
from vault.audit.trail import DetailValue
from vault.connectors.connection import ConnectionCredential
from vault.connectors.dispatch import open_session
from vault.context import RequestContext
from vault.credentials import CredentialService, ResolvedCredential
from vault.gateway import Gateway
from vault.gateway_facts import GatewayFacts
from vault.kept_gateways import KeptGateways


class GatewayAgent:
    """Opens stored credentials for the jobs of one gateway agent."""

    def __init__(self, data_dir: Path, agent_name: str = "gateway-agent") -> None:
        self._data_dir = data_dir
        self._actor = f"agent:{agent_name}"
        self._kept = KeptGateways(
            self._open_for_thread, RequestContext(actor=self._actor, channel="agent")
        )
        self._uses = GroupCommit(self._kept.kept)

    def use_credential(self, name: str, job_id: str) -> ResolvedCredential:
        """The credential ``name`` with its secret, for the job ``job_id``.

        Raises ``NotFoundError``, ``KeyBackendError``, ``IntegrityError`` (the
        stored credential does not open) or ``StorageError``.
        """
        context = RequestContext(actor=self._actor, channel="agent", request_id=job_id)
        gateway = self._kept.gateway(context)

        def record_use(target: str, details: dict[str, DetailValue]) -> None:
            self._uses.record(context, "credential.used", target, details)

        try:
            return CredentialService(gateway).use(name, purpose=job_id, record_use=record_use)
        finally:
            self._kept.release()

    def close(self) -> None:
        """Close the vault every calling thread kept open (no call may be under way)."""
        self._kept.close()

    def __enter__(self) -> GatewayAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_for_thread(self, context: RequestContext, facts: GatewayFacts) -> Gateway:
        return Gateway.open(self._data_dir, context, facts=facts)

    def connect(self, name: str, job_id: str, timeout: float = 30.0) -> Any:
        """An open connection (psycopg or PyMySQL) to the data source of ``name``.

        Raises what ``use_credential`` raises, ``InvalidInputError`` for a data
        source that is not a database server, and ``DataSourceError`` (with
        its reason code) when the server refuses, cannot be reached or does
        not meet the credential's TLS policy.
        """
        login = self.use_credential(name, job_id)
        credential = ConnectionCredential(login.auth, login.username, login.secret)
        return open_session(login.source, credential, timeout)
