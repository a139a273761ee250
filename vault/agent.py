"""The gateway agent's API: use a stored credential at job time.

    from vault.agent import GatewayAgent

    agent = GatewayAgent(Path("/var/lib/gwvault"))
    login = agent.use_credential("sales-db", job_id="refresh-4711")
    connect(user=login.username, password=login.secret.reveal_text())

Every use is recorded (``credential.used``, channel ``agent``, the job id as
request id) before the secret is returned; when the record cannot be written,
no secret is returned.
"""

from __future__ import annotations

from pathlib import Path

from vault.context import RequestContext
from vault.credentials import CredentialService, ResolvedCredential
from vault.gateway import Gateway


class GatewayAgent:
    """Opens stored credentials for the jobs of one gateway agent."""

    def __init__(self, data_dir: Path, agent_name: str = "gateway-agent") -> None:
        self._data_dir = data_dir
        self._actor = f"agent:{agent_name}"

    def use_credential(self, name: str, job_id: str) -> ResolvedCredential:
        """The credential ``name`` with its secret, for the job ``job_id``.

        Raises ``NotFoundError``, ``KeyBackendError``, ``IntegrityError`` (the
        stored credential does not open) or ``StorageError``.
        """
        context = RequestContext(actor=self._actor, channel="agent", request_id=job_id)
        with Gateway.open(self._data_dir, context) as gateway:
            return CredentialService(gateway).use(name, purpose=job_id)
