"""Sealing an EncryptedCredential in a test: now, for a data source and its target."""

from __future__ import annotations

import datetime

from agent_keys.gateway_identity import GatewayCertificate
from agent_keys.randomness import system_random
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload, SealedTarget, seal_credential


def now_seconds() -> int:
    return int(datetime.datetime.now(datetime.UTC).timestamp())


def seal(
    certificate: GatewayCertificate,
    datasource: str,
    target: DataSource,
    payload: CredentialPayload,
    *,
    issued_at: int | None = None,
) -> str:
    """``payload`` sealed to ``certificate`` for ``datasource`` and ``target`` (now, by default)."""
    return seal_credential(
        certificate,
        datasource,
        SealedTarget.of(target),
        payload,
        issued_at=now_seconds() if issued_at is None else issued_at,
        random=system_random,
        valid_at=now_seconds(),  # a blob "sealed hours ago" by a certificate made today
    )
