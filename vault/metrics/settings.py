"""Who may scrape the metrics, and whether they name credentials: the admin's settings.

A scrape is answered to one bearer token made for it alone (``gwm_``...),
not to an API token: a Prometheus server's configuration is read by more
people than the vault's admins, so what it holds must open nothing else.
Only its hash is stored, as a sealed setting, and every change is one
``metrics.changed`` entry that states both settings as they now are (the
token by a short fingerprint of its hash).  A read checks the seals and that
entry, so a revoked token's row put back from an older copy of the file, or
``per_credential`` switched on behind the admin's back, is refused
(``TamperedRowError``, recorded) rather than believed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import InvalidInputError
from vault.access.bearer_secrets import bearer_hash, new_bearer_secret
from vault.gateway import Gateway

TOKEN_SETTING = "metrics_token_hash"  # noqa: S105 - a setting's name
PER_CREDENTIAL_SETTING = "metrics_per_credential"
METRICS_TOKEN_PREFIX = "gwm_"  # noqa: S105 - a marker that makes a leaked token easy to scan for
CHANGED = "metrics.changed"
TARGET = "metrics"
_MAX_TOKEN_CHARS = 128
_FINGERPRINT_CHARS = 16


@dataclass(frozen=True)
class MetricsSettings:
    """The stored settings: the scrape token's hash (None: scraping is off)
    and whether series name each credential."""

    token_hash: bytes | None = None
    per_credential: bool = False

    def accepts(self, token: str) -> bool:
        """Whether ``token`` is the scrape token (constant time in the token)."""
        if self.token_hash is None or not token.startswith(METRICS_TOKEN_PREFIX):
            return False
        if len(token) > _MAX_TOKEN_CHARS:
            return False
        return hmac.compare_digest(bearer_hash(token), self.token_hash)

    def view(self) -> dict[str, Any]:
        """What ``gwvault metrics show`` prints; never the hash."""
        return {"scrape_token": self.token_hash is not None, "per_credential": self.per_credential}

    def recorded(self) -> dict[str, Any]:
        """What the ``metrics.changed`` entry states: the token by a fingerprint of its hash."""
        fingerprint = self.token_hash.hex()[:_FINGERPRINT_CHARS] if self.token_hash else None
        return {"token": fingerprint, "per_credential": self.per_credential}


def parse_switch(text: str) -> bool:
    """``on`` or ``off``, as typed; ``InvalidInputError`` else."""
    if text not in ("on", "off"):
        raise InvalidInputError("--per-credential is on or off")
    return text == "on"


def load_metrics_settings(gateway: Gateway) -> MetricsSettings:
    """The settings, their seals and the trail's last word checked
    (``TamperedRowError``, recorded, when either disagrees); defaults when never set."""
    rows = gateway.rows
    stored_hash = rows.setting(TOKEN_SETTING)
    stored_switch = rows.setting(PER_CREDENTIAL_SETTING)
    settings = MetricsSettings(
        token_hash=bytes.fromhex(stored_hash) if stored_hash else None,
        per_credential=stored_switch == "on",
    )
    rows.check_current(
        "settings", TOKEN_SETTING, TARGET, (CHANGED,),
        # A cluster's entries also name their member: compare what was stated.
        lambda _action, details: all(
            details.get(key) == stated for key, stated in settings.recorded().items()
        ),
    )  # fmt: skip
    return settings


def new_scrape_token(gateway: Gateway) -> str:
    """A new scrape token (returned once); the one before it stops working."""
    token, token_hash = new_bearer_secret(gateway.context.random, METRICS_TOKEN_PREFIX)
    _change(gateway, lambda current: MetricsSettings(token_hash, current.per_credential))
    return token


def revoke_scrape_token(gateway: Gateway) -> MetricsSettings:
    """Scraping off: no token is accepted until a new one is made."""
    return _change(gateway, lambda current: MetricsSettings(None, current.per_credential))


def set_per_credential(gateway: Gateway, on: bool) -> MetricsSettings:
    """Name each credential in its own series (``on``), or only count them."""
    return _change(gateway, lambda current: MetricsSettings(current.token_hash, on))


def _change(
    gateway: Gateway, changed: Callable[[MetricsSettings], MetricsSettings]
) -> MetricsSettings:
    # Read, checked, and written in one transaction: the entry states what the
    # rows now hold, so the next read can hold the rows to it.
    with gateway.store.write():
        settings = changed(load_metrics_settings(gateway))
        rows = gateway.rows
        rows.set_setting(TOKEN_SETTING, settings.token_hash.hex() if settings.token_hash else "")
        rows.set_setting(PER_CREDENTIAL_SETTING, "on" if settings.per_credential else "off")
        gateway.audit.record(CHANGED, TARGET, **settings.recorded())
    return settings
