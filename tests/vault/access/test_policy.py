"""The role policy of design.md, as a table."""

from __future__ import annotations

import pytest

from agent_keys.errors import AccessDeniedError
from vault.access.policy import Action, Principal, authorize

ADMIN = Principal("user", "ada", "admin")
CREATOR = Principal("token", "etl", "creator")
AUDITOR = Principal("user", "otto", "auditor")
LINK = Principal("entry-link", "l-1", None, datasource="sales")

ALLOWED: list[tuple[Principal, Action, str | None, str | None]] = [
    (ADMIN, "users.manage", None, None),
    (ADMIN, "credential.write", "sales", "user:someone"),
    (CREATOR, "credential.write", "sales", None),
    (CREATOR, "credential.write", "sales", "token:etl"),
    (CREATOR, "encrypt", None, None),
    (AUDITOR, "audit.read", None, None),
    (AUDITOR, "credentials.read", None, None),
    (LINK, "credential.write", "sales", "user:ada"),
    (LINK, "certificate.read", None, None),
    (AUDITOR, "own-password.change", None, None),  # every signed-in user has one
    (ADMIN, "own-password.change", None, None),
]
DENIED: list[tuple[Principal, Action, str | None, str | None]] = [
    (CREATOR, "credential.write", "sales", "user:ada"),
    (CREATOR, "users.manage", None, None),
    (CREATOR, "audit.read", None, None),
    (AUDITOR, "credential.write", "sales", None),
    (AUDITOR, "encrypt", None, None),
    (LINK, "credential.write", "hr", None),
    (LINK, "credentials.read", None, None),
    (LINK, "status.read", None, None),
    (CREATOR, "own-password.change", None, None),  # a token has no password
    (Principal("token", "ops", "admin"), "own-password.change", None, None),
    (LINK, "own-password.change", None, None),
]


@pytest.mark.parametrize(("principal", "action", "datasource", "owner"), ALLOWED)
def test_allowed(
    principal: Principal, action: Action, datasource: str | None, owner: str | None
) -> None:
    authorize(principal, action, datasource=datasource, owner=owner)


@pytest.mark.parametrize(("principal", "action", "datasource", "owner"), DENIED)
def test_denied(
    principal: Principal, action: Action, datasource: str | None, owner: str | None
) -> None:
    with pytest.raises(AccessDeniedError):
        authorize(principal, action, datasource=datasource, owner=owner)
