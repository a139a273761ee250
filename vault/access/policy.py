"""Who may do what: the roles of design.md, as one policy function.

``admin`` manages keys, users, tokens and links and may do anything; a
``creator`` enters, tests, updates and deletes the credentials it owns and never
reads a secret back; an ``auditor`` reads status, metadata and the audit trail.
An entry link may enter (test and put) the credential of its one data source.
Nobody reads a secret back through the web or the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from agent_keys.errors import AccessDeniedError, InvalidInputError

Role = Literal["admin", "creator", "auditor"]
ROLES: tuple[Role, ...] = ("admin", "creator", "auditor")
PrincipalKind = Literal["user", "token", "entry-link"]
Action = Literal[
    "status.read",
    "certificate.read",
    "credentials.read",
    "credential.write",
    "credential.test",
    # Disable, enable, delete (softly), restore, and set the owner's dates.
    "credential.manage",
    # Destroy a deleted credential before its window ends, set the window (admins).
    "credential.purge",
    # Have every credential tested now (the scheduler's next tick: admins).
    "credentials.test-all",
    "encrypt",
    "users.manage",
    # Make, list and revoke entry links (admins: a link lets anyone holding it
    # enter one credential, so making one is handing out that right).
    "entry_links.manage",
    # A signed-in user's own password (proved first); never a token's.
    "own-password.change",
    "audit.read",
    # A connection test to any destination, with the far end's own words in
    # the result; everyone else gets the destination policy and a reason code
    # with a fixed sentence (threats T-CN-2, T-CN-3).
    "tests.unrestricted",
    # Add, list, remove and test the notification sinks (admins: a sink decides
    # where news of every credential goes).
    "notify.manage",
    # Add, list and remove the audit sinks (admins: a sink decides where the
    # trail goes, and a block sink can stop every change).
    "audit.sinks.manage",
    # Set or clear the HTTP proxy (admins: it carries every HTTPS test and
    # webhook, and holds a password of its own).
    "proxy.manage",
]

_ALLOWED: dict[Role, frozenset[Action]] = {
    "admin": frozenset(get_args(Action)),
    "creator": frozenset(
        {
            "status.read",
            "certificate.read",
            "credentials.read",
            "credential.write",
            "credential.test",
            "credential.manage",
            "encrypt",
            "own-password.change",
        }
    ),
    "auditor": frozenset(
        {"status.read", "certificate.read", "credentials.read", "audit.read", "own-password.change"}
    ),
}


# What a creator may do to its own credentials and an entry link to its one.
_CREDENTIAL_ACTIONS = frozenset({"credential.write", "credential.test"})
# What a creator may do only to its own credentials (an entry link: none of the life).
_OWN_ACTIONS = _CREDENTIAL_ACTIONS | {"credential.manage"}


def parse_role(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise InvalidInputError(f"role must be one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a signed-in user, an API token or an entry link."""

    kind: PrincipalKind
    name: str
    role: Role | None
    datasource: str | None = None  # the one data source of an entry link

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.kind}:{self.name}"


def may(principal: Principal, action: Action) -> bool:
    """Whether ``principal`` may do ``action`` (no owner or data source involved)."""
    try:
        authorize(principal, action)
    except AccessDeniedError:
        return False
    return True


def authorize(
    principal: Principal, action: Action, *, datasource: str | None = None, owner: str | None = None
) -> None:
    """Raise ``AccessDeniedError`` unless ``principal`` may do ``action``.

    For ``credential.write``, ``datasource`` is the credential's name and
    ``owner`` the actor that created it (None for a credential not yet stored).
    """
    if principal.kind == "entry-link":
        if action == "certificate.read":
            return
        if action in _CREDENTIAL_ACTIONS and datasource == principal.datasource:
            return
        raise AccessDeniedError("this entry link is for one data source only")
    if action == "own-password.change" and principal.kind != "user":
        raise AccessDeniedError("only a signed-in user has a password to change")
    if principal.role is None or action not in _ALLOWED[principal.role]:
        raise AccessDeniedError(f"a {principal.role or 'caller'} may not do that ({action})")
    if (
        action in _OWN_ACTIONS
        and principal.role == "creator"
        and owner is not None
        and owner != principal.actor
    ):
        raise AccessDeniedError("a creator may change only the credentials it created")
