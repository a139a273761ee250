"""A vault for the metrics tests: four credentials in known states, a scrape token.

- ``ledger-app``: tested ok, expires at ``APP_EXPIRES``;
- ``ledger-gone``: its SQLite file removed after it was stored: ``database_missing``;
- ``ledger-off``: disabled;
- ``ledger-pg``: the canary as its password, never tested.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent_keys.secret import Secret
from tests.web_fixtures import WebVault
from vault.access.destination_policy import allow_sqlite_dir
from vault.credential_life import life_change_of
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.metrics.settings import new_scrape_token

NAMES = ("ledger-app", "ledger-gone", "ledger-off", "ledger-pg")
APP_EXPIRES = "2031-03-04T05:06:07Z"
APP_EXPIRES_AT = datetime.datetime(2031, 3, 4, 5, 6, 7, tzinfo=datetime.UTC).timestamp()


def stock_vault(web_vault: WebVault, files: Path, canary: str) -> str:
    """The four credentials; returns a fresh scrape token."""
    files.mkdir(exist_ok=True)
    anonymous = CredentialPayload("anonymous", None, None)
    with web_vault.gateway() as gateway:
        allow_sqlite_dir(gateway, str(files))
        service = CredentialService(gateway)
        for name in ("ledger-app", "ledger-gone", "ledger-off"):
            db = files / f"{name}.db"
            with sqlite3.connect(db) as conn:
                conn.execute("CREATE TABLE t (x)")
            service.put(name, DataSource("sqlite", str(db)), anonymous)
        password = CredentialPayload("basic", "bob", Secret.from_text(canary))
        service.put("ledger-pg", DataSource("postgresql", "127.0.0.1:1"), password)
        service.change_life("ledger-app", life_change_of(expires_at=APP_EXPIRES))
        service.disable("ledger-off")
        (files / "ledger-gone.db").unlink()
        assert service.test("ledger-app").ok
        assert service.test("ledger-gone").reason == "database_missing"
        return new_scrape_token(gateway)


Parsed = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Parsed:
    """Every sample of a scrape, parsed by prometheus-client's own parser, by
    name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: Parsed, metric: str, /, **labels: str) -> float | None:
    """The sample ``metric`` with exactly ``labels``; None when the scrape has none."""
    return parsed.get((metric, tuple(sorted(labels.items()))))
